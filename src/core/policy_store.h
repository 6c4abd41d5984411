// PolicyStore: ACL policies at `sys/policy/<name>` through the barrier, parsed once and cached;
// compiled ACLs cached per set of policy names and dropped whenever a policy changes.
// "root" is built in (everything) and cannot be written or deleted; "default" is written at
// init, may be edited, and cannot be deleted. All methods are safe to call from several threads.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/acl.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::core {

// The first policy in `policies` that the server keeps for its own tokens, or empty. No token
// creation (auth/token/create) and no login may assign one: "response-wrapping" would make a
// token pass for a wrapping token, and "control-group" is Vault's for its control-group tokens.
std::string_view ReservedPolicyIn(const std::vector<std::string>& policies);

class PolicyStore {
 public:
  explicit PolicyStore(storage::Storage* barrier) : barrier_(barrier) {}

  absl::Status WriteDefaults();           // at init
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);  // on seal

  // nullptr: none
  absl::StatusOr<std::shared_ptr<const Policy>> Get(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Put(std::string_view name, std::string_view text) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(std::string_view name) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<std::string>> List();

  // The merged ACL of these policies; unknown names contribute nothing.
  absl::StatusOr<std::shared_ptr<const Acl>> AclFor(const std::vector<std::string>& names)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  storage::Storage* const barrier_;
  Mutex mu_;
  std::map<std::string, std::shared_ptr<const Policy>, std::less<>> policies_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const Acl>, std::less<>> acls_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every change
};

}  // namespace coffer::core
