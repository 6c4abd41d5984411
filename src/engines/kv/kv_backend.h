// KV secrets engine (types "kv" and "generic"). Version 1: read, write, list, delete of JSON
// objects at arbitrary paths inside the mount; stateless apart from its storage view, so it is
// safe to call from several threads. The mount's options.version picks the version: absent, ""
// or "1" is version 1, "2" the versioned store of kv_v2.h, anything else a 400.
#pragma once

#include "core/backend.h"

namespace coffer::engines::kv {

// Builds the version the mount's options.version names.
absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::engines::kv
