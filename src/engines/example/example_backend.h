// The framework's example secrets engine (mount type "example"): the smallest complete engine,
// used by the framework's own tests and shown in docs/architecture.md. It keeps named items,
// a cached config (Initialize / InvalidateKey / Cleanup), one sudo path and one path callable
// without a token. Registered as an example: `coffer server` offers it only with -dev.
// Safe to call from several threads.
#pragma once

#include "core/backend.h"

namespace coffer::engines::example {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::engines::example
