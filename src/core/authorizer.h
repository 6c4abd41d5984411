// Authorizer: decides whether a token may perform a request. The core calls it for every
// authenticated request before any engine runs; this is where ACL policies plug in.
// Implementations must be safe to call from several threads.
#pragma once

#include "absl/status/status.h"
#include "core/request.h"
#include "core/token_store.h"

namespace coffer::core {

class Authorizer {
 public:
  virtual ~Authorizer() = default;
  // OK, or kPermissionDenied ("permission denied").
  virtual absl::Status Check(const TokenEntry& token, const Request& req) const = 0;
};

// Until ACL policies exist: the root policy may do everything, anything else nothing.
class RootOnlyAuthorizer final : public Authorizer {
 public:
  absl::Status Check(const TokenEntry& token, const Request& req) const override {
    for (const auto& p : token.policies)
      if (p == "root") return absl::OkStatus();
    return absl::PermissionDeniedError("permission denied");
  }
};

}  // namespace coffer::core
