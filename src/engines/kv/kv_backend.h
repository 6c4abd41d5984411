// KV secrets engine, version 1 (types "kv" and "generic"): read, write, list, delete of JSON
// objects at arbitrary paths inside the mount. Stateless apart from its storage view, so it is
// safe to call from several threads.
#pragma once

#include "core/backend.h"

namespace coffer::engines::kv {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::engines::kv
