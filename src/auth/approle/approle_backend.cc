#include "auth/approle/approle_backend.h"

#include <algorithm>

#include "absl/synchronization/mutex.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/cidr.h"
#include "util/duration.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::auth::approle {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::object& o,
                                                                   std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  auto add = [&](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (!s.empty()) out.emplace_back(s);
  };
  if (v->is_string()) {
    std::string_view s = v->as_string();
    size_t start = 0;
    while (start <= s.size()) {
      size_t c = s.find(',', start);
      add(s.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
      if (c == std::string_view::npos) break;
      start = c + 1;
    }
  } else if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (!e.is_string())
        return absl::InvalidArgumentError(Cat("\"", key, "\" must be a list of strings"));
      add(e.as_string());
    }
  } else {
    return absl::InvalidArgumentError(Cat("\"", key, "\" must be a list of strings"));
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

absl::StatusOr<int64_t> Dur(const json::object& o, std::string_view key, int64_t def) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return def;
  auto d = ParseDurationSeconds(*v);
  if (!d.ok()) return absl::InvalidArgumentError(Cat(key, ": ", Msg(d.status())));
  return *d;
}

json::array Arr(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::vector<std::string> ArrToVec(const json::value& v) {
  std::vector<std::string> out;
  if (v.is_array())
    for (const auto& e : v.as_array())
      if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

struct Role {
  std::string name, role_id;
  bool bind_secret_id = true;
  std::vector<std::string> secret_id_bound_cidrs, token_bound_cidrs, token_policies;
  int64_t secret_id_num_uses = 0, secret_id_ttl = 0;
  int64_t token_ttl = 0, token_max_ttl = 0, token_period = 0, token_num_uses = 0,
          token_explicit_max_ttl = 0;
  bool token_no_default_policy = false;

  json::object ToJson() const {
    return json::object{{"bind_secret_id", bind_secret_id},
                        {"secret_id_bound_cidrs", Arr(secret_id_bound_cidrs)},
                        {"secret_id_num_uses", secret_id_num_uses},
                        {"secret_id_ttl", secret_id_ttl},
                        {"token_bound_cidrs", Arr(token_bound_cidrs)},
                        {"token_policies", Arr(token_policies)},
                        {"policies", Arr(token_policies)},
                        {"token_ttl", token_ttl},
                        {"token_max_ttl", token_max_ttl},
                        {"token_period", token_period},
                        {"period", token_period},
                        {"token_num_uses", token_num_uses},
                        {"token_explicit_max_ttl", token_explicit_max_ttl},
                        {"token_no_default_policy", token_no_default_policy},
                        {"token_type", "default"},
                        {"local_secret_ids", false}};
  }
};

absl::Status ApplyRole(Role& r, const json::object& o) {
  ASSIGN_OR_RETURN(auto bind, JsonBool(o, "bind_secret_id"));
  if (bind) r.bind_secret_id = *bind;
  ASSIGN_OR_RETURN(auto sc, StringList(o, "secret_id_bound_cidrs"));
  if (sc) r.secret_id_bound_cidrs = *sc;
  ASSIGN_OR_RETURN(auto tc, StringList(o, "token_bound_cidrs"));
  if (tc) r.token_bound_cidrs = *tc;
  for (const auto& c : r.secret_id_bound_cidrs) RETURN_IF_ERROR(ValidateCidr(c));
  for (const auto& c : r.token_bound_cidrs) RETURN_IF_ERROR(ValidateCidr(c));
  ASSIGN_OR_RETURN(auto pol, StringList(o, "token_policies"));
  if (!pol) {
    ASSIGN_OR_RETURN(pol, StringList(o, "policies"));
  }
  if (pol) r.token_policies = *pol;
  ASSIGN_OR_RETURN(auto uses, JsonInt(o, "secret_id_num_uses"));
  if (uses) {
    if (*uses < 0) return absl::InvalidArgumentError("secret_id_num_uses cannot be negative");
    r.secret_id_num_uses = *uses;
  }
  ASSIGN_OR_RETURN(r.secret_id_ttl, Dur(o, "secret_id_ttl", r.secret_id_ttl));
  ASSIGN_OR_RETURN(r.token_ttl, Dur(o, "token_ttl", r.token_ttl));
  ASSIGN_OR_RETURN(r.token_max_ttl, Dur(o, "token_max_ttl", r.token_max_ttl));
  ASSIGN_OR_RETURN(r.token_period, Dur(o, "token_period", r.token_period));
  ASSIGN_OR_RETURN(r.token_period, Dur(o, "period", r.token_period));
  ASSIGN_OR_RETURN(r.token_explicit_max_ttl,
                   Dur(o, "token_explicit_max_ttl", r.token_explicit_max_ttl));
  ASSIGN_OR_RETURN(auto tuses, JsonInt(o, "token_num_uses"));
  if (tuses) {
    if (*tuses < 0) return absl::InvalidArgumentError("token_num_uses cannot be negative");
    r.token_num_uses = *tuses;
  }
  ASSIGN_OR_RETURN(auto ndp, JsonBool(o, "token_no_default_policy"));
  if (ndp) r.token_no_default_policy = *ndp;
  ASSIGN_OR_RETURN(auto type, JsonString(o, "token_type"));
  if (type && *type != "default" && *type != "service")
    return absl::InvalidArgumentError(
        Cat("token_type \"", *type, "\" is not supported: Coffer makes service tokens"));
  if (r.token_ttl > 0 && r.token_max_ttl > 0 && r.token_ttl > r.token_max_ttl)
    return absl::InvalidArgumentError("token_ttl cannot be greater than token_max_ttl");
  if (!r.bind_secret_id && r.secret_id_bound_cidrs.empty() && r.token_bound_cidrs.empty())
    return absl::InvalidArgumentError(
        "at least one constraint must be enabled on the role: bind_secret_id or bound CIDRs");
  return absl::OkStatus();
}

absl::StatusOr<Role> RoleFromStorage(const json::object& o) {
  Role r;
  try {
    r.name = std::string(o.at("name").as_string());
    r.role_id = std::string(o.at("role_id").as_string());
  } catch (const std::exception&) {
    return absl::DataLossError("approle role is corrupt");
  }
  json::object copy = o;
  copy.erase("name");
  copy.erase("role_id");
  copy.erase("policies");
  copy.erase("period");
  copy.erase("token_type");
  copy.erase("local_secret_ids");
  Role base;
  base.bind_secret_id = true;
  auto st = ApplyRole(base, copy);
  if (!st.ok()) return absl::DataLossError("approle role is corrupt");
  base.name = r.name;
  base.role_id = r.role_id;
  return base;
}

class AppRoleBackend final : public core::Backend {
 public:
  explicit AppRoleBackend(const Clock* clock) : clock_(clock) {}

  const core::SpecialPaths& Special() const override {
    // Vault's AppRole: login needs no token; SecretIDs are seal-wrapped.
    static const core::SpecialPaths kSpecial{
        .unauthenticated = {"login"},
        .seal_wrap_storage = {"secret_id/*", "secret_id_accessor/*"}};
    return kSpecial;
  }

  absl::StatusOr<Response> Handle(Request& req) override {
    const std::string& p = req.path;
    if (p == "login") return Login(req);
    if (p == "role" || p == "role/") {
      if (req.op != Operation::kList) return Unsupported();
      ASSIGN_OR_RETURN(auto keys, req.storage->List("role/", "", 0));
      if (keys.empty()) return absl::NotFoundError("");
      return Response::Data(json::object{{"keys", Arr(keys)}});
    }
    if (StartsWith(p, "role/")) {
      std::string_view rest = std::string_view(p).substr(5);
      size_t slash = rest.find('/');
      std::string name(rest.substr(0, slash));
      std::string_view sub = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
      if (name.empty()) return absl::InvalidArgumentError("role name is required");
      for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
              c == '@'))
          return absl::InvalidArgumentError(
              "role name may only hold letters, digits, '-', '_', '.' and '@'");
      if (sub.empty()) return RoleCrud(req, name);
      if (sub == "role-id") return RoleId(req, name);
      if (sub == "secret-id" || sub == "secret-id/") return SecretId(req, name);
      if (sub == "secret-id/lookup") return SecretIdLookup(req, name, false);
      if (sub == "secret-id/destroy") return SecretIdDestroy(req, name, false);
      if (sub == "secret-id-accessor/lookup") return SecretIdLookup(req, name, true);
      if (sub == "secret-id-accessor/destroy") return SecretIdDestroy(req, name, true);
      // Single fields of the role, as Vault's role/<name>/<field> endpoints.
      return RoleField(req, name, std::string(sub));
    }
    return absl::NotFoundError(Cat("no handler for route \"", req.mount_point, p, "\""));
  }

 private:
  static absl::Status Unsupported() { return UnsupportedOperation(); }

  absl::StatusOr<std::string> Salt(storage::Storage* s) {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(auto salt, s->Get("salt"));
    if (salt) return *salt;
    ASSIGN_OR_RETURN(auto fresh, crypto::SecretBytes::Random(32));
    RETURN_IF_ERROR(s->Put("salt", fresh.view()));
    return std::string(fresh.view());
  }
  absl::StatusOr<std::string> Hmac(storage::Storage* s, std::string_view v) {
    ASSIGN_OR_RETURN(std::string salt, Salt(s));
    return HexEncode(crypto::HmacSha256(salt, v));
  }

  absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage* s, std::string_view name) {
    ASSIGN_OR_RETURN(auto raw, s->Get(Cat("role/", name)));
    if (!raw) return std::optional<Role>();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("approle role is corrupt");
    ASSIGN_OR_RETURN(Role r, RoleFromStorage(v.as_object()));
    return std::optional<Role>(std::move(r));
  }

  absl::Status SaveRole(storage::Storage* s, const Role& r, const std::string& old_role_id) {
    json::object o = r.ToJson();
    o["name"] = r.name;
    o["role_id"] = r.role_id;
    std::vector<storage::WriteOp> ops;
    ops.push_back({storage::WriteOp::Kind::kPut, Cat("role/", r.name), json::serialize(o)});
    ASSIGN_OR_RETURN(std::string idh, Hmac(s, r.role_id));
    ops.push_back({storage::WriteOp::Kind::kPut, Cat("role_id/", idh), r.name});
    if (!old_role_id.empty() && old_role_id != r.role_id) {
      ASSIGN_OR_RETURN(std::string oldh, Hmac(s, old_role_id));
      ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role_id/", oldh), ""});
    }
    return s->Write(std::move(ops));
  }

  absl::StatusOr<Response> RoleCrud(Request& req, const std::string& name) {
    switch (req.op) {
      case Operation::kRead: {
        ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
        if (!r) return absl::NotFoundError("");
        return Response::Data(r->ToJson());
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        ASSIGN_OR_RETURN(auto existing, LoadRole(req.storage, name));
        Role r = existing ? *existing : Role();
        r.name = name;
        RETURN_IF_ERROR(ApplyRole(r, req.data));
        std::string old = r.role_id;
        if (r.role_id.empty()) r.role_id = crypto::RandomUuid();
        RETURN_IF_ERROR(SaveRole(req.storage, r, old));
        return Response::Empty();
      }
      case Operation::kDelete: {
        ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
        if (!r) return Response::Empty();
        ASSIGN_OR_RETURN(std::string idh, Hmac(req.storage, r->role_id));
        std::vector<storage::WriteOp> ops;
        ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role/", name), ""});
        ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role_id/", idh), ""});
        RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
        RETURN_IF_ERROR(req.storage->DeletePrefix(Cat("secret_id/", name, "/")));
        RETURN_IF_ERROR(req.storage->DeletePrefix(Cat("accessor/", name, "/")));
        return Response::Empty();
      }
      default:
        return Unsupported();
    }
  }

  absl::StatusOr<Response> RoleField(Request& req, const std::string& name,
                                     const std::string& field) {
    static const char* kFields[] = {
        "policies",       "token_policies",        "secret-id-num-uses", "secret-id-ttl",
        "token-ttl",      "token-max-ttl",         "bind-secret-id",     "period",
        "token-num-uses", "secret-id-bound-cidrs", "token-bound-cidrs"};
    bool known = false;
    for (const char* f : kFields) known = known || field == f;
    if (!known)
      return absl::NotFoundError(
          Cat("no handler for route \"", req.mount_point, "role/", name, "/", field, "\""));
    std::string key = field;
    std::replace(key.begin(), key.end(), '-', '_');
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (!r) return absl::NotFoundError("");
    if (req.op == Operation::kRead) {
      json::object all = r->ToJson();
      return Response::Data(
          json::object{{key, all.contains(key) ? all[key] : json::value(nullptr)}});
    }
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return Unsupported();
    RETURN_IF_ERROR(ApplyRole(*r, req.data));
    RETURN_IF_ERROR(SaveRole(req.storage, *r, r->role_id));
    return Response::Empty();
  }

  absl::StatusOr<Response> RoleId(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (!r) return absl::NotFoundError("");
    if (req.op == Operation::kRead) return Response::Data(json::object{{"role_id", r->role_id}});
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return Unsupported();
    ASSIGN_OR_RETURN(auto id, JsonString(req.data, "role_id"));
    if (!id || id->empty()) return absl::InvalidArgumentError("missing role_id");
    std::string old = r->role_id;
    r->role_id = *id;
    RETURN_IF_ERROR(SaveRole(req.storage, *r, old));
    return Response::Empty();
  }

  absl::StatusOr<Response> SecretId(Request& req, const std::string& name) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (!r) return absl::InvalidArgumentError(Cat("role \"", name, "\" does not exist"));
    if (req.op == Operation::kList) {
      ASSIGN_OR_RETURN(auto keys, req.storage->List(Cat("accessor/", name, "/"), "", 0));
      if (keys.empty()) return absl::NotFoundError("");
      return Response::Data(json::object{{"keys", Arr(keys)}});
    }
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return Unsupported();
    json::object meta;
    if (const auto* m = req.data.if_contains("metadata"); m && !m->is_null()) {
      if (m->is_string()) {
        boost::system::error_code ec;
        auto v = json::parse(m->as_string(), ec);
        if (ec || !v.is_object())
          return absl::InvalidArgumentError("metadata must be a JSON object of strings");
        meta = v.as_object();
      } else if (m->is_object()) {
        meta = m->as_object();
      } else {
        return absl::InvalidArgumentError("metadata must be a JSON object of strings");
      }
      for (const auto& [k, v] : meta)
        if (!v.is_string()) return absl::InvalidArgumentError("metadata values must be strings");
    }
    ASSIGN_OR_RETURN(auto cidrs, StringList(req.data, "cidr_list"));
    for (const auto& c : cidrs.value_or(std::vector<std::string>{}))
      RETURN_IF_ERROR(ValidateCidr(c));
    ASSIGN_OR_RETURN(int64_t ttl, Dur(req.data, "ttl", r->secret_id_ttl));
    if (r->secret_id_ttl > 0 && (ttl == 0 || ttl > r->secret_id_ttl)) ttl = r->secret_id_ttl;
    ASSIGN_OR_RETURN(auto uses, JsonInt(req.data, "num_uses"));
    int64_t num_uses = uses.value_or(r->secret_id_num_uses);
    if (num_uses < 0) return absl::InvalidArgumentError("num_uses cannot be negative");
    if (r->secret_id_num_uses > 0 && (num_uses == 0 || num_uses > r->secret_id_num_uses))
      num_uses = r->secret_id_num_uses;

    const std::string secret_id = crypto::RandomUuid();
    const std::string accessor = crypto::RandomUuid();
    ASSIGN_OR_RETURN(std::string h, Hmac(req.storage, secret_id));
    const int64_t now = clock_->NowUnix();
    json::object entry{{"accessor", accessor},
                       {"creation_time", now},
                       {"expiration_time", ttl > 0 ? now + ttl : 0},
                       {"secret_id_ttl", ttl},
                       {"secret_id_num_uses", num_uses},
                       {"metadata", meta},
                       {"cidr_list", Arr(cidrs.value_or(std::vector<std::string>{}))}};
    std::vector<storage::WriteOp> ops;
    ops.push_back(
        {storage::WriteOp::Kind::kPut, Cat("secret_id/", name, "/", h), json::serialize(entry)});
    ops.push_back({storage::WriteOp::Kind::kPut, Cat("accessor/", name, "/", accessor), h});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    return Response::Data(json::object{{"secret_id", secret_id},
                                       {"secret_id_accessor", accessor},
                                       {"secret_id_ttl", ttl},
                                       {"secret_id_num_uses", num_uses}});
  }

  // Resolves a SecretID (or its accessor) of a role to its storage hash.
  absl::StatusOr<std::string> SecretHash(Request& req, const std::string& name, bool by_accessor) {
    if (by_accessor) {
      ASSIGN_OR_RETURN(auto acc, JsonString(req.data, "secret_id_accessor"));
      if (!acc || acc->empty()) return absl::InvalidArgumentError("missing secret_id_accessor");
      ASSIGN_OR_RETURN(auto h, req.storage->Get(Cat("accessor/", name, "/", *acc)));
      if (!h)
        return absl::InvalidArgumentError("failed to find accessor entry for secret_id_accessor");
      return *h;
    }
    ASSIGN_OR_RETURN(auto sid, JsonString(req.data, "secret_id"));
    if (!sid || sid->empty()) return absl::InvalidArgumentError("missing secret_id");
    return Hmac(req.storage, *sid);
  }

  absl::StatusOr<Response> SecretIdLookup(Request& req, const std::string& name, bool by_accessor) {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return Unsupported();
    ASSIGN_OR_RETURN(std::string h, SecretHash(req, name, by_accessor));
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("secret_id/", name, "/", h)));
    if (!raw) {
      if (by_accessor)
        return absl::InvalidArgumentError("failed to find secret_id for the accessor");
      return Response::Empty();  // Vault answers 204 for an unknown secret_id
    }
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("secret_id entry is corrupt");
    auto& o = v.as_object();
    json::object d{{"secret_id_accessor", o["accessor"]},
                   {"creation_time", o["creation_time"]},
                   {"expiration_time", o["expiration_time"]},
                   {"secret_id_ttl", o["secret_id_ttl"]},
                   {"secret_id_num_uses", o["secret_id_num_uses"]},
                   {"metadata", o["metadata"]},
                   {"cidr_list", o["cidr_list"]}};
    return Response::Data(std::move(d));
  }

  absl::StatusOr<Response> SecretIdDestroy(Request& req, const std::string& name,
                                           bool by_accessor) {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate &&
        req.op != Operation::kDelete)
      return Unsupported();
    ASSIGN_OR_RETURN(std::string h, SecretHash(req, name, by_accessor));
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("secret_id/", name, "/", h)));
    if (!raw) return Response::Empty();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    std::vector<storage::WriteOp> ops;
    ops.push_back({storage::WriteOp::Kind::kDelete, Cat("secret_id/", name, "/", h), ""});
    if (!ec && v.is_object() && v.as_object().contains("accessor"))
      ops.push_back(
          {storage::WriteOp::Kind::kDelete,
           Cat("accessor/", name, "/", std::string_view(v.as_object()["accessor"].as_string())),
           ""});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    return Response::Empty();
  }

  absl::StatusOr<Response> Login(Request& req) {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return Unsupported();
    const absl::Status invalid = absl::InvalidArgumentError("invalid role_id or secret_id");
    ASSIGN_OR_RETURN(auto role_id, JsonString(req.data, "role_id"));
    if (!role_id || role_id->empty()) return absl::InvalidArgumentError("missing role_id");
    ASSIGN_OR_RETURN(std::string idh, Hmac(req.storage, *role_id));
    ASSIGN_OR_RETURN(auto name, req.storage->Get(Cat("role_id/", idh)));
    if (!name) return invalid;
    ASSIGN_OR_RETURN(auto role, LoadRole(req.storage, *name));
    if (!role) return invalid;
    if (!role->secret_id_bound_cidrs.empty()) {
      bool ok = false;
      for (const auto& c : role->secret_id_bound_cidrs)
        ok = ok || CidrContains(c, req.remote_address);
      if (!ok)
        return absl::InvalidArgumentError(
            Cat("source address \"", req.remote_address,
                "\" unauthorized through CIDR restrictions on the role"));
    }
    json::object meta;
    if (role->bind_secret_id) {
      ASSIGN_OR_RETURN(auto sid, JsonString(req.data, "secret_id"));
      if (!sid || sid->empty()) return absl::InvalidArgumentError("missing secret_id");
      ASSIGN_OR_RETURN(std::string h, Hmac(req.storage, *sid));
      const std::string key = Cat("secret_id/", *name, "/", h);
      absl::MutexLock l(&use_mu_);  // the use count is read-modify-write
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
      if (!raw) return invalid;
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (ec || !v.is_object()) return absl::DataLossError("secret_id entry is corrupt");
      auto& o = v.as_object();
      const int64_t exp = o["expiration_time"].to_number<int64_t>();
      const std::string accessor(o["accessor"].as_string());
      if (exp > 0 && clock_->NowUnix() >= exp) {
        std::vector<storage::WriteOp> ops;
        ops.push_back({storage::WriteOp::Kind::kDelete, key, ""});
        ops.push_back(
            {storage::WriteOp::Kind::kDelete, Cat("accessor/", *name, "/", accessor), ""});
        RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
        return invalid;
      }
      auto cidrs = ArrToVec(o["cidr_list"]);
      if (!cidrs.empty()) {
        bool ok = false;
        for (const auto& c : cidrs) ok = ok || CidrContains(c, req.remote_address);
        if (!ok)
          return absl::InvalidArgumentError(
              Cat("source address \"", req.remote_address,
                  "\" unauthorized through CIDR restrictions on the secret ID"));
      }
      int64_t uses = o["secret_id_num_uses"].to_number<int64_t>();
      std::vector<storage::WriteOp> ops;
      if (uses == 1) {  // this login is its last use
        ops.push_back({storage::WriteOp::Kind::kDelete, key, ""});
        ops.push_back(
            {storage::WriteOp::Kind::kDelete, Cat("accessor/", *name, "/", accessor), ""});
      } else if (uses > 1) {
        o["secret_id_num_uses"] = uses - 1;
        ops.push_back({storage::WriteOp::Kind::kPut, key, json::serialize(o)});
      }
      if (!ops.empty()) RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
      if (o["metadata"].is_object()) meta = o["metadata"].as_object();
    }
    core::LoginGrant g;
    g.policies = role->token_policies;
    g.no_default_policy = role->token_no_default_policy;
    g.ttl = role->token_ttl;
    g.max_ttl =
        role->token_explicit_max_ttl > 0 ? role->token_explicit_max_ttl : role->token_max_ttl;
    if (role->token_max_ttl > 0 && role->token_explicit_max_ttl > 0)
      g.max_ttl = std::min(role->token_explicit_max_ttl, role->token_max_ttl);
    g.period = role->token_period;
    g.num_uses = role->token_num_uses;
    g.bound_cidrs = role->token_bound_cidrs;
    g.display_name = "approle";
    g.metadata["role_name"] = *name;
    for (const auto& [k, v] : meta) g.metadata[std::string(k)] = std::string(v.as_string());
    Response r;
    r.login = std::move(g);
    return r;
  }

  const Clock* clock_;
  absl::Mutex mu_;
  absl::Mutex use_mu_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  const Clock* clock = config.clock ? config.clock : RealClock::Get();
  return std::unique_ptr<core::Backend>(new AppRoleBackend(clock));
}

}  // namespace coffer::auth::approle
