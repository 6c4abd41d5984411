#include "auth/approle/approle_backend.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "auth/compat_backend.h"
#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "crypto/crypto.h"
#include "util/cidr.h"
#include "util/encoding.h"
#include "util/human_time.h"
#include "util/json_parse.h"
#include "util/mutex.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::auth::approle {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;
using core::framework::OperationSpec;
using core::framework::Path;
using Fields = std::map<std::string, FieldSchema>;

namespace {

// How Go prints its zero time.Time: Vault's expiration_time of a SecretID that never expires.
constexpr std::string_view kGoZeroTime = "0001-01-01T00:00:00Z";

constexpr std::string_view kHelp =
    "The AppRole auth method: machines and applications log in with a RoleID and a SecretID "
    "issued for one of the method's roles.";

// The role's single-field endpoints (Vault's role/:role_name/<field>): each reads and writes its
// own field (and its deprecated name) and nothing else, so an ACL that grants one of these paths
// grants that field only. A write naming another field is refused (unknown field).
struct FieldPath {
  std::string_view path;
  std::string_view field;
  std::string_view old_name;  // the deprecated name it also takes, or empty
};
constexpr FieldPath kFieldPaths[] = {{"policies", "token_policies", "policies"},
                                     {"token_policies", "token_policies", "policies"},
                                     {"secret-id-num-uses", "secret_id_num_uses", ""},
                                     {"secret-id-ttl", "secret_id_ttl", ""},
                                     {"token-ttl", "token_ttl", ""},
                                     {"token-max-ttl", "token_max_ttl", ""},
                                     {"bind-secret-id", "bind_secret_id", ""},
                                     {"period", "token_period", "period"},
                                     {"token-num-uses", "token_num_uses", ""},
                                     {"secret-id-bound-cidrs", "secret_id_bound_cidrs", ""},
                                     {"token-bound-cidrs", "token_bound_cidrs", ""}};

// The shape of a list field, with AppRole's message (the framework's comma-string-slice then
// splits and trims it).
absl::Status StringListShape(std::string_view name, const json::value& v) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(Cat("\"", name, "\" must be a list of strings"));
  };
  if (v.is_string()) return absl::OkStatus();
  if (!v.is_array()) return bad();
  for (const auto& e : v.as_array())
    if (!e.is_string()) return bad();
  return absl::OkStatus();
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

// "role/<name>...": the name, else nullopt.
std::optional<std::string_view> RoleNameIn(std::string_view path) {
  if (!StartsWith(path, "role/")) return std::nullopt;
  std::string_view rest = path.substr(5);
  return rest.substr(0, rest.find('/'));
}

absl::Status ValidateRoleName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("role name is required");
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '@'))
      return absl::InvalidArgumentError(
          "role name may only hold letters, digits, '-', '_', '.' and '@'");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Roles

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

// A role's fields (Vault's auth/approle/role/:role_name), for requests and for stored roles.
const Fields& RoleFields() {
  static const Fields kFields{
      {"bind_secret_id",
       {FieldType::kBool, "Require secret_id to be presented when logging in using this AppRole.",
        true}},
      {"secret_id_bound_cidrs",
       {FieldType::kCommaStringSlice,
        "Comma-separated string or list of CIDR blocks; if set, specifies blocks of IP "
        "addresses which can perform the login operation."}},
      {"secret_id_num_uses",
       {FieldType::kInt,
        "Number of times any particular SecretID can be used to fetch a token from this "
        "AppRole, after which the SecretID will expire. A value of zero will allow unlimited "
        "uses.",
        0}},
      {"secret_id_ttl",
       {FieldType::kDuration,
        "Duration in either an integer number of seconds (3600) or an integer time unit (60m) "
        "after which any SecretID expires. A value of zero will allow the SecretID to not "
        "expire."}},
      {"token_ttl",
       {FieldType::kDuration,
        "The incremental lifetime for generated tokens. This current value of this will be "
        "referenced at renewal time."}},
      {"token_max_ttl",
       {FieldType::kDuration,
        "The maximum lifetime for generated tokens. This current value of this will be "
        "referenced at renewal time."}},
      {"token_explicit_max_ttl",
       {FieldType::kDuration,
        "If set, will encode an explicit max TTL onto the token. This is a hard cap even if "
        "token_ttl and token_max_ttl would otherwise allow a renewal."}},
      {"token_period",
       {FieldType::kDuration,
        "The period, if any, to set on the token: every renewal extends it by this much, and "
        "it has no maximum TTL."}},
      {"period", {FieldType::kDuration, "Deprecated: use \"token_period\" instead."}},
      {"token_num_uses",
       {FieldType::kInt,
        "The maximum number of times a generated token may be used (within its lifetime); 0 "
        "means unlimited.",
        0}},
      {"token_no_default_policy",
       {FieldType::kBool,
        "If set, the default policy will not be set on generated tokens; otherwise it will be "
        "added to the policies set in token_policies.",
        false}},
      {"token_policies",
       {FieldType::kCommaStringSlice, "List of token policies to encode onto generated tokens."}},
      {"policies", {FieldType::kCommaStringSlice, "Deprecated: use \"token_policies\" instead."}},
      {"token_bound_cidrs",
       {FieldType::kCommaStringSlice,
        "List of CIDR blocks; if set, specifies blocks of IP addresses which can authenticate "
        "successfully, and ties the resulting token to these blocks as well."}},
      {"token_type",
       {FieldType::kString,
        "The type of token that should be generated: \"default\" or \"service\" (Coffer makes "
        "service tokens only).",
        "default"}},
  };
  return kFields;
}

// Applies the fields `d` gives to `r`; what `d` does not give keeps its value.
absl::Status ApplyRole(Role& r, const FieldData& d) {
  if (d.Has("bind_secret_id")) r.bind_secret_id = d.Bool("bind_secret_id");
  if (d.Has("secret_id_bound_cidrs")) r.secret_id_bound_cidrs = d.Strings("secret_id_bound_cidrs");
  if (d.Has("token_bound_cidrs")) r.token_bound_cidrs = d.Strings("token_bound_cidrs");
  for (const auto& c : r.secret_id_bound_cidrs) RETURN_IF_ERROR(ValidateCidr(c));
  for (const auto& c : r.token_bound_cidrs) RETURN_IF_ERROR(ValidateCidr(c));
  if (d.Has("token_policies"))
    r.token_policies = d.Strings("token_policies");
  else if (d.Has("policies"))
    r.token_policies = d.Strings("policies");
  if (d.Has("secret_id_num_uses")) {
    if (d.Int("secret_id_num_uses") < 0)
      return absl::InvalidArgumentError("secret_id_num_uses cannot be negative");
    r.secret_id_num_uses = d.Int("secret_id_num_uses");
  }
  auto duration = [&](std::string_view name, int64_t& out) {
    if (d.Has(name)) out = d.Duration(name);
  };
  duration("secret_id_ttl", r.secret_id_ttl);
  duration("token_ttl", r.token_ttl);
  duration("token_max_ttl", r.token_max_ttl);
  duration("token_period", r.token_period);
  if (!d.Has("token_period")) duration("period", r.token_period);  // the deprecated name
  duration("token_explicit_max_ttl", r.token_explicit_max_ttl);
  if (d.Has("token_num_uses")) {
    if (d.Int("token_num_uses") < 0)
      return absl::InvalidArgumentError("token_num_uses cannot be negative");
    r.token_num_uses = d.Int("token_num_uses");
  }
  if (d.Has("token_no_default_policy"))
    r.token_no_default_policy = d.Bool("token_no_default_policy");
  if (d.Has("token_type")) {
    const std::string type = d.String("token_type");
    if (type != "default" && type != "service")
      return absl::InvalidArgumentError(
          Cat("token_type \"", type, "\" is not supported: Coffer makes service tokens"));
  }
  if (r.token_ttl > 0 && r.token_max_ttl > 0 && r.token_ttl > r.token_max_ttl)
    return absl::InvalidArgumentError("token_ttl cannot be greater than token_max_ttl");
  if (!r.bind_secret_id && r.secret_id_bound_cidrs.empty() && r.token_bound_cidrs.empty())
    return absl::InvalidArgumentError(
        "at least one constraint must be enabled on the role: bind_secret_id or bound CIDRs");
  return absl::OkStatus();
}

// A stored role goes through the same fields as a request, but for the names kept only for
// reads ("policies", "period") and the values Coffer fixes.
absl::StatusOr<Role> RoleFromStorage(const json::object& o) {
  const auto* name = o.if_contains("name");
  const auto* role_id = o.if_contains("role_id");
  if (!name || !name->is_string() || !role_id || !role_id->is_string())
    return absl::DataLossError("approle role is corrupt");
  json::object copy = o;
  for (const char* k : {"name", "role_id", "policies", "period", "token_type", "local_secret_ids"})
    copy.erase(k);
  Role r;
  auto d = FieldData::Parse(RoleFields(), copy, {});
  if (!d.ok() || !ApplyRole(r, *d).ok()) return absl::DataLossError("approle role is corrupt");
  r.name = std::string(name->as_string());
  r.role_id = std::string(role_id->as_string());
  return r;
}

// ---------------------------------------------------------------------------------------------
// The backend

class AppRoleBackend final : public CompatBackend {
 public:
  explicit AppRoleBackend(const Clock* clock)
      : CompatBackend(
            std::string(kHelp), Paths(),
            // Vault's AppRole: login needs no token; SecretIDs are seal-wrapped.
            core::SpecialPaths{.unauthenticated = {"login"},
                               .seal_wrap_storage = {"secret_id/*", "secret_id_accessor/*"}},
            LegacyFieldRules{.list = StringListShape}),
        clock_(clock) {}

 protected:
  absl::Status NotFound(const Request& req) const override {
    return absl::NotFoundError(Cat("no handler for route \"", req.mount_point, req.path, "\""));
  }

  // As before the path table: a role's name is checked for every operation, and a trailing '/'
  // (which LIST adds) is routed only for the lists and role/:role_name itself.
  absl::Status CheckPath(const Request& req) const override {
    const std::string& p = req.path;
    if (p == "role/") return absl::OkStatus();
    if (auto name = RoleNameIn(p)) {
      RETURN_IF_ERROR(ValidateRoleName(*name));
      std::string_view sub = std::string_view(p).substr(5 + name->size());
      if (!sub.empty()) sub.remove_prefix(1);
      if (p.back() == '/' && !sub.empty() && sub != "secret-id/") return NotFound(req);
      return absl::OkStatus();
    }
    if (!p.empty() && p.back() == '/') return NotFound(req);
    return absl::OkStatus();
  }

  // role-id, secret-id and the single-field paths look the role up first: a missing role is
  // reported before an unsupported operation or a bad field.
  absl::Status BeforeOperation(Request& req, const Path& p, const Captures& c) override {
    constexpr std::string_view kPrefix = "role/{role_name}/";
    const std::string& pattern = p.patterns.front();
    if (!StartsWith(pattern, kPrefix)) return absl::OkStatus();
    const std::string_view sub = std::string_view(pattern).substr(kPrefix.size());
    const bool secret_id = sub == "secret-id";
    if (!secret_id && sub != "role-id" &&
        std::none_of(std::begin(kFieldPaths), std::end(kFieldPaths),
                     [&](const FieldPath& f) { return f.path == sub; }))
      return absl::OkStatus();
    std::string name;
    for (const auto& [k, v] : c)
      if (k == "role_name") name = v;
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (r) return absl::OkStatus();
    if (secret_id) return absl::InvalidArgumentError(Cat("role \"", name, "\" does not exist"));
    return absl::NotFoundError("");
  }

 private:
  std::vector<Path> Paths() {
    auto op = [this](absl::StatusOr<Response> (AppRoleBackend::*m)(Request&, const FieldData&),
                     std::string summary = "") {
      return OperationSpec{[this, m](Request& r, const FieldData& d) { return (this->*m)(r, d); },
                           std::move(summary)};
    };
    const FieldSchema role_name{FieldType::kString, "Name of the AppRole."};
    const FieldSchema secret_id{
        FieldType::kString, "SecretID belonging to the AppRole.", {}, false, true};
    const FieldSchema accessor{FieldType::kString, "Accessor of the SecretID."};
    Fields role_fields = RoleFields();
    role_fields["role_name"] = role_name;

    std::vector<Path> p;
    p.push_back({.patterns = {"login"},
                 .fields = {{"role_id", {FieldType::kString, "RoleID of the AppRole."}},
                            {"secret_id", secret_id}},
                 .operations = {{Operation::kUpdate, op(&AppRoleBackend::Login, "Logs in")}},
                 .synopsis = "Issues a token for a RoleID and one of its role's SecretIDs"});
    p.push_back({.patterns = {"role"},
                 .operations = {{Operation::kList, op(&AppRoleBackend::ListRoles)}},
                 .synopsis = "Lists the roles"});
    p.push_back({.patterns = {"role/{role_name}"},
                 .fields = role_fields,
                 .operations = {{Operation::kRead, op(&AppRoleBackend::ReadRole, "Reads a role")},
                                {Operation::kUpdate,
                                 op(&AppRoleBackend::WriteRole, "Creates or updates a role")},
                                {Operation::kDelete, op(&AppRoleBackend::DeleteRole,
                                                        "Deletes a role and its "
                                                        "SecretIDs")}},
                 .synopsis = "A role: the constraints of a login and the token it gets"});
    for (const FieldPath& f : kFieldPaths) {
      Fields own{{"role_name", role_name}};
      std::vector<std::string> names{std::string(f.field)};
      if (!f.old_name.empty()) names.emplace_back(f.old_name);
      for (const auto& n : names) own[n] = role_fields.at(n);
      p.push_back(
          {.patterns = {Cat("role/{role_name}/", f.path)},
           .fields = std::move(own),
           .operations = {{Operation::kRead, {[this, names](Request& r, const FieldData& d) {
                             return ReadRoleField(r, d, names);
                           }}},
                          {Operation::kUpdate, op(&AppRoleBackend::WriteRoleField)}},
           .synopsis = Cat("The role's \"", f.field, "\" alone")});
    }
    p.push_back({.patterns = {"role/{role_name}/role-id"},
                 .fields = {{"role_name", role_name},
                            {"role_id", {FieldType::kString, "Value to be used as the role_id."}}},
                 .operations = {{Operation::kRead, op(&AppRoleBackend::ReadRoleId)},
                                {Operation::kUpdate, op(&AppRoleBackend::WriteRoleId)}},
                 .synopsis = "The role's RoleID"});
    p.push_back(
        {.patterns = {"role/{role_name}/secret-id"},
         .fields = {{"role_name", role_name},
                    {"metadata",
                     {FieldType::kAny,
                      "Metadata to be tied to the SecretID: a JSON object of strings, or a string "
                      "holding one. It is set on tokens issued with this SecretID, and is logged "
                      "in audit logs in plaintext."}},
                    {"cidr_list",
                     {FieldType::kCommaStringSlice,
                      "Comma separated string or list of CIDR blocks enforcing secret IDs to be "
                      "used from specific set of IP addresses."}},
                    {"num_uses",
                     {FieldType::kInt,
                      "Number of times this SecretID can be used, after which the SecretID "
                      "expires. A value of zero will allow unlimited uses. Overrides the role's "
                      "secret_id_num_uses and may not be higher."}},
                    {"ttl",
                     {FieldType::kDuration,
                      "Duration in seconds (3600) or an integer time unit (60m) after which this "
                      "SecretID expires. A value of zero will allow the SecretID to not expire. "
                      "Overrides the role's secret_id_ttl and may not be longer."}}},
         .operations = {{Operation::kUpdate,
                         op(&AppRoleBackend::CreateSecretId, "Generates a SecretID")},
                        {Operation::kList,
                         op(&AppRoleBackend::ListSecretIds, "Lists the SecretIDs' accessors")}},
         .synopsis = "The role's SecretIDs"});
    {
      // The same as secret-id, with the SecretID given by the caller.
      Path custom = p.back();
      custom.patterns = {"role/{role_name}/custom-secret-id"};
      custom.fields["secret_id"] = {FieldType::kString, "The SecretID to register", {}, true, true};
      custom.operations.erase(Operation::kList);
      custom.synopsis = "Registers a SecretID chosen by the caller";
      p.push_back(std::move(custom));
    }
    auto secret_op = [&](std::string pattern, bool by_accessor, bool destroy) {
      OperationSpec spec{[this, by_accessor, destroy](Request& r, const FieldData& d) {
        return destroy ? DestroySecretId(r, d, by_accessor) : LookupSecretId(r, d, by_accessor);
      }};
      Path path{.patterns = {std::move(pattern)},
                .fields = {{"role_name", role_name},
                           {by_accessor ? "secret_id_accessor" : "secret_id",
                            by_accessor ? accessor : secret_id}},
                .operations = {{Operation::kUpdate, spec}},
                .synopsis = Cat(destroy ? "Destroys" : "Reads the properties of",
                                " a SecretID of the role, given ",
                                by_accessor ? "its accessor" : "the SecretID")};
      if (destroy) path.operations[Operation::kDelete] = spec;
      return path;
    };
    p.push_back(secret_op("role/{role_name}/secret-id/lookup", false, false));
    p.push_back(secret_op("role/{role_name}/secret-id/destroy", false, true));
    p.push_back(secret_op("role/{role_name}/secret-id-accessor/lookup", true, false));
    p.push_back(secret_op("role/{role_name}/secret-id-accessor/destroy", true, true));
    return p;
  }

  // Serializes making the mount's salt (read it, write one if missing) so that two first requests
  // cannot each make one. It guards no member: the salt lives in storage.
  absl::StatusOr<std::string> Salt(storage::Storage* s) {
    MutexLock l(&salt_mu_);
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

  // Role names are case-insensitive, as in Vault: a role is made under its name in lower case
  // (its SecretIDs too), and any spelling finds it. A role that a Coffer before December 2026
  // stored under a name with capitals keeps that name: its exact spelling is looked up first, so
  // it is never taken for a lower-case role of the same letters (WriteRole refuses to make such
  // a twin), and the RoleID index, which holds stored names, finds it at login.
  absl::StatusOr<std::optional<Role>> LoadRole(storage::Storage* s, std::string_view name) {
    ASSIGN_OR_RETURN(auto raw, s->Get(Cat("role/", name)));
    const std::string lower = absl::AsciiStrToLower(AbslView(name));
    if (!raw && lower != name) {
      ASSIGN_OR_RETURN(raw, s->Get(Cat("role/", lower)));
    }
    if (!raw) return std::optional<Role>();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("approle role is corrupt");
    ASSIGN_OR_RETURN(Role r, RoleFromStorage(v.as_object()));
    return std::optional<Role>(std::move(r));
  }

  // Called with role_mu_ held. A RoleID names one role: one that another role holds is refused
  // (it would send that role's clients here, and a later delete of either would drop the other's
  // index entry). Saved under use_mu_: a SecretID being made checks its limits against the role
  // as it is, not as it was before this write.
  absl::Status SaveRole(storage::Storage* s, const Role& r, const std::string& old_role_id) {
    MutexLock uses(&use_mu_);
    json::object o = r.ToJson();
    o["name"] = r.name;
    o["role_id"] = r.role_id;
    std::vector<storage::WriteOp> ops;
    ops.push_back({storage::WriteOp::Kind::kPut, Cat("role/", r.name), json::serialize(o)});
    ASSIGN_OR_RETURN(std::string idh, Hmac(s, r.role_id));
    ASSIGN_OR_RETURN(auto holder, s->Get(Cat("role_id/", idh)));
    if (holder && *holder != r.name) return absl::InvalidArgumentError("role_id already in use");
    ops.push_back({storage::WriteOp::Kind::kPut, Cat("role_id/", idh), r.name});
    if (!old_role_id.empty() && old_role_id != r.role_id) {
      ASSIGN_OR_RETURN(std::string oldh, Hmac(s, old_role_id));
      // Never another role's entry (two roles could share a RoleID before it was checked).
      ASSIGN_OR_RETURN(auto old_holder, s->Get(Cat("role_id/", oldh)));
      if (old_holder && *old_holder == r.name)
        ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role_id/", oldh), ""});
    }
    return s->Write(std::move(ops));
  }

  absl::StatusOr<Response> ListRoles(Request& req, const FieldData&) {
    ASSIGN_OR_RETURN(auto keys, req.storage->List("role/", "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", Arr(keys)}});
  }

  absl::StatusOr<Response> ReadRole(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    return Response::Data(r->ToJson());
  }

  absl::StatusOr<Response> WriteRole(Request& req, const FieldData& d) {
    const std::string name = d.String("role_name");
    MutexLock l(&role_mu_);
    ASSIGN_OR_RETURN(auto existing, LoadRole(req.storage, name));
    Role r = existing ? *existing : Role();
    if (!existing) {
      r.name = absl::AsciiStrToLower(AbslView(name));
      // A role stored with capitals by an older Coffer ("Web") and a new "web" would be two
      // roles that differ only in case: refused (rare: role creation lists the roles once).
      ASSIGN_OR_RETURN(auto names, req.storage->List("role/", "", 0));
      for (const auto& n : names)
        if (absl::AsciiStrToLower(AbslView(n)) == r.name)
          return absl::InvalidArgumentError(
              Cat("role \"", n, "\" already exists with the same name in other letter case; ",
                  "use that name, or delete it first"));
    }
    RETURN_IF_ERROR(ApplyRole(r, d));
    std::string old = r.role_id;
    if (r.role_id.empty()) r.role_id = crypto::RandomUuid();
    RETURN_IF_ERROR(SaveRole(req.storage, r, old));
    return Response::Empty();
  }

  absl::StatusOr<Response> DeleteRole(Request& req, const FieldData& d) {
    const std::string name = d.String("role_name");
    MutexLock l(&role_mu_);
    // With use_mu_ held no login or SecretID creation is midway: none can write back a SecretID
    // of this role after its SecretIDs are gone.
    MutexLock uses(&use_mu_);
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (!r) return Response::Empty();
    ASSIGN_OR_RETURN(std::string idh, Hmac(req.storage, r->role_id));
    std::vector<storage::WriteOp> ops;
    ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role/", r->name), ""});
    ASSIGN_OR_RETURN(auto holder, req.storage->Get(Cat("role_id/", idh)));
    if (holder && *holder == r->name)  // never another role's entry
      ops.push_back({storage::WriteOp::Kind::kDelete, Cat("role_id/", idh), ""});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    RETURN_IF_ERROR(req.storage->DeletePrefix(Cat("secret_id/", r->name, "/")));
    RETURN_IF_ERROR(req.storage->DeletePrefix(Cat("accessor/", r->name, "/")));
    return Response::Empty();
  }

  absl::StatusOr<Response> ReadRoleField(Request& req, const FieldData& d,
                                         const std::vector<std::string>& names) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    json::object all = r->ToJson();
    json::object out;
    for (const auto& n : names) out[n] = all.contains(n) ? all[n] : json::value(nullptr);
    return Response::Data(std::move(out));
  }

  // `d` holds only the path's own field (its schema has no other): the rest of the role stays.
  absl::StatusOr<Response> WriteRoleField(Request& req, const FieldData& d) {
    MutexLock l(&role_mu_);
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    RETURN_IF_ERROR(ApplyRole(*r, d));
    RETURN_IF_ERROR(SaveRole(req.storage, *r, r->role_id));
    return Response::Empty();
  }

  absl::StatusOr<Response> ReadRoleId(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    return Response::Data(json::object{{"role_id", r->role_id}});
  }

  absl::StatusOr<Response> WriteRoleId(Request& req, const FieldData& d) {
    MutexLock l(&role_mu_);
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    const std::string id = d.String("role_id");
    if (id.empty()) return absl::InvalidArgumentError("missing role_id");
    std::string old = r->role_id;
    r->role_id = id;
    RETURN_IF_ERROR(SaveRole(req.storage, *r, old));
    return Response::Empty();
  }

  absl::StatusOr<Response> ListSecretIds(Request& req, const FieldData& d) {
    const std::string name = d.String("role_name");
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, name));
    if (!r) return absl::InvalidArgumentError(Cat("role \"", name, "\" does not exist"));
    ASSIGN_OR_RETURN(auto keys, req.storage->List(Cat("accessor/", r->name, "/"), "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", Arr(keys)}});
  }

  absl::StatusOr<Response> CreateSecretId(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r)
      return absl::InvalidArgumentError(Cat("role \"", d.String("role_name"), "\" does not exist"));
    const std::string& name = r->name;
    json::object meta;
    if (const json::value& m = d.Get("metadata"); !m.is_null()) {
      if (m.is_string()) {
        // Untrusted JSON inside a field: parsed with the request body's limits.
        auto v = ParseUntrustedJson(std::string_view(m.as_string()));
        if (!v.ok() || !v->is_object())
          return absl::InvalidArgumentError("metadata must be a JSON object of strings");
        meta = v->as_object();
      } else if (m.is_object()) {
        meta = m.as_object();
      } else {
        return absl::InvalidArgumentError("metadata must be a JSON object of strings");
      }
      for (const auto& [k, v] : meta)
        if (!v.is_string()) return absl::InvalidArgumentError("metadata values must be strings");
    }
    const std::vector<std::string> cidrs = d.Strings("cidr_list");
    for (const auto& c : cidrs) RETURN_IF_ERROR(ValidateCidr(c));
    // A ttl or num_uses asked for may only narrow the role's (0 is "none": more than any limit),
    // and is refused otherwise, as in Vault; the mount's max lease TTL caps the ttl.
    auto limits = [&](const Role& role) -> absl::StatusOr<std::pair<int64_t, int64_t>> {
      int64_t ttl = role.secret_id_ttl;
      if (d.Has("ttl")) {
        ttl = d.Duration("ttl");
        if (ttl < 0) return absl::InvalidArgumentError("ttl cannot be negative");
        if (role.secret_id_ttl > 0 && (ttl == 0 || ttl > role.secret_id_ttl))
          return absl::InvalidArgumentError("ttl cannot be longer than the role's secret_id_ttl");
      }
      if (req.mount_max_ttl > 0 && ttl > req.mount_max_ttl) ttl = req.mount_max_ttl;
      int64_t num_uses = role.secret_id_num_uses;
      if (d.Has("num_uses")) {
        num_uses = d.Int("num_uses");
        if (num_uses < 0) return absl::InvalidArgumentError("num_uses cannot be negative");
        if (role.secret_id_num_uses > 0 && (num_uses == 0 || num_uses > role.secret_id_num_uses))
          return absl::InvalidArgumentError(
              "num_uses cannot be higher than the role's secret_id_num_uses");
      }
      return std::make_pair(ttl, num_uses);
    };
    RETURN_IF_ERROR(limits(*r).status());  // refused before any work; checked again below

    // custom-secret-id: the caller chooses the SecretID (Vault's, for ids made elsewhere).
    const bool custom = d.Has("secret_id");
    const std::string secret_id = custom ? d.String("secret_id") : crypto::RandomUuid();
    if (custom && secret_id.empty()) return absl::InvalidArgumentError("missing secret_id");
    const std::string accessor = crypto::RandomUuid();
    ASSIGN_OR_RETURN(std::string h, Hmac(req.storage, secret_id));
    int64_t ttl = 0, num_uses = 0;
    {
      // Checked and stored under use_mu_: two registrations of one id cannot both pass; a role
      // deleted meanwhile (DeleteRole holds use_mu_) gets no SecretID left behind; and the
      // limits are the role's as it is now (role writes save under use_mu_).
      MutexLock registering(&use_mu_);
      ASSIGN_OR_RETURN(auto role_now, LoadRole(req.storage, name));
      if (!role_now || role_now->name != name)
        return absl::InvalidArgumentError(Cat("role \"", name, "\" does not exist"));
      ASSIGN_OR_RETURN(std::tie(ttl, num_uses), limits(*role_now));
      if (custom) {
        ASSIGN_OR_RETURN(auto existing, req.storage->Get(Cat("secret_id/", name, "/", h)));
        if (existing) return absl::InvalidArgumentError("SecretID is already registered");
      }
      const int64_t now = clock_->NowUnix();
      json::object entry{{"accessor", accessor},     {"creation_time", now},
                         {"last_updated_time", now}, {"expiration_time", ttl > 0 ? now + ttl : 0},
                         {"secret_id_ttl", ttl},     {"secret_id_num_uses", num_uses},
                         {"metadata", meta},         {"cidr_list", Arr(cidrs)}};
      std::vector<storage::WriteOp> ops;
      ops.push_back(
          {storage::WriteOp::Kind::kPut, Cat("secret_id/", name, "/", h), json::serialize(entry)});
      ops.push_back({storage::WriteOp::Kind::kPut, Cat("accessor/", name, "/", accessor), h});
      RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    }
    return Response::Data(json::object{{"secret_id", secret_id},
                                       {"secret_id_accessor", accessor},
                                       {"secret_id_ttl", ttl},
                                       {"secret_id_num_uses", num_uses}});
  }

  // The name a role's SecretIDs are stored under (LoadRole: any case of it finds the role).
  absl::StatusOr<std::string> StoredRoleName(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("role_name")));
    if (!r)
      return absl::InvalidArgumentError(Cat("role \"", d.String("role_name"), "\" does not exist"));
    return r->name;
  }

  // Resolves a SecretID (or its accessor) of the role stored as `name` to its storage hash.
  absl::StatusOr<std::string> SecretHash(Request& req, const FieldData& d, bool by_accessor,
                                         const std::string& name) {
    if (by_accessor) {
      const std::string acc(absl::StripAsciiWhitespace(d.String("secret_id_accessor")));
      if (acc.empty()) return absl::InvalidArgumentError("missing secret_id_accessor");
      ASSIGN_OR_RETURN(auto h, req.storage->Get(Cat("accessor/", name, "/", acc)));
      if (!h)
        return absl::InvalidArgumentError("failed to find accessor entry for secret_id_accessor");
      return *h;
    }
    const std::string sid(absl::StripAsciiWhitespace(d.String("secret_id")));
    if (sid.empty()) return absl::InvalidArgumentError("missing secret_id");
    return Hmac(req.storage, sid);
  }

  absl::StatusOr<Response> LookupSecretId(Request& req, const FieldData& d, bool by_accessor) {
    ASSIGN_OR_RETURN(const std::string name, StoredRoleName(req, d));
    ASSIGN_OR_RETURN(std::string h, SecretHash(req, d, by_accessor, name));
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
    // Times as Vault writes them (RFC 3339; no expiry is Go's zero time). A SecretID stored
    // before last_updated_time was kept was last updated, at most, when it was made.
    auto time = [&](std::string_view k, std::string_view fallback) {
      const json::value* t = o.if_contains(k);
      if (!t) t = o.if_contains(fallback);
      return t && t->is_int64() ? t->as_int64() : 0;
    };
    const int64_t expires = time("expiration_time", "");
    json::object out{{"secret_id_accessor", o["accessor"]},
                     {"creation_time", Rfc3339Utc(time("creation_time", ""))},
                     {"last_updated_time", Rfc3339Utc(time("last_updated_time", "creation_time"))},
                     {"expiration_time", expires > 0 ? Rfc3339Utc(expires) : kGoZeroTime},
                     {"secret_id_ttl", o["secret_id_ttl"]},
                     {"secret_id_num_uses", o["secret_id_num_uses"]},
                     {"metadata", o["metadata"]},
                     {"cidr_list", o["cidr_list"]},
                     {"token_bound_cidrs", json::array()}};
    return Response::Data(std::move(out));
  }

  absl::StatusOr<Response> DestroySecretId(Request& req, const FieldData& d, bool by_accessor) {
    ASSIGN_OR_RETURN(const std::string name, StoredRoleName(req, d));
    // A login midway (use_mu_) would otherwise write the SecretID back with one use less.
    MutexLock l(&use_mu_);
    ASSIGN_OR_RETURN(std::string h, SecretHash(req, d, by_accessor, name));
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

  absl::StatusOr<Response> Login(Request& req, const FieldData& d) {
    const absl::Status invalid = absl::InvalidArgumentError("invalid role_id or secret_id");
    // Trimmed, as Vault does: a RoleID or SecretID read from a file keeps its newline.
    const std::string role_id(absl::StripAsciiWhitespace(d.String("role_id")));
    if (role_id.empty()) return absl::InvalidArgumentError("missing role_id");
    ASSIGN_OR_RETURN(std::string idh, Hmac(req.storage, role_id));
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
      const std::string sid(absl::StripAsciiWhitespace(d.String("secret_id")));
      if (sid.empty()) return absl::InvalidArgumentError("missing secret_id");
      ASSIGN_OR_RETURN(std::string h, Hmac(req.storage, sid));
      const std::string key = Cat("secret_id/", *name, "/", h);
      MutexLock l(&use_mu_);
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
        o["last_updated_time"] = clock_->NowUnix();
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
    // No name of its own: the token's display name is the mount's ("approle"), as in Vault.
    for (const auto& [k, v] : meta) g.metadata[std::string(k)] = std::string(v.as_string());
    g.metadata["role_name"] = *name;  // last: a SecretID's metadata cannot rename the role
    Response r;
    r.login = std::move(g);
    return r;
  }

  const Clock* const clock_;
  Mutex salt_mu_;
  // Serializes the read-modify-write of a SecretID's remaining uses in storage at login (a SecretID
  // with n uses logs in at most n times) with SecretID creation, destruction and role deletion.
  // Taken after role_mu_ when both are. It guards no member.
  Mutex use_mu_;
  // Serializes role writes (read, change, save): two writers of one role, or of two roles and
  // one RoleID, cannot both pass SaveRole's checks. It guards no member.
  Mutex role_mu_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  const Clock* clock = config.clock ? config.clock : RealClock::Get();
  return std::unique_ptr<core::Backend>(new AppRoleBackend(clock));
}

}  // namespace coffer::auth::approle
