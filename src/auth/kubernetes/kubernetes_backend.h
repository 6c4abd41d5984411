// Kubernetes auth method (Vault's `kubernetes`): a pod logs in with its service account token
// (a JWT) and one of the method's roles; the role binds service account names and namespaces
// (globs) to token policies. The token is checked either locally, against the public keys in
// config pem_keys, or by the cluster's TokenReview API at config kubernetes_host.
//
// Paths: config (read/write), role/:name (read/write/delete), role (list), login
// (unauthenticated). Stateless apart from its storage view and the TokenReviewer it is given:
// safe to call from several threads. The login JWT and token_reviewer_jwt are never logged or
// returned.
#pragma once

#include <memory>
#include <string>

#include "auth/kubernetes/token_review.h"
#include "core/backend.h"

namespace coffer::auth::kubernetes {

struct Options {
  // Who answers TokenReviews; null: the real API server through http::Call.
  std::shared_ptr<TokenReviewer> reviewer;
  // The files a pod has mounted (Vault's "local CA and JWT"). Coffer usually runs outside the
  // cluster: each is read at login only when it exists and disable_local_ca_jwt is false.
  std::string local_ca_path = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string local_jwt_path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
};

absl::StatusOr<std::unique_ptr<core::Backend>> NewBackend(const core::BackendConfig& config,
                                                          Options options);

// The registry's factory: NewBackend with the default Options.
absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

// Vault's glob for bound names and namespaces (its StrListContainsGlob, go-glob): '*' matches
// any run of characters anywhere in the pattern ("app-*-prod" takes "app-web-prod"); every other
// character matches itself. Exposed for tests.
bool GlobMatch(std::string_view pattern, std::string_view value);

}  // namespace coffer::auth::kubernetes
