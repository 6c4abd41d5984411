// AppRole auth method (machine login for CI systems and cert-manager): roles with a RoleID and
// SecretIDs; `login` exchanges them for a token. SecretIDs are stored only as HMACs keyed by a
// per-mount salt, with their accessor, TTL and remaining uses. Safe to call from several threads.
#pragma once

#include "core/backend.h"
#include "util/clock.h"

namespace coffer::auth::approle {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::auth::approle
