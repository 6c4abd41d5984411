// GitHub auth method (Vault's `github`): a member of the configured GitHub organization logs in
// with a personal access token; Coffer asks the GitHub API (base_url) who the token belongs to,
// checks the organization, and grants token_policies plus the policies mapped to the user's
// teams (map/teams) and to the user (map/users). The GitHub token is never stored or logged.
// Stateless apart from its storage view: safe to call from several threads.
#pragma once

#include "core/backend.h"

namespace coffer::auth::github {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::auth::github
