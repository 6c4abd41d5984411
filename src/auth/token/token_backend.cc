#include "auth/token/token_backend.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "auth/compat_backend.h"
#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "core/policy_store.h"
#include "util/glob.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::auth::token {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::TokenEntry;
using core::framework::ConvertField;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;
using core::framework::OperationSpec;
using core::framework::Path;
using Fields = std::map<std::string, FieldSchema>;

namespace {

constexpr std::string_view kHelp =
    "The token store: creates, looks up, renews and revokes tokens, the credentials every "
    "request carries, and keeps token roles.";

// The token store's lists (policies, CIDRs) are lowercased, as Vault sanitizes policy names.
std::vector<std::string> Lowered(std::vector<std::string> v) {
  for (auto& s : v)
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

// The shape of a list field, with the token store's messages (its values are then split and
// trimmed by the framework's comma-string-slice).
absl::Status PolicyListShape(std::string_view name, const json::value& v) {
  if (v.is_string()) return absl::OkStatus();
  if (v.is_array()) {
    for (const auto& e : v.as_array())
      if (!e.is_string())
        return absl::InvalidArgumentError(Cat("\"", name, "\" must be a list of strings"));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      Cat("\"", name, "\" must be a list of strings or a comma-separated string"));
}

absl::Status MetaShape(std::string_view name, const json::value& v) {
  if (!v.is_object()) return absl::InvalidArgumentError(Cat(name, " must be an object of strings"));
  for (const auto& [k, x] : v.as_object())
    if (!x.is_string())
      return absl::InvalidArgumentError(Cat(name, ".", std::string_view(k), " must be a string"));
  return absl::OkStatus();
}

LegacyFieldRules TokenFieldRules() {
  return {.empty_duration_is_unset = true, .list = PolicyListShape, .map = MetaShape};
}

// A duration field when given (an empty string is not), else `def`.
int64_t DurationOr(const FieldData& d, std::string_view name, int64_t def) {
  return d.Has(name) ? d.Duration(name) : def;
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

// A list for an error message: ["a", "b"], or [] when empty.
std::string ListText(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&out, i ? ", \"" : "\"", v[i], "\"");
  return out + "]";
}

// ---------------------------------------------------------------------------------------------
// Roles

struct Role {
  std::string name;
  std::vector<std::string> allowed_policies, disallowed_policies, bound_cidrs;
  // Vault's '*' globs over policy names (util/glob.h), beside the exact lists.
  std::vector<std::string> allowed_policies_glob, disallowed_policies_glob;
  bool orphan = false, renewable = true, no_default_policy = false;
  std::string path_suffix;
  int64_t period = 0, explicit_max_ttl = 0, ttl = 0, max_ttl = 0, num_uses = 0;

  json::object ToJson() const {
    return json::object{{"name", name},
                        {"allowed_policies", ToArray(allowed_policies)},
                        {"disallowed_policies", ToArray(disallowed_policies)},
                        {"allowed_policies_glob", ToArray(allowed_policies_glob)},
                        {"disallowed_policies_glob", ToArray(disallowed_policies_glob)},
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

// A role's fields (Vault's auth/token/roles/:role_name), for requests and for stored roles.
const Fields& RoleFields() {
  static const Fields kFields{
      {"allowed_policies",
       {FieldType::kCommaStringSlice,
        "If set, tokens can be created with any subset of the policies in this list, rather "
        "than the normal semantics of tokens being a subset of the calling token's policies. "
        "If at creation time no_default_policy is not set and \"default\" is not contained in "
        "disallowed_policies, the \"default\" policy will be added to the created token "
        "automatically."}},
      {"disallowed_policies",
       {FieldType::kCommaStringSlice,
        "If set, successful token creation via this role will require that no policies in the "
        "given list are requested. Adding \"default\" to this list will prevent \"default\" "
        "from being added automatically to created tokens."}},
      {"allowed_policies_glob",
       {FieldType::kCommaStringSlice,
        "If set, tokens can be created with any subset of the policies matching these globs "
        "('*' matches any run of characters), as well as those in allowed_policies."}},
      {"disallowed_policies_glob",
       {FieldType::kCommaStringSlice,
        "If set, successful token creation via this role will require that no requested "
        "policy matches one of these globs. A glob matching \"default\" keeps it from being "
        "added automatically, as in disallowed_policies."}},
      {"orphan",
       {FieldType::kBool,
        "If true, tokens created against this policy will be orphan tokens (they will have no "
        "parent). As such, they will not be automatically revoked by the revocation of any "
        "other token.",
        false}},
      {"renewable",
       {FieldType::kBool,
        "Set to false to disable the ability of the token to be renewed past its initial TTL. "
        "Setting the value to true will allow the token to be renewable up to the system/mount "
        "maximum TTL.",
        true}},
      {"path_suffix",
       {FieldType::kString,
        "If set, tokens created against this role will have the given suffix as part of their "
        "path in addition to the role name. It must not contain \"..\"."}},
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
      {"explicit_max_ttl",
       {FieldType::kDuration, "Deprecated: use \"token_explicit_max_ttl\" instead."}},
      {"token_period",
       {FieldType::kDuration,
        "If set, tokens created against this role will be periodic: they have no maximum TTL "
        "(unless an explicit max TTL is also set) and every renewal uses the given period."}},
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
      {"token_bound_cidrs",
       {FieldType::kCommaStringSlice,
        "List of CIDR blocks; if set, specifies blocks of IP addresses which can use the "
        "generated tokens."}},
      {"bound_cidrs",
       {FieldType::kCommaStringSlice, "Deprecated: use \"token_bound_cidrs\" instead."}},
      {"token_type",
       {FieldType::kString,
        "The type of token that should be generated: \"service\" or \"default\" (Coffer makes "
        "service tokens only).",
        "default"}},
  };
  return kFields;
}

// Applies the fields `d` gives to `r`; what `d` does not give keeps its value.
absl::Status ApplyRole(Role& r, const FieldData& d) {
  if (d.Has("allowed_policies")) r.allowed_policies = Lowered(d.Strings("allowed_policies"));
  if (d.Has("disallowed_policies"))
    r.disallowed_policies = Lowered(d.Strings("disallowed_policies"));
  if (d.Has("allowed_policies_glob"))
    r.allowed_policies_glob = Lowered(d.Strings("allowed_policies_glob"));
  if (d.Has("disallowed_policies_glob"))
    r.disallowed_policies_glob = Lowered(d.Strings("disallowed_policies_glob"));
  for (const char* k : {"token_bound_cidrs", "bound_cidrs"})
    if (d.Has(k)) r.bound_cidrs = Lowered(d.Strings(k));
  if (d.Has("orphan")) r.orphan = d.Bool("orphan");
  if (d.Has("renewable")) r.renewable = d.Bool("renewable");
  if (d.Has("token_no_default_policy")) r.no_default_policy = d.Bool("token_no_default_policy");
  if (d.Has("path_suffix")) {
    std::string suffix = d.String("path_suffix");
    if (suffix.find("..") != std::string::npos)
      return absl::InvalidArgumentError("path_suffix must not contain \"..\"");
    r.path_suffix = std::move(suffix);
  }
  r.period = DurationOr(d, "period", r.period);
  r.period = DurationOr(d, "token_period", r.period);
  r.explicit_max_ttl = DurationOr(d, "explicit_max_ttl", r.explicit_max_ttl);
  r.explicit_max_ttl = DurationOr(d, "token_explicit_max_ttl", r.explicit_max_ttl);
  r.ttl = DurationOr(d, "token_ttl", r.ttl);
  r.max_ttl = DurationOr(d, "token_max_ttl", r.max_ttl);
  if (d.Has("token_num_uses")) {
    if (d.Int("token_num_uses") < 0)
      return absl::InvalidArgumentError("token_num_uses must not be negative");
    r.num_uses = d.Int("token_num_uses");
  }
  if (d.Has("token_type")) {
    std::string type = d.String("token_type");
    if (type != "service" && type != "default")
      return absl::InvalidArgumentError(
          Cat("token_type \"", type, "\" is not supported: Coffer makes service tokens"));
  }
  if (r.ttl > 0 && r.max_ttl > 0 && r.ttl > r.max_ttl)
    return absl::InvalidArgumentError("token_ttl cannot be greater than token_max_ttl");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// The backend

class TokenBackend final : public CompatBackend {
 public:
  TokenBackend(core::TokenStore* tokens, const Clock* clock, const core::SystemView* system)
      : CompatBackend(std::string(kHelp), Paths(),
                      // Vault's token store: listing accessors and revoking a token without its
                      // children need sudo (Vault's revoke-orphan handler checks sudo itself for
                      // the body form).
                      core::SpecialPaths{.root = {"revoke-orphan", "revoke-orphan/*", "accessors*"},
                                         // lookup/<token>: the token is in the URL.
                                         .secret_path_prefixes = {"lookup/"}},
                      TokenFieldRules()),
        tokens_(tokens),
        clock_(clock),
        system_(system) {}

  // On an HA standby: the lookups (POSTed with the token in the body, as Vault's clients do).
  bool ServesOnStandby(std::string_view path, core::Operation op) const override {
    if (core::Backend::ServesOnStandby(path, op)) return true;
    return (op == core::Operation::kUpdate || op == core::Operation::kCreate) &&
           (path == "lookup" || path == "lookup-self" || path == "lookup-accessor");
  }

 protected:
  absl::Status NotFound(const Request& req) const override {
    return absl::NotFoundError(Cat("no handler for route \"auth/token/", req.path, "\""));
  }

  // As before the path table: a role name is checked for every operation, and a trailing '/'
  // (which LIST adds) is routed only for the lists and the paths that take a name after '/'.
  absl::Status CheckPath(const Request& req) const override {
    const std::string& p = req.path;
    if (StartsWith(p, "roles/") && p != "roles/") {
      std::string_view name = std::string_view(p).substr(6);
      if (name.empty() || name.find('/') != std::string_view::npos)
        return absl::InvalidArgumentError("role name must not be empty or contain '/'");
    }
    if (!p.empty() && p.back() == '/' && p != "roles/" && p != "accessors/" &&
        !StartsWith(p, "create/") && !StartsWith(p, "lookup/"))
      return NotFound(req);
    return absl::OkStatus();
  }

  // A token made by a role looks the role up first, before the other fields are parsed: the body's
  // role_name must be a string (even when the URL names the role, which wins), and an unknown
  // role is reported before a bad field.
  absl::Status BeforeOperation(Request& req, const Path& p, const Captures& c) override {
    if (p.patterns.front() != "create" ||
        (req.op != Operation::kUpdate && req.op != Operation::kCreate))
      return absl::OkStatus();
    // The role is the URL's only (create/<role>), as Vault's: the ACL of that path is what lets
    // a caller use the role. A role_name in the body of create or create-orphan (hvac's
    // create_orphan sends one) is not read, as in Vault; Create warns about it.
    std::string name;
    for (const auto& [k, v] : c)
      if (k == "role_name") name = v;
    if (name.empty()) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto role, LoadRole(req, name));
    if (!role) return absl::InvalidArgumentError(Cat("unknown role ", name));
    return absl::OkStatus();
  }

 private:
  std::vector<Path> Paths() {
    auto op = [this](absl::StatusOr<Response> (TokenBackend::*m)(Request&, const FieldData&),
                     std::string summary) {
      return OperationSpec{[this, m](Request& r, const FieldData& d) { return (this->*m)(r, d); },
                           std::move(summary)};
    };
    const FieldSchema token_field{FieldType::kString, "The token."};
    const FieldSchema accessor_field{FieldType::kString, "The accessor of the token."};
    const FieldSchema increment_field{
        FieldType::kDuration,
        "The requested lease increment, e.g. \"30s\" or \"5m\". It may not be honored, for "
        "instance for periodic tokens; if not given, the token's TTL is used again."};

    std::vector<Path> p;
    p.push_back(
        {.patterns = {"create", "create-orphan", "create/{role_name*}"},
         .fields =
             {{"role_name",
               {FieldType::kString,
                "The name of the token role (in the URL as create/:role_name, or in the body)."}},
              {"policies",
               {FieldType::kCommaStringSlice,
                "A list of policies for the token. This must be a subset of the policies "
                "belonging to the token making the request, unless root. If not specified, "
                "defaults to all the policies of the calling token."}},
              {"meta",
               {FieldType::kMap,
                "A map of string to string valued metadata. This is passed through to the audit "
                "devices."}},
              {"no_parent",
               {FieldType::kBool,
                "This argument only has effect if used by a root or sudo caller. When set to "
                "true, the token created will not have a parent.",
                false}},
              {"no_default_policy",
               {FieldType::kBool,
                "If true the default policy will not be contained in this token's policy set.",
                false}},
              {"renewable",
               {FieldType::kBool,
                "Set to false to disable the ability of the token to be renewed past its initial "
                "TTL. Setting the value to true will allow the token to be renewable up to the "
                "system/mount maximum TTL.",
                true}},
              {"lease", {FieldType::kDuration, "Deprecated: use \"ttl\" instead."}},
              {"ttl",
               {FieldType::kDuration,
                "The TTL period of the token, provided as \"1h\", where hour is the largest "
                "suffix. If not provided, the token is valid for the default lease TTL, or "
                "indefinitely if the root policy is used."}},
              {"type",
               {FieldType::kString,
                "The token type: \"service\" (Coffer makes service tokens only)."}},
              {"explicit_max_ttl",
               {FieldType::kDuration,
                "If set, the token will have an explicit max TTL set upon it. This maximum token "
                "TTL cannot be changed later, and unlike with normal tokens, updates to the "
                "system/mount max TTL value will have no effect at renewal time."}},
              {"display_name", {FieldType::kString, "The display name of the token.", "token"}},
              {"num_uses",
               {FieldType::kInt,
                "The maximum uses for the given token. This can be used to create a one-time-token "
                "or limited use token. The value of 0 has no limit to the number of uses.",
                0}},
              {"period",
               {FieldType::kDuration,
                "If specified, the token will be periodic; it will have no maximum TTL (unless an "
                "\"explicit_max_ttl\" is also set) but every renewal will use the given period. "
                "Requires a root token or one with the sudo capability."}},
              {"entity_alias",
               {FieldType::kString,
                "Name of the entity alias to associate with during token creation (not supported "
                "by Coffer)."}},
              {"id",
               {FieldType::kString,
                "The ID of the client token (not supported by Coffer: tokens are random)."}}},
         .operations = {{Operation::kUpdate, op(&TokenBackend::Create, "Creates a token")}},
         .synopsis = "Creates a token: a child of the caller, an orphan, or by a role",
         .description =
             "create makes a child of the calling token; create-orphan a token without a parent; "
             "create/:role_name a token as the role allows."});
    p.push_back({.patterns = {"lookup-self"},
                 .operations = {{Operation::kRead, op(&TokenBackend::LookupSelf, "")},
                                {Operation::kUpdate, op(&TokenBackend::LookupSelf, "")}},
                 .synopsis = "Returns information about the calling token"});
    p.push_back(
        {.patterns = {"lookup", "lookup/{url_token*}"},
         .fields = {{"token", {FieldType::kString, "Token to look up."}},
                    {"url_token",
                     {FieldType::kString,
                      "Token to look up, in the URL (the body's \"token\" takes precedence)."}}},
         .operations = {{Operation::kRead, op(&TokenBackend::Lookup, "")},
                        {Operation::kUpdate, op(&TokenBackend::Lookup, "")}},
         .synopsis = "Returns information about a token"});
    p.push_back({.patterns = {"lookup-accessor"},
                 .fields = {{"accessor", accessor_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::LookupAccessor, "")}},
                 .synopsis = "Returns information about the token with the given accessor; the "
                             "token itself is never shown"});
    p.push_back({.patterns = {"renew-self"},
                 .fields = {{"increment", increment_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::RenewSelf, "")}},
                 .synopsis = "Renews the calling token"});
    p.push_back({.patterns = {"renew"},
                 .fields = {{"token", token_field}, {"increment", increment_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::Renew, "")}},
                 .synopsis = "Renews a token"});
    p.push_back({.patterns = {"renew-accessor"},
                 .fields = {{"accessor", accessor_field}, {"increment", increment_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::RenewAccessor, "")}},
                 .synopsis = "Renews the token with the given accessor"});
    p.push_back({.patterns = {"revoke-self"},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::RevokeSelf, "")}},
                 .synopsis = "Revokes the calling token and all its children"});
    p.push_back({.patterns = {"revoke", "revoke-orphan"},
                 .fields = {{"token", token_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::Revoke, "")}},
                 .synopsis = "Revokes a token and its children (revoke-orphan: its children "
                             "become orphans; needs sudo)"});
    p.push_back({.patterns = {"revoke-accessor"},
                 .fields = {{"accessor", accessor_field}},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::RevokeAccessor, "")}},
                 .synopsis = "Revokes the token with the given accessor and its children"});
    p.push_back(
        {.patterns = {"accessors"},
         .fields = {{"after", {FieldType::kString, "List the accessors after this one."}},
                    {"limit", {FieldType::kInt, "The most accessors to list; 0: no limit.", 0}}},
         .operations = {{Operation::kList, op(&TokenBackend::ListAccessors, "")}},
         .synopsis = "Lists the accessors of all tokens (needs sudo)"});
    p.push_back({.patterns = {"roles"},
                 .operations = {{Operation::kList, op(&TokenBackend::ListRoles, "")}},
                 .synopsis = "Lists the token roles"});
    Fields role_fields = RoleFields();
    role_fields["role_name"] = {FieldType::kString, "The name of the token role."};
    p.push_back(
        {.patterns = {"roles/{role_name}"},
         .fields = std::move(role_fields),
         .operations = {{Operation::kRead, op(&TokenBackend::ReadRole, "Reads a role")},
                        {Operation::kUpdate,
                         op(&TokenBackend::WriteRole, "Creates or updates a role")},
                        {Operation::kDelete, op(&TokenBackend::DeleteRole, "Deletes a role")}},
         .synopsis = "A token role: the policies and properties of the tokens created "
                     "through create/:role_name"});
    p.push_back({.patterns = {"tidy"},
                 .operations = {{Operation::kUpdate, op(&TokenBackend::Tidy, "")}},
                 .synopsis = "Removes expired tokens and what refers to them"});
    return p;
  }

  absl::StatusOr<Response> LookupSelf(Request& req, const FieldData&) {
    return Response::Data(LookupData(*req.token, req.client_token, clock_->NowUnix()));
  }

  absl::StatusOr<Response> Lookup(Request& req, const FieldData& d) {
    const std::string t = d.Has("token") ? d.String("token") : d.String("url_token");
    if (t.empty()) return absl::InvalidArgumentError("missing token to look up");
    ASSIGN_OR_RETURN(auto e, tokens_->Lookup(t));
    // Vault: 403, as for any request made with a token that does not exist.
    if (!e) return absl::PermissionDeniedError("bad token");
    return Response::Data(LookupData(*e, t, clock_->NowUnix()));
  }

  absl::StatusOr<Response> LookupAccessor(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto e, ByAccessor(d));
    return Response::Data(LookupData(e, "", clock_->NowUnix()));
  }

  absl::StatusOr<Response> RenewSelf(Request& req, const FieldData& d) {
    return DoRenew(req, d, *req.token, req.client_token);
  }

  absl::StatusOr<Response> Renew(Request& req, const FieldData& d) {
    const std::string tok = d.String("token");
    if (tok.empty()) return absl::InvalidArgumentError("missing token to renew");
    ASSIGN_OR_RETURN(auto e, tokens_->Lookup(tok));
    if (!e) return absl::InvalidArgumentError("bad token");
    return DoRenew(req, d, *e, tok);
  }

  absl::StatusOr<Response> RenewAccessor(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto e, ByAccessor(d));
    return DoRenew(req, d, e, "");
  }

  absl::StatusOr<Response> DoRenew(Request& req, const FieldData& d, const TokenEntry& target,
                                   const std::string& presented) {
    std::vector<std::string> warnings;
    // A login's token is bound by its auth method's mount as tuned now, as in Vault (an auth
    // mount tuned down to an hour caps the renewals of the tokens it issued before); a token
    // made here, by this mount's.
    int64_t max_ttl = req.mount_max_ttl;
    // One whose auth method is no longer mounted there is not renewed: its mount's limit is
    // unknown. Disabling a method revokes its tokens and moving one moves them, so this is
    // reached only when either failed partway (each logs it).
    if (system_ && StartsWith(target.path, "auth/") && !StartsWith(target.path, req.mount_point)) {
      const std::optional<int64_t> auth_max = system_->MountMaxTtl(target.path);
      if (!auth_max)
        return absl::InvalidArgumentError(
            Cat("the auth method that issued this token is no longer mounted at its path (",
                target.path, "); log in again"));
      if (*auth_max > 0) max_ttl = *auth_max;
    }
    ASSIGN_OR_RETURN(auto renewed, tokens_->Renew(target.id_hash, DurationOr(d, "increment", 0),
                                                  max_ttl, &warnings));
    Response r;
    r.auth = AuthBlock(renewed, presented);
    r.warnings = std::move(warnings);
    return r;
  }

  absl::StatusOr<Response> RevokeSelf(Request& req, const FieldData&) {
    RETURN_IF_ERROR(tokens_->Revoke(req.token->id_hash));
    return Response::Empty();
  }

  absl::StatusOr<Response> Revoke(Request& req, const FieldData& d) {
    const std::string tok = d.String("token");
    if (tok.empty()) return absl::InvalidArgumentError("missing token to revoke");
    ASSIGN_OR_RETURN(auto e, tokens_->Lookup(tok));
    if (e) RETURN_IF_ERROR(tokens_->Revoke(e->id_hash, req.path == "revoke-orphan"));
    return Response::Empty();
  }

  absl::StatusOr<Response> RevokeAccessor(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto e, ByAccessor(d));
    RETURN_IF_ERROR(tokens_->Revoke(e.id_hash));
    return Response::Empty();
  }

  absl::StatusOr<Response> ListAccessors(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto keys,
                     tokens_->Accessors(d.String("after"),
                                        static_cast<size_t>(std::max<int64_t>(0, d.Int("limit")))));
    if (keys.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", ToArray(keys)}});
  }

  absl::StatusOr<Response> ListRoles(Request& req, const FieldData&) {
    ASSIGN_OR_RETURN(auto keys, req.storage->List("roles/", "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", ToArray(keys)}});
  }

  absl::StatusOr<Response> ReadRole(Request& req, const FieldData& d) {
    ASSIGN_OR_RETURN(auto r, LoadRole(req, d.String("role_name")));
    if (!r) return absl::NotFoundError("");
    return Response::Data(r->ToJson());
  }

  absl::StatusOr<Response> WriteRole(Request& req, const FieldData& d) {
    const std::string name = d.String("role_name");
    ASSIGN_OR_RETURN(auto existing, LoadRole(req, name));
    Role r = existing ? *existing : Role();
    r.name = name;
    RETURN_IF_ERROR(ApplyRole(r, d));
    RETURN_IF_ERROR(req.storage->Put(Cat("roles/", name), json::serialize(r.ToJson())));
    return Response::Empty();
  }

  absl::StatusOr<Response> DeleteRole(Request& req, const FieldData& d) {
    RETURN_IF_ERROR(req.storage->Delete(Cat("roles/", d.String("role_name"))));
    return Response::Empty();
  }

  absl::StatusOr<Response> Tidy(Request& req, const FieldData&) {
    ASSIGN_OR_RETURN(int n, tokens_->Tidy(1000000));
    Response r = Response::Data(json::object{{"revoked", n}});
    r.warnings.emplace_back("Tidy operation successfully completed.");
    return r;
  }

  absl::StatusOr<TokenEntry> ByAccessor(const FieldData& d) {
    const std::string acc = d.String("accessor");
    if (acc.empty()) return absl::InvalidArgumentError("missing accessor");
    ASSIGN_OR_RETURN(auto e, tokens_->LookupByAccessor(acc));
    if (!e) return absl::InvalidArgumentError("invalid accessor");
    return *e;
  }

  // A stored role goes through the same fields as a request.
  absl::StatusOr<std::optional<Role>> LoadRole(Request& req, std::string_view name) {
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("roles/", name)));
    if (!raw) return std::optional<Role>();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("token role is corrupt");
    ASSIGN_OR_RETURN(FieldData d, FieldData::Parse(RoleFields(), v.as_object(), {}));
    Role r;
    r.name = std::string(name);
    RETURN_IF_ERROR(ApplyRole(r, d));
    return std::optional<Role>(std::move(r));
  }

  absl::StatusOr<Response> Create(Request& req, const FieldData& d) {
    const TokenEntry& parent = *req.token;
    std::optional<Role> role;
    // create/:role_name names the role in the URL, never the body (BeforeOperation has refused a
    // body's role_name, and an unknown role, already).
    const std::string role_name =
        StartsWith(req.path, "create/") ? req.path.substr(7) : std::string();
    if (!role_name.empty()) {
      ASSIGN_OR_RETURN(role, LoadRole(req, role_name));
      if (!role) return absl::InvalidArgumentError(Cat("unknown role ", role_name));
    }
    for (const char* unsupported : {"id", "entity_alias"}) {
      if (!d.String(unsupported).empty())
        return absl::InvalidArgumentError(
            Cat("\"", unsupported, "\" is not supported: Coffer only makes random tokens"));
    }
    const std::string type = d.String("type");
    if (type != "service" && !type.empty())
      return absl::InvalidArgumentError(
          Cat("token type \"", type, "\" is not supported: Coffer makes service tokens"));
    std::optional<int64_t> uses;
    if (d.Has("num_uses")) uses = d.Int("num_uses");
    int64_t ttl = DurationOr(d, "ttl", -1);
    if (ttl < 0) ttl = DurationOr(d, "lease", -1);  // legacy name
    int64_t explicit_max = DurationOr(d, "explicit_max_ttl", 0);
    int64_t period = DurationOr(d, "period", 0);
    if (uses && *uses < 0) return absl::InvalidArgumentError("number of uses cannot be negative");

    const bool privileged = parent.IsRoot() || req.sudo;  // sudo on this path (set by the core)
    // A periodic token lives as long as it is renewed: asking for one needs root or sudo, with a
    // role or without (a role's own period is the operator's choice, and caps the request's).
    if (period > 0 && !privileged)
      return absl::InvalidArgumentError(
          "root or sudo privileges required to create periodic token");
    const bool no_parent = d.Bool("no_parent");
    TokenEntry e;
    e.meta.clear();
    for (const auto& [k, v] : d.Map("meta"))  // strings only (checked by MetaShape)
      e.meta[std::string(k)] = std::string(v.as_string());
    std::vector<std::string> policies =
        d.Has("policies") ? Lowered(d.Strings("policies")) : std::vector<std::string>{};
    const bool asked_no_default = d.Bool("no_default_policy");
    bool add_default = !asked_no_default;
    auto has = [](const std::vector<std::string>& list, std::string_view p) {
      return std::find(list.begin(), list.end(), p) != list.end();
    };
    const bool parent_has_default = has(parent.policies, "default");
    // As Vault, a role's policy rules apply when it names allowed or disallowed policies; a role
    // with neither (one that only sets TTLs, say) makes tokens under the rules for no role.
    auto matches = [](const std::vector<std::string>& globs, std::string_view p) {
      return std::any_of(globs.begin(), globs.end(),
                         [&](const std::string& g) { return StarGlobMatch(g, p); });
    };
    const bool role_allows =
        role && (!role->allowed_policies.empty() || !role->allowed_policies_glob.empty());
    const bool role_rules = role && (role_allows || !role->disallowed_policies.empty() ||
                                     !role->disallowed_policies_glob.empty());
    if (role && role->no_default_policy) add_default = false;
    if (role_rules) {
      auto disallowed = [&](std::string_view p) {
        return has(role->disallowed_policies, p) || matches(role->disallowed_policies_glob, p);
      };
      if (disallowed("default")) add_default = false;
      // Nothing asked: the role's allowed policies (its globs name none to give: a role with
      // globs only gives "default", as Vault), else the parent's.
      if (policies.empty()) policies = role_allows ? role->allowed_policies : parent.policies;
      for (const auto& p : policies) {
        if (disallowed(p))
          return absl::InvalidArgumentError(
              Cat("token policy \"", p, "\" is disallowed by role \"", role->name,
                  "\" (disallowed_policies ", ListText(role->disallowed_policies),
                  ", disallowed_policies_glob ", ListText(role->disallowed_policies_glob), ")"));
        // "default" passes only where it would be added anyway: a role with
        // token_no_default_policy keeps it out unless its allowed policies name it.
        if (p == "default" && add_default) continue;
        if (role_allows) {
          if (!has(role->allowed_policies, p) && !matches(role->allowed_policies_glob, p))
            return absl::InvalidArgumentError(Cat("token policy \"", p, "\" is not among role \"",
                                                  role->name, "\"'s allowed policies ",
                                                  ListText(role->allowed_policies),
                                                  " and matches none of its allowed_policies_glob ",
                                                  ListText(role->allowed_policies_glob)));
        } else if (!parent.IsRoot() && !has(parent.policies, p)) {
          return absl::InvalidArgumentError(
              Cat("token policy \"", p, "\" is not held by the calling token (role \"", role->name,
                  "\" names no allowed policies or globs)"));
        }
      }
    } else {
      // A child inheriting its parent's policies, or one made without root or sudo, gets
      // "default" only when its parent holds it (a token made with no_default_policy cannot
      // hand out lookup-self, cubbyhole and the rest of the default policy); asking for it
      // then is asking for more than the parent has.
      const bool inherited = policies.empty();
      if (inherited) policies = parent.policies;
      if ((inherited || !privileged) && !parent_has_default) add_default = false;
      if (!parent.IsRoot()) {
        for (const auto& p : policies) {
          if (p == "default" && (privileged || parent_has_default)) continue;
          if (!has(parent.policies, p))
            return absl::InvalidArgumentError(Cat("child policies must be subset of parent: \"", p,
                                                  "\" is not held by the calling token"));
        }
      }
    }
    if (role) {
      e.parent_hash = role->orphan ? "" : parent.id_hash;
      e.renewable = role->renewable;
      e.path = Cat("auth/token/create/", role->name, role->path_suffix.empty() ? "" : "/",
                   role->path_suffix);
      e.role = role->name;
      if (role->period > 0) period = period > 0 ? std::min(period, role->period) : role->period;
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
      const bool orphan = req.path == "create-orphan" || no_parent;
      if (no_parent && req.path != "create-orphan" && !privileged)
        return absl::InvalidArgumentError(
            "root or sudo privileges required to create orphan token");
      e.parent_hash = orphan ? "" : parent.id_hash;
      // A child is bound where its parent is: a CIDR-bound token cannot make an unbound one.
      if (!orphan) e.bound_cidrs = parent.bound_cidrs;
      e.path = req.path == "create-orphan" ? "auth/token/create-orphan" : "auth/token/create";
    }
    if (d.Has("renewable")) e.renewable = d.Bool("renewable") && (!role || role->renewable);
    // no_default_policy keeps "default" out even when asked for or inherited (as Vault).
    if (asked_no_default)
      policies.erase(std::remove(policies.begin(), policies.end(), "default"), policies.end());
    if (std::string_view reserved = core::ReservedPolicyIn(policies); !reserved.empty())
      return absl::InvalidArgumentError(Cat("cannot assign policy \"", reserved, "\""));
    e.policies = Normalize(policies, add_default);
    if (e.policies.empty())
      return absl::InvalidArgumentError(
          role && !role->allowed_policies_glob.empty() && role->allowed_policies.empty()
              ? Cat("token must have at least one policy: name them in \"policies\" (role \"",
                    role->name, "\"'s allowed_policies_glob gives none by itself)")
              : std::string("token must have at least one policy"));
    // Only root makes root: a role allowing "root", or a parent's policies copied, must not
    // mint one for anyone else.
    if (!parent.IsRoot() &&
        std::find(e.policies.begin(), e.policies.end(), "root") != e.policies.end())
      return absl::InvalidArgumentError(
          "root tokens may not be created without parent token being root");
    const std::string display = d.String("display_name");
    e.display_name = d.Has("display_name") && !display.empty() ? "token-" + display : "token";
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
    if (!role && !d.String("role_name").empty())
      r.warnings.emplace_back(
          "role_name in the request body is not read (as in Vault): the token was made without "
          "the role; use auth/token/create/<role_name>");
    return r;
  }

  core::TokenStore* const tokens_;
  const Clock* const clock_;
  const core::SystemView* const system_;  // may be null (tests)
};

}  // namespace

std::unique_ptr<core::Backend> NewBackend(core::TokenStore* tokens, const Clock* clock,
                                          const core::SystemView* system) {
  return std::make_unique<TokenBackend>(tokens, clock, system);
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return NewBackend(config.system->Tokens(), config.clock ? config.clock : RealClock::Get(),
                    config.system);
}

}  // namespace coffer::auth::token
