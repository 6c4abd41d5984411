// login: a service account token and a role in, a Coffer token out.
//
// The order of the checks is Vault's: the role, its token_bound_cidrs, the config; the JWT is
// parsed (and, with pem_keys, its signature checked); its times; the namespace and name it
// claims against the role's bounds; the issuer; the audience; then the TokenReview (with or
// without pem_keys, as Vault: a signature proves who made the token, only the API server knows
// whether its service account still exists), whose answer must name the same service account
// the claims do.
#include <algorithm>
#include <cctype>

#include "auth/kubernetes/internal.h"
#include "boost/json.hpp"
#include "crypto/jwt.h"
#include "util/cidr.h"
#include "util/files.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::auth::kubernetes {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;
using core::framework::Path;

namespace {

constexpr std::string_view kDefaultIssuer = "kubernetes/serviceaccount";
// Vault's plugin checks exp, nbf and iat without leeway (golang-jwt v4's claims.Valid).
constexpr int64_t kLeeway = 0;
// The largest local CA bundle or token file read.
constexpr size_t kMaxLocalFile = size_t{1} << 20;

// The service account the claims name: the projected token's "kubernetes.io" object first, then
// the legacy secret-based token's claims, then "sub" (system:serviceaccount:<ns>:<name>).
struct ServiceAccount {
  std::string name, namespace_name, uid, secret_name;
};

ServiceAccount FromClaims(const json::object& c) {
  ServiceAccount sa;
  if (const json::object* k8s = JsonObjectOr(c, "kubernetes.io")) {
    sa.namespace_name = JsonStringOr(*k8s, "namespace");
    if (const json::object* account = JsonObjectOr(*k8s, "serviceaccount")) {
      sa.name = JsonStringOr(*account, "name");
      sa.uid = JsonStringOr(*account, "uid");
    }
  } else {
    sa.name = JsonStringOr(c, "kubernetes.io/serviceaccount/service-account.name");
    sa.uid = JsonStringOr(c, "kubernetes.io/serviceaccount/service-account.uid");
    sa.namespace_name = JsonStringOr(c, "kubernetes.io/serviceaccount/namespace");
    sa.secret_name = JsonStringOr(c, "kubernetes.io/serviceaccount/secret.name");
  }
  const std::string sub = JsonStringOr(c, "sub");
  constexpr std::string_view kPrefix = "system:serviceaccount:";
  if ((sa.name.empty() || sa.namespace_name.empty()) && sub.starts_with(kPrefix)) {
    std::string_view rest = std::string_view(sub).substr(kPrefix.size());
    const size_t colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) == std::string_view::npos) {
      if (sa.namespace_name.empty()) sa.namespace_name = std::string(rest.substr(0, colon));
      if (sa.name.empty()) sa.name = std::string(rest.substr(colon + 1));
    }
  }
  return sa;
}

bool Bound(const std::vector<std::string>& patterns, std::string_view value) {
  if (patterns.size() == 1 && patterns[0] == "*") return true;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return GlobMatch(p, value); });
}

std::vector<std::string> Audiences(const json::object& claims) {
  std::vector<std::string> out;
  const auto* aud = claims.if_contains("aud");
  if (aud && aud->is_string()) out.emplace_back(aud->as_string());
  if (aud && aud->is_array())
    for (const auto& a : aud->as_array())
      if (a.is_string()) out.emplace_back(a.as_string());
  return out;
}

// A pod's mounted file, when Coffer runs in one: its contents, or "" when absent.
std::string LocalFile(const std::string& path) {
  if (path.empty()) return "";
  auto f = files::ReadIfExists(path);
  if (!f.ok() || !*f || (*f)->size() > kMaxLocalFile) return "";
  return std::move(**f);
}

// Checks the JWT against the role and config; the service account it names.
absl::StatusOr<ServiceAccount> CheckJwt(const State& state, const crypto::Jwt& jwt,
                                        const Role& role, const Config& config) {
  if (!config.pem_keys.empty()) {
    bool verified = false;
    for (const auto& pem : config.pem_keys) {
      auto key = crypto::ParsePublicKeyPem(pem);
      if (key.ok() && crypto::VerifyJwt(jwt, key->get()).ok()) {
        verified = true;
        break;
      }
    }
    if (!verified)
      return absl::PermissionDeniedError(
          "permission denied: the JWT's signature does not verify with any of the configured "
          "pem_keys");
  }
  RETURN_IF_ERROR(crypto::CheckJwtTimes(jwt.claims, state.clock->NowUnix(), kLeeway));
  ServiceAccount sa = FromClaims(jwt.claims);
  if (!Bound(role.namespaces, sa.namespace_name))
    return absl::PermissionDeniedError("namespace not authorized");
  if (!Bound(role.names, sa.name))
    return absl::PermissionDeniedError("service account name not authorized");
  if (!config.disable_iss_validation) {
    const std::string expected =
        config.issuer.empty() ? std::string(kDefaultIssuer) : config.issuer;
    if (JsonStringOr(jwt.claims, "iss") != expected)
      return absl::PermissionDeniedError("invalid token issuer");
  }
  if (!role.audience.empty() && !crypto::JwtHasAudience(jwt.claims, role.audience))
    return absl::PermissionDeniedError("invalid audience");
  return sa;
}

absl::StatusOr<Response> Login(const State* state, Request& req, const FieldData& d) {
  const std::string role_name = d.String("role");
  if (role_name.empty()) return absl::InvalidArgumentError("missing role");
  const std::string token = d.String("jwt");
  if (token.empty()) return absl::InvalidArgumentError("missing jwt");
  ASSIGN_OR_RETURN(auto role, LoadRole(req.storage, role_name));
  if (!role) return absl::InvalidArgumentError(Cat("invalid role name \"", role_name, "\""));
  if (!role->token_bound_cidrs.empty() &&
      std::none_of(role->token_bound_cidrs.begin(), role->token_bound_cidrs.end(),
                   [&](const std::string& c) { return CidrContains(c, req.remote_address); }))
    return absl::PermissionDeniedError(Cat("permission denied: source address \"",
                                           req.remote_address,
                                           "\" is not in the role's token_bound_cidrs"));
  ASSIGN_OR_RETURN(auto config, LoadConfig(req.storage));
  if (!config)
    return absl::FailedPreconditionError(
        Cat("could not load backend configuration: write ", req.mount_point, "config first"));

  ASSIGN_OR_RETURN(crypto::Jwt jwt, crypto::ParseJwt(token));
  ASSIGN_OR_RETURN(ServiceAccount sa, CheckJwt(*state, jwt, *role, *config));
  if (role->alias_name_source == "serviceaccount_name" &&
      (sa.namespace_name.empty() || sa.name.empty()))
    return absl::PermissionDeniedError("service account namespace and name must be set");

  {
    ReviewRequest review;
    review.host = config->host;
    review.token = token;
    review.audiences = Audiences(jwt.claims);
    const bool local = !config->disable_local_ca_jwt;
    review.ca_pem = !config->ca_cert.empty() ? config->ca_cert
                    : local                  ? LocalFile(state->options.local_ca_path)
                                             : "";
    review.bearer = config->token_reviewer_jwt;
    if (review.bearer.empty() && local) review.bearer = LocalFile(state->options.local_jwt_path);
    // Without a reviewer token the login JWT reviews itself, as Vault does.
    if (review.bearer.empty()) review.bearer = token;
    while (!review.bearer.empty() && std::isspace(static_cast<unsigned char>(review.bearer.back())))
      review.bearer.pop_back();
    ASSIGN_OR_RETURN(ReviewResult r, state->options.reviewer->Review(review));
    if (r.name != sa.name) return absl::PermissionDeniedError("JWT names did not match");
    if (r.uid != sa.uid) return absl::PermissionDeniedError("JWT UIDs did not match");
    if (r.namespace_name != sa.namespace_name)
      return absl::PermissionDeniedError("JWT namespaces did not match");
  }
  if (sa.uid.empty()) return absl::PermissionDeniedError("could not parse UID from claims");

  core::LoginGrant g;
  g.policies = role->token_policies;
  g.no_default_policy = role->token_no_default_policy;
  g.ttl = role->token_ttl;
  g.max_ttl = role->token_explicit_max_ttl > 0 ? role->token_explicit_max_ttl : role->token_max_ttl;
  if (role->token_max_ttl > 0 && role->token_explicit_max_ttl > 0)
    g.max_ttl = std::min(role->token_explicit_max_ttl, role->token_max_ttl);
  g.period = role->token_period;
  g.num_uses = role->token_num_uses;
  g.bound_cidrs = role->token_bound_cidrs;
  g.display_name = Cat(sa.namespace_name, "-", sa.name);
  g.metadata = {{"service_account_uid", sa.uid},
                {"service_account_name", sa.name},
                {"service_account_namespace", sa.namespace_name},
                {"service_account_secret_name", sa.secret_name},
                {"role", role_name}};
  Response resp;
  resp.login = std::move(g);
  return resp;
}

}  // namespace

std::vector<Path> LoginPaths(State* state) {
  std::vector<Path> p;
  p.push_back(
      {.patterns = {"login"},
       .fields = {{"role",
                   {FieldType::kString,
                    "Name of the role against which the login is being attempted. This field is "
                    "required"}},
                  {"jwt",
                   {FieldType::kString,
                    "A signed JWT for authenticating a service account. This field is required.",
                    {},
                    false,
                    true}}},
       .operations = {{Operation::kUpdate,
                       {[state](Request& r, const FieldData& d) { return Login(state, r, d); },
                        "Logs in with a service account token"}}},
       .synopsis = "Authenticates Kubernetes service accounts with Vault."});
  return p;
}

}  // namespace coffer::auth::kubernetes
