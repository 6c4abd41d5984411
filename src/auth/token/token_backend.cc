#include "auth/token/token_backend.h"

#include <algorithm>
#include <set>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "util/duration.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::auth::token {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::TokenEntry;

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Policies as a JSON array of strings or a comma-separated string; trimmed, lowercased as Vault.
absl::StatusOr<std::optional<std::vector<std::string>>> PolicyList(const json::object& o,
                                                                   std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  auto add = [&](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (s.empty()) return;
    std::string lower(s);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(std::move(lower));
  };
  if (v->is_string()) {
    std::string_view s = v->as_string();
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      add(s.substr(start,
                   comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  } else if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (!e.is_string())
        return absl::InvalidArgumentError(Cat("\"", key, "\" must be a list of strings"));
      add(e.as_string());
    }
  } else {
    return absl::InvalidArgumentError(
        Cat("\"", key, "\" must be a list of strings or a comma-separated string"));
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

absl::StatusOr<int64_t> Duration(const json::object& o, std::string_view key, int64_t def) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null() || (v->is_string() && v->as_string().empty())) return def;
  auto d = ParseDurationSeconds(*v);
  if (!d.ok()) return absl::InvalidArgumentError(Cat(key, ": ", Msg(d.status())));
  return *d;
}

std::vector<std::string> Normalize(std::vector<std::string> p, bool add_default) {
  if (add_default) p.emplace_back("default");
  std::sort(p.begin(), p.end());
  p.erase(std::unique(p.begin(), p.end()), p.end());
  if (std::find(p.begin(), p.end(), "root") != p.end()) return {"root"};
  return p;
}

json::array ToArray(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

struct Role {
  std::string name;
  std::vector<std::string> allowed_policies, disallowed_policies, bound_cidrs;
  bool orphan = false, renewable = true, no_default_policy = false;
  std::string path_suffix;
  int64_t period = 0, explicit_max_ttl = 0, ttl = 0, max_ttl = 0, num_uses = 0;

  json::object ToJson() const {
    return json::object{{"name", name},
                        {"allowed_policies", ToArray(allowed_policies)},
                        {"disallowed_policies", ToArray(disallowed_policies)},
                        {"orphan", orphan},
                        {"renewable", renewable},
                        {"path_suffix", path_suffix},
                        {"token_period", period},
                        {"period", period},
                        {"token_explicit_max_ttl", explicit_max_ttl},
                        {"explicit_max_ttl", explicit_max_ttl},
                        {"token_ttl", ttl},
                        {"token_max_ttl", max_ttl},
                        {"token_num_uses", num_uses},
                        {"token_no_default_policy", no_default_policy},
                        {"token_bound_cidrs", ToArray(bound_cidrs)},
                        {"token_type", "service"}};
  }
};

absl::StatusOr<Role> RoleFromJson(std::string name, const json::object& o, const Role* base) {
  Role r = base ? *base : Role();
  r.name = std::move(name);
  ASSIGN_OR_RETURN(auto ap, PolicyList(o, "allowed_policies"));
  if (ap) r.allowed_policies = *ap;
  ASSIGN_OR_RETURN(auto dp, PolicyList(o, "disallowed_policies"));
  if (dp) r.disallowed_policies = *dp;
  for (const char* k : {"token_bound_cidrs", "bound_cidrs"}) {
    ASSIGN_OR_RETURN(auto c, PolicyList(o, k));
    if (c) r.bound_cidrs = *c;
  }
  ASSIGN_OR_RETURN(auto orphan, JsonBool(o, "orphan"));
  if (orphan) r.orphan = *orphan;
  ASSIGN_OR_RETURN(auto renewable, JsonBool(o, "renewable"));
  if (renewable) r.renewable = *renewable;
  ASSIGN_OR_RETURN(auto ndp, JsonBool(o, "token_no_default_policy"));
  if (ndp) r.no_default_policy = *ndp;
  ASSIGN_OR_RETURN(auto suffix, JsonString(o, "path_suffix"));
  if (suffix) {
    if (suffix->find("..") != std::string::npos)
      return absl::InvalidArgumentError("path_suffix must not contain \"..\"");
    r.path_suffix = *suffix;
  }
  ASSIGN_OR_RETURN(r.period, Duration(o, "period", r.period));
  ASSIGN_OR_RETURN(r.period, Duration(o, "token_period", r.period));
  ASSIGN_OR_RETURN(r.explicit_max_ttl, Duration(o, "explicit_max_ttl", r.explicit_max_ttl));
  ASSIGN_OR_RETURN(r.explicit_max_ttl, Duration(o, "token_explicit_max_ttl", r.explicit_max_ttl));
  ASSIGN_OR_RETURN(r.ttl, Duration(o, "token_ttl", r.ttl));
  ASSIGN_OR_RETURN(r.max_ttl, Duration(o, "token_max_ttl", r.max_ttl));
  ASSIGN_OR_RETURN(auto uses, JsonInt(o, "token_num_uses"));
  if (uses) {
    if (*uses < 0) return absl::InvalidArgumentError("token_num_uses must not be negative");
    r.num_uses = *uses;
  }
  ASSIGN_OR_RETURN(auto type, JsonString(o, "token_type"));
  if (type && *type != "service" && *type != "default")
    return absl::InvalidArgumentError(
        Cat("token_type \"", *type, "\" is not supported: Coffer makes service tokens"));
  if (r.ttl > 0 && r.max_ttl > 0 && r.ttl > r.max_ttl)
    return absl::InvalidArgumentError("token_ttl cannot be greater than token_max_ttl");
  return r;
}

class TokenBackend final : public core::Backend {
 public:
  TokenBackend(core::TokenStore* tokens, const Clock* clock) : tokens_(tokens), clock_(clock) {}

  const core::SpecialPaths& Special() const override {
    // Vault's token store: listing accessors and revoking a token without its children need
    // sudo (Vault's revoke-orphan handler checks sudo itself for the body form).
    static const core::SpecialPaths kSpecial{
        .root = {"revoke-orphan", "revoke-orphan/*", "accessors*"}};
    return kSpecial;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.path;
    const bool write = req.op == Operation::kUpdate || req.op == Operation::kCreate;
    if (p == "create" || p == "create-orphan" || StartsWith(p, "create/")) {
      if (!write) return Unsupported();
      return Create(req);
    }
    if (p == "lookup-self") {
      if (req.op != Operation::kRead && !write) return Unsupported();
      return Response::Data(LookupData(*req.token, req.client_token, clock_->NowUnix()));
    }
    if (p == "lookup" || StartsWith(p, "lookup/")) {
      if (req.op != Operation::kRead && !write) return Unsupported();
      ASSIGN_OR_RETURN(auto tok, JsonString(req.data, "token"));
      std::string t = tok.value_or(StartsWith(p, "lookup/") ? p.substr(7) : "");
      if (t.empty()) return absl::InvalidArgumentError("missing token to look up");
      ASSIGN_OR_RETURN(auto e, tokens_->Lookup(t));
      if (!e) return absl::InvalidArgumentError("bad token");
      return Response::Data(LookupData(*e, t, clock_->NowUnix()));
    }
    if (p == "lookup-accessor") {
      if (!write) return Unsupported();
      ASSIGN_OR_RETURN(auto e, ByAccessor(req));
      return Response::Data(LookupData(e, "", clock_->NowUnix()));
    }
    if (p == "renew-self" || p == "renew" || p == "renew-accessor") {
      if (!write) return Unsupported();
      TokenEntry target;
      std::string presented;
      if (p == "renew-self") {
        target = *req.token;
        presented = req.client_token;
      } else if (p == "renew") {
        ASSIGN_OR_RETURN(auto tok, JsonString(req.data, "token"));
        if (!tok || tok->empty()) return absl::InvalidArgumentError("missing token to renew");
        ASSIGN_OR_RETURN(auto e, tokens_->Lookup(*tok));
        if (!e) return absl::InvalidArgumentError("bad token");
        target = *e;
        presented = *tok;
      } else {
        ASSIGN_OR_RETURN(target, ByAccessor(req));
      }
      ASSIGN_OR_RETURN(int64_t inc, Duration(req.data, "increment", 0));
      std::vector<std::string> warnings;
      ASSIGN_OR_RETURN(auto renewed,
                       tokens_->Renew(target.id_hash, inc, req.mount_max_ttl, &warnings));
      Response r;
      r.auth = AuthBlock(renewed, presented);
      r.warnings = std::move(warnings);
      return r;
    }
    if (p == "revoke-self") {
      if (!write) return Unsupported();
      RETURN_IF_ERROR(tokens_->Revoke(req.token->id_hash));
      return Response::Empty();
    }
    if (p == "revoke" || p == "revoke-orphan") {
      if (!write) return Unsupported();
      ASSIGN_OR_RETURN(auto tok, JsonString(req.data, "token"));
      if (!tok || tok->empty()) return absl::InvalidArgumentError("missing token to revoke");
      ASSIGN_OR_RETURN(auto e, tokens_->Lookup(*tok));
      if (e) RETURN_IF_ERROR(tokens_->Revoke(e->id_hash, p == "revoke-orphan"));
      return Response::Empty();
    }
    if (p == "revoke-accessor") {
      if (!write) return Unsupported();
      ASSIGN_OR_RETURN(auto e, ByAccessor(req));
      RETURN_IF_ERROR(tokens_->Revoke(e.id_hash));
      return Response::Empty();
    }
    if (p == "accessors/" || p == "accessors") {
      if (req.op != Operation::kList) return Unsupported();
      ASSIGN_OR_RETURN(auto after, JsonString(req.data, "after"));
      ASSIGN_OR_RETURN(auto limit, JsonInt(req.data, "limit"));
      ASSIGN_OR_RETURN(auto keys,
                       tokens_->Accessors(after.value_or(""), static_cast<size_t>(std::max<int64_t>(
                                                                  0, limit.value_or(0)))));
      if (keys.empty()) return absl::NotFoundError("");
      return Response::Data(json::object{{"keys", ToArray(keys)}});
    }
    if (p == "roles/" || p == "roles") {
      if (req.op != Operation::kList) return Unsupported();
      ASSIGN_OR_RETURN(auto keys, req.storage->List("roles/", "", 0));
      if (keys.empty()) return absl::NotFoundError("");
      return Response::Data(json::object{{"keys", ToArray(keys)}});
    }
    if (StartsWith(p, "roles/")) return Roles(req, p.substr(6));
    if (p == "tidy") {
      if (!write) return Unsupported();
      ASSIGN_OR_RETURN(int n, tokens_->Tidy(1000000));
      Response r = Response::Data(json::object{{"revoked", n}});
      r.warnings.push_back("Tidy operation successfully completed.");
      return r;
    }
    return absl::NotFoundError(Cat("no handler for route \"auth/token/", p, "\""));
  }

 private:
  static absl::Status Unsupported() { return UnsupportedOperation(); }

  absl::StatusOr<TokenEntry> ByAccessor(const Request& req) {
    ASSIGN_OR_RETURN(auto acc, JsonString(req.data, "accessor"));
    if (!acc || acc->empty()) return absl::InvalidArgumentError("missing accessor");
    ASSIGN_OR_RETURN(auto e, tokens_->LookupByAccessor(*acc));
    if (!e) return absl::InvalidArgumentError("invalid accessor");
    return *e;
  }

  absl::StatusOr<std::optional<Role>> LoadRole(Request& req, std::string_view name) {
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("roles/", name)));
    if (!raw) return std::optional<Role>();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("token role is corrupt");
    ASSIGN_OR_RETURN(Role r, RoleFromJson(std::string(name), v.as_object(), nullptr));
    return std::optional<Role>(std::move(r));
  }

  absl::StatusOr<Response> Roles(Request& req, std::string_view name) {
    if (name.empty() || name.find('/') != std::string_view::npos)
      return absl::InvalidArgumentError("role name must not be empty or contain '/'");
    switch (req.op) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto r, LoadRole(req, name));
        if (!r) return absl::NotFoundError("");
        return Response::Data(r->ToJson());
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        ASSIGN_OR_RETURN(auto existing, LoadRole(req, name));
        ASSIGN_OR_RETURN(
            Role r, RoleFromJson(std::string(name), req.data, existing ? &*existing : nullptr));
        RETURN_IF_ERROR(req.storage->Put(Cat("roles/", name), json::serialize(r.ToJson())));
        return Response::Empty();
      }
      case Operation::kDelete:
        RETURN_IF_ERROR(req.storage->Delete(Cat("roles/", name)));
        return Response::Empty();
      default:
        return Unsupported();
    }
  }

  absl::StatusOr<Response> Create(Request& req) {
    const TokenEntry& parent = *req.token;
    std::optional<Role> role;
    std::string role_name;
    if (StartsWith(req.path, "create/")) role_name = req.path.substr(7);
    ASSIGN_OR_RETURN(auto rn, JsonString(req.data, "role_name"));
    if (role_name.empty() && rn) role_name = *rn;
    if (!role_name.empty()) {
      ASSIGN_OR_RETURN(role, LoadRole(req, role_name));
      if (!role) return absl::InvalidArgumentError(Cat("unknown role ", role_name));
    }
    for (const char* unsupported : {"id", "entity_alias"}) {
      ASSIGN_OR_RETURN(auto v, JsonString(req.data, unsupported));
      if (v && !v->empty())
        return absl::InvalidArgumentError(
            Cat("\"", unsupported, "\" is not supported: Coffer only makes random tokens"));
    }
    ASSIGN_OR_RETURN(auto type, JsonString(req.data, "type"));
    if (type && *type != "service" && !type->empty())
      return absl::InvalidArgumentError(
          Cat("token type \"", *type, "\" is not supported: Coffer makes service tokens"));
    ASSIGN_OR_RETURN(auto requested, PolicyList(req.data, "policies"));
    ASSIGN_OR_RETURN(auto no_parent, JsonBool(req.data, "no_parent"));
    ASSIGN_OR_RETURN(auto no_default, JsonBool(req.data, "no_default_policy"));
    ASSIGN_OR_RETURN(auto renewable, JsonBool(req.data, "renewable"));
    ASSIGN_OR_RETURN(auto display, JsonString(req.data, "display_name"));
    ASSIGN_OR_RETURN(auto uses, JsonInt(req.data, "num_uses"));
    ASSIGN_OR_RETURN(int64_t ttl, Duration(req.data, "ttl", -1));
    if (ttl < 0) {
      ASSIGN_OR_RETURN(ttl, Duration(req.data, "lease", -1));  // legacy name
    }
    ASSIGN_OR_RETURN(int64_t explicit_max, Duration(req.data, "explicit_max_ttl", 0));
    ASSIGN_OR_RETURN(int64_t period, Duration(req.data, "period", 0));
    if (uses && *uses < 0) return absl::InvalidArgumentError("number of uses cannot be negative");

    const bool privileged = parent.IsRoot() || req.sudo;  // sudo on this path (set by the core)
    TokenEntry e;
    e.meta.clear();
    if (const auto* m = req.data.if_contains("meta"); m && !m->is_null()) {
      if (!m->is_object()) return absl::InvalidArgumentError("meta must be an object of strings");
      for (const auto& [k, v] : m->as_object()) {
        if (!v.is_string())
          return absl::InvalidArgumentError(Cat("meta.", std::string_view(k), " must be a string"));
        e.meta[std::string(k)] = std::string(v.as_string());
      }
    }
    std::vector<std::string> policies = requested.value_or(std::vector<std::string>{});
    bool add_default = !no_default.value_or(false);
    if (role) {
      if (role->no_default_policy) add_default = false;
      if (policies.empty())
        policies = !role->allowed_policies.empty() ? role->allowed_policies : parent.policies;
      for (const auto& p : policies) {
        if (std::find(role->disallowed_policies.begin(), role->disallowed_policies.end(), p) !=
            role->disallowed_policies.end())
          return absl::InvalidArgumentError(
              Cat("token policies (", p, ") contains disallowed policies"));
        if (p == "default") continue;
        if (!role->allowed_policies.empty()) {
          if (std::find(role->allowed_policies.begin(), role->allowed_policies.end(), p) ==
              role->allowed_policies.end())
            return absl::InvalidArgumentError(
                Cat("token policies (", p, ") must be a subset of the role's allowed policies"));
        } else if (!parent.IsRoot() && std::find(parent.policies.begin(), parent.policies.end(),
                                                 p) == parent.policies.end()) {
          return absl::InvalidArgumentError(
              Cat("token policies (", p, ") must be a subset of the parent token's policies"));
        }
      }
      if (std::find(role->disallowed_policies.begin(), role->disallowed_policies.end(),
                    "default") != role->disallowed_policies.end())
        add_default = false;
      e.parent_hash = role->orphan ? "" : parent.id_hash;
      e.renewable = role->renewable;
      e.path = Cat("auth/token/create/", role->name, role->path_suffix.empty() ? "" : "/",
                   role->path_suffix);
      e.role = role->name;
      if (role->period > 0) period = role->period;
      if (role->explicit_max_ttl > 0)
        explicit_max = explicit_max > 0 ? std::min(explicit_max, role->explicit_max_ttl)
                                        : role->explicit_max_ttl;
      if (ttl < 0 && role->ttl > 0) ttl = role->ttl;
      if (role->max_ttl > 0)
        explicit_max = explicit_max > 0 ? std::min(explicit_max, role->max_ttl) : role->max_ttl;
      if (role->num_uses > 0 && (!uses || *uses == 0 || *uses > role->num_uses))
        uses = role->num_uses;
      e.bound_cidrs = role->bound_cidrs;
    } else {
      if (policies.empty()) policies = parent.policies;
      if (!parent.IsRoot()) {
        for (const auto& p : policies) {
          if (p == "default") continue;
          if (std::find(parent.policies.begin(), parent.policies.end(), p) == parent.policies.end())
            return absl::InvalidArgumentError(Cat("child policies must be subset of parent: \"", p,
                                                  "\" is not held by the calling token"));
        }
      }
      const bool orphan = req.path == "create-orphan" || no_parent.value_or(false);
      if (no_parent.value_or(false) && req.path != "create-orphan" && !privileged)
        return absl::InvalidArgumentError(
            "root or sudo privileges required to create orphan token");
      if (period > 0 && !privileged)
        return absl::InvalidArgumentError(
            "root or sudo privileges required to create periodic token");
      e.parent_hash = orphan ? "" : parent.id_hash;
      e.path = req.path == "create-orphan" ? "auth/token/create-orphan" : "auth/token/create";
    }
    if (renewable.has_value() && !role) e.renewable = *renewable;
    if (renewable.has_value() && role) e.renewable = role->renewable && *renewable;
    e.policies = Normalize(policies, add_default);
    if (e.policies.empty())
      return absl::InvalidArgumentError("token must have at least one policy");
    e.display_name = display && !display->empty() ? "token-" + *display : "token";
    for (auto& c : e.display_name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        c = '-';
    e.num_uses = uses.value_or(0);
    e.explicit_max_ttl = explicit_max;
    e.period = period;
    // TTL: the period for periodic tokens; else the request, else the mount default; capped by
    // explicit_max_ttl and the mount's max. A root token made by root without a TTL never expires.
    if (period > 0) {
      e.ttl = period;
    } else if (ttl < 0 && e.policies.size() == 1 && e.policies[0] == "root" && parent.IsRoot()) {
      e.ttl = 0;
    } else {
      e.ttl = ttl < 0 || ttl == 0 ? req.mount_default_ttl : ttl;
      if (req.mount_max_ttl > 0) e.ttl = std::min(e.ttl, req.mount_max_ttl);
    }
    if (e.explicit_max_ttl > 0 && (e.ttl == 0 || e.ttl > e.explicit_max_ttl))
      e.ttl = e.explicit_max_ttl;
    ASSIGN_OR_RETURN(auto created, tokens_->Create(std::move(e)));
    Response r;
    r.auth = AuthBlock(created.entry, created.token);
    return r;
  }

  core::TokenStore* tokens_;
  const Clock* clock_;
};

}  // namespace

std::unique_ptr<core::Backend> NewBackend(core::TokenStore* tokens, const Clock* clock) {
  return std::make_unique<TokenBackend>(tokens, clock);
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return NewBackend(config.system->Tokens(), config.clock ? config.clock : RealClock::Get());
}

}  // namespace coffer::auth::token
