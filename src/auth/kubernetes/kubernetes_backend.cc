#include "auth/kubernetes/kubernetes_backend.h"

#include <cctype>

#include "auth/kubernetes/internal.h"
#include "boost/json.hpp"
#include "util/glob.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::auth::kubernetes {
namespace json = boost::json;

namespace {

constexpr std::string_view kHelp =
    "The Kubernetes auth method logs in Kubernetes service accounts: a pod presents its service "
    "account token (a JWT) and a role; the token is checked against the configured pem_keys or "
    "by the cluster's TokenReview API, and the role's bound service account names and "
    "namespaces decide whether it may log in.";

int64_t Number(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}
bool Flag(const json::object& o, std::string_view k, bool dflt) {
  const auto* v = o.if_contains(k);
  return v && v->is_bool() ? v->as_bool() : dflt;
}
json::array Arr(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

absl::StatusOr<std::optional<json::object>> GetJson(storage::Storage* s, std::string_view key) {
  ASSIGN_OR_RETURN(auto raw, s->Get(key));
  if (!raw) return std::optional<json::object>();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError(Cat("stored ", key, " is not JSON"));
  return std::optional<json::object>(std::move(v.as_object()));
}

class KubernetesBackend final : public core::framework::FrameworkBackend {
 public:
  explicit KubernetesBackend(std::unique_ptr<State> state, std::vector<core::framework::Path> p)
      : FrameworkBackend(std::string(kHelp), std::move(p),
                         core::SpecialPaths{.unauthenticated = {"login"}}),
        state_(std::move(state)) {}

 private:
  std::unique_ptr<State> state_;  // the handlers hold pointers to it
};

}  // namespace

json::object Config::ToStorage() const {
  return json::object{{"kubernetes_host", host},
                      {"kubernetes_ca_cert", ca_cert},
                      {"token_reviewer_jwt", token_reviewer_jwt},
                      {"pem_keys", Arr(pem_keys)},
                      {"issuer", issuer},
                      {"disable_iss_validation", disable_iss_validation},
                      {"disable_local_ca_jwt", disable_local_ca_jwt}};
}

absl::StatusOr<Config> Config::FromStorage(const json::object& o) {
  Config c;
  c.host = JsonStringOr(o, "kubernetes_host");
  c.ca_cert = JsonStringOr(o, "kubernetes_ca_cert");
  c.token_reviewer_jwt = JsonStringOr(o, "token_reviewer_jwt");
  c.pem_keys = JsonStringsOr(o, "pem_keys");
  c.issuer = JsonStringOr(o, "issuer");
  c.disable_iss_validation = Flag(o, "disable_iss_validation", true);
  c.disable_local_ca_jwt = Flag(o, "disable_local_ca_jwt", false);
  if (c.host.empty()) return absl::DataLossError("stored kubernetes auth config has no host");
  return c;
}

json::object Role::ToStorage() const {
  json::object o = ToApi();
  o["legacy_policies"] = legacy_policies;
  return o;
}

absl::StatusOr<Role> Role::FromStorage(const json::object& o) {
  Role r;
  r.names = JsonStringsOr(o, "bound_service_account_names");
  r.namespaces = JsonStringsOr(o, "bound_service_account_namespaces");
  r.audience = JsonStringOr(o, "audience");
  r.alias_name_source = JsonStringOr(o, "alias_name_source");
  r.token_policies = JsonStringsOr(o, "token_policies");
  r.token_bound_cidrs = JsonStringsOr(o, "token_bound_cidrs");
  r.token_ttl = Number(o, "token_ttl");
  r.token_max_ttl = Number(o, "token_max_ttl");
  r.token_period = Number(o, "token_period");
  r.token_num_uses = Number(o, "token_num_uses");
  r.token_explicit_max_ttl = Number(o, "token_explicit_max_ttl");
  r.token_no_default_policy = Flag(o, "token_no_default_policy", false);
  r.token_type = JsonStringOr(o, "token_type");
  r.legacy_policies = Flag(o, "legacy_policies", false);
  if (r.names.empty() || r.namespaces.empty() || r.alias_name_source.empty())
    return absl::DataLossError("stored kubernetes auth role is corrupt");
  return r;
}

json::object Role::ToApi() const {
  json::object o{{"bound_service_account_names", Arr(names)},
                 {"bound_service_account_namespaces", Arr(namespaces)},
                 {"bound_service_account_namespace_selector", ""},
                 {"alias_name_source", alias_name_source},
                 {"token_policies", Arr(token_policies)},
                 {"token_bound_cidrs", Arr(token_bound_cidrs)},
                 {"token_ttl", token_ttl},
                 {"token_max_ttl", token_max_ttl},
                 {"token_period", token_period},
                 {"token_num_uses", token_num_uses},
                 {"token_explicit_max_ttl", token_explicit_max_ttl},
                 {"token_no_default_policy", token_no_default_policy},
                 {"token_type", token_type}};
  if (!audience.empty()) o["audience"] = audience;
  // The deprecated names are answered when they hold something, as Vault does.
  if (legacy_policies && !token_policies.empty()) o["policies"] = Arr(token_policies);
  if (!token_bound_cidrs.empty()) o["bound_cidrs"] = Arr(token_bound_cidrs);
  if (token_ttl > 0) o["ttl"] = token_ttl;
  if (token_max_ttl > 0) o["max_ttl"] = token_max_ttl;
  if (token_period > 0) o["period"] = token_period;
  if (token_num_uses > 0) o["num_uses"] = token_num_uses;
  return o;
}

absl::StatusOr<std::optional<Config>> LoadConfig(storage::Storage* s) {
  ASSIGN_OR_RETURN(auto o, GetJson(s, "config"));
  if (!o) return std::optional<Config>();
  ASSIGN_OR_RETURN(Config c, Config::FromStorage(*o));
  return std::optional<Config>(std::move(c));
}

absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage* s, std::string_view name) {
  std::string key = Cat("role/", name);
  // Role names are case-insensitive (Vault stores them lowercased).
  for (size_t i = 5; i < key.size(); ++i)
    key[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[i])));
  ASSIGN_OR_RETURN(auto o, GetJson(s, key));
  if (!o) return std::optional<Role>();
  ASSIGN_OR_RETURN(Role r, Role::FromStorage(*o));
  return std::optional<Role>(std::move(r));
}

bool GlobMatch(std::string_view pattern, std::string_view value) {
  return StarGlobMatch(pattern, value);
}

absl::StatusOr<std::unique_ptr<core::Backend>> NewBackend(const core::BackendConfig& config,
                                                          Options options) {
  auto state = std::make_unique<State>();
  state->clock = config.clock ? config.clock : RealClock::Get();
  if (!options.reviewer) options.reviewer = NewHttpTokenReviewer();
  state->options = std::move(options);
  std::vector<core::framework::Path> paths;
  for (auto* group : {ConfigPaths, RolePaths, LoginPaths})
    for (auto& p : group(state.get())) paths.push_back(std::move(p));
  return std::unique_ptr<core::Backend>(new KubernetesBackend(std::move(state), std::move(paths)));
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return NewBackend(config, Options{});
}

}  // namespace coffer::auth::kubernetes
