// The token auth method mounted at auth/token: create (plain, orphan, by role), lookup, renew,
// revoke (cascading, orphaning, by accessor), roles, accessors, tidy — Vault's endpoints and
// fields. Stateless apart from the stores it is given; safe to call from several threads.
#pragma once

#include "core/backend.h"
#include "core/token_store.h"

namespace coffer::auth::token {

std::unique_ptr<core::Backend> NewBackend(core::TokenStore* tokens, const Clock* clock);

// The fields of a token lookup (`id` only when the caller presented the token itself).
boost::json::object LookupData(const core::TokenEntry& e, std::string_view id, int64_t now);
// Vault's `auth` block for a new or renewed token.
boost::json::object AuthBlock(const core::TokenEntry& e, std::string_view token);

}  // namespace coffer::auth::token
