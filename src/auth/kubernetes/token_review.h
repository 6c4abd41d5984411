// The Kubernetes TokenReview API as the kubernetes auth method uses it: one POST of
// {apiVersion: authentication.k8s.io/v1, kind: TokenReview, spec: {token, audiences}} to
// <kubernetes_host>/apis/authentication.k8s.io/v1/tokenreviews, authorized by a bearer token,
// over TLS verified against the configured CA. The answer names the service account the token
// belongs to ("system:serviceaccount:<namespace>:<name>" and its uid).
//
// TokenReviewer is the seam the backend calls (tests give a fake); HttpTokenReviewer is the real
// one. Implementations are safe to call from several threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::auth::kubernetes {

struct ReviewRequest {
  std::string host;    // kubernetes_host: "https://10.0.0.1:6443", possibly with a path prefix
  std::string ca_pem;  // CA certificates to verify the API server with; empty: system store
  std::string bearer;  // Authorization: Bearer <bearer> (sensitive)
  std::string token;   // the JWT under review (sensitive)
  std::vector<std::string> audiences;  // the JWT's own "aud" claim, as Vault sends it
};

struct ReviewResult {
  std::string name, namespace_name, uid;
};

class TokenReviewer {
 public:
  virtual ~TokenReviewer() = default;
  // The reviewed service account. PermissionDenied (the login's 403) when the API server says
  // the token is not authenticated, names an error, or refuses the call with 401/403;
  // Unavailable when the API server cannot be reached or answers something unusable;
  // InvalidArgument for a kubernetes_host that is not a usable URL.
  virtual absl::StatusOr<ReviewResult> Review(const ReviewRequest& req) = 0;
};

// Calls the API server with http::Call: 15 s socket timeout, answers over 1 MiB refused,
// the answer parsed with ParseUntrustedJson.
std::shared_ptr<TokenReviewer> NewHttpTokenReviewer();

// Checks a kubernetes_host: an https:// URL, a host or a host:port (https is implied); plain
// http:// only to this machine (127.0.0.1, localhost, [::1]), as tokens must not cross a network
// in clear. InvalidArgument naming the problem.
absl::Status ValidateHost(std::string_view host);

// The TokenReview request body for `req` (exposed for tests).
std::string ReviewBody(const ReviewRequest& req);

// Reads a TokenReview answer (HTTP status and body) the way the login needs it (exposed for
// tests).
absl::StatusOr<ReviewResult> ParseReviewAnswer(int http_status, std::string_view body);

}  // namespace coffer::auth::kubernetes
