// The token auth method mounted at auth/token: create (plain, orphan, by role), lookup, renew,
// revoke (cascading, orphaning, by accessor), roles, accessors, tidy — Vault's endpoints and
// fields. Stateless apart from the stores it is given; safe to call from several threads.
#pragma once

#include "core/backend.h"
#include "core/token_store.h"

namespace coffer::auth::token {

// `system` (may be null in tests) tells a login token's auth mount's max TTL at renewal.
std::unique_ptr<core::Backend> NewBackend(core::TokenStore* tokens, const Clock* clock,
                                          const core::SystemView* system = nullptr);
// The registry's factory: the token store comes from config.system->Tokens().
absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

using core::AuthBlock;
using core::LookupData;

}  // namespace coffer::auth::token
