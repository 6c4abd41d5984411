// Internal to the kubernetes auth method: the stored config and role, and the handlers of each
// endpoint group (paths_config.cc, paths_role.cc, paths_login.cc). Not for other modules.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/kubernetes/kubernetes_backend.h"
#include "boost/json/object.hpp"
#include "core/framework/framework.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::auth::kubernetes {

// config, as stored (Vault's kubeConfig, with Vault's API field names).
struct Config {
  std::string host;
  std::string ca_cert;
  std::string token_reviewer_jwt;  // sensitive: never returned
  std::vector<std::string> pem_keys;
  std::string issuer;
  bool disable_iss_validation = true;
  bool disable_local_ca_jwt = false;

  boost::json::object ToStorage() const;
  static absl::StatusOr<Config> FromStorage(const boost::json::object& o);
};

// role/<name>, as stored.
struct Role {
  std::vector<std::string> names, namespaces;
  std::string audience;
  std::string alias_name_source = "serviceaccount_uid";
  std::vector<std::string> token_policies, token_bound_cidrs;
  int64_t token_ttl = 0, token_max_ttl = 0, token_period = 0, token_num_uses = 0,
          token_explicit_max_ttl = 0;
  bool token_no_default_policy = false;
  std::string token_type = "default";
  // Which of the deprecated names were last used to set a value: read answers them as well.
  bool legacy_policies = false;

  boost::json::object ToStorage() const;
  static absl::StatusOr<Role> FromStorage(const boost::json::object& o);
  boost::json::object ToApi() const;
};

absl::StatusOr<std::optional<Config>> LoadConfig(storage::Storage* s);
absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage* s, std::string_view name);

// The state the handlers share.
struct State {
  const Clock* clock = nullptr;
  Options options;
  Mutex write_mu;  // serializes a role's or the config's read-modify-write; guards no member
};

std::vector<core::framework::Path> ConfigPaths(State* state);
std::vector<core::framework::Path> RolePaths(State* state);
std::vector<core::framework::Path> LoginPaths(State* state);

}  // namespace coffer::auth::kubernetes
