// The Transit secrets engine (mount type "transit"): encryption, signing and HMAC as a service
// with named, versioned keys that never leave the barrier unless a key was made exportable.
// Paths and responses follow Vault's Transit engine (docs/compatibility.md lists the
// differences). Safe to call from several threads.
#pragma once

#include "core/backend.h"

namespace coffer::engines::transit {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::engines::transit
