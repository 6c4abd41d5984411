// role/:name and the role list: which service accounts may log in, and the tokens they get.
#include <algorithm>
#include <cctype>

#include "auth/kubernetes/internal.h"
#include "boost/json.hpp"
#include "util/cidr.h"
#include "util/status.h"

namespace coffer::auth::kubernetes {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;
using core::framework::Path;

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Vault's GenericNameRegex: letters, digits, '_', '-' and '.', starting and ending with a
// letter, digit or '_'.
absl::Status ValidateRoleName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("missing role name");
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (char c : name)
    if (!word(c) && c != '-' && c != '.')
      return absl::InvalidArgumentError(
          "role name may only hold letters, digits, '_', '-' and '.'");
  if (!word(name.front()) || !word(name.back()))
    return absl::InvalidArgumentError("role name must start and end with a letter, a digit or '_'");
  return absl::OkStatus();
}

std::map<std::string, FieldSchema> RoleFields() {
  auto deprecated = [](std::string_view replacement) {
    return Cat("Use \"", replacement, "\" instead. If this and \"", replacement,
               "\" are both specified, only \"", replacement, "\" will be used.");
  };
  return {
      {"name", {FieldType::kString, "Name of the role."}},
      {"bound_service_account_names",
       {FieldType::kCommaStringSlice,
        "List of service account names able to access this role. If set to \"*\" all names "
        "are allowed. Globs such as \"vault-*\" are accepted."}},
      {"bound_service_account_namespaces",
       {FieldType::kCommaStringSlice,
        "List of namespaces allowed to access this role. If set to \"*\" all namespaces are "
        "allowed. Globs such as \"dev-*\" are accepted."}},
      {"bound_service_account_namespace_selector",
       {FieldType::kString,
        "A label selector for Kubernetes namespaces: not supported by Coffer (list the "
        "namespaces in bound_service_account_namespaces)."}},
      {"audience", {FieldType::kString, "Optional Audience claim to verify in the JWT."}},
      {"alias_name_source",
       {FieldType::kString,
        "Source to use when deriving the Alias name: \"serviceaccount_uid\" (default) or "
        "\"serviceaccount_name\" (<namespace>/<serviceaccount>)."}},
      {"token_policies",
       {FieldType::kCommaStringSlice, "List of token policies to encode onto generated tokens."}},
      {"policies", {FieldType::kCommaStringSlice, deprecated("token_policies")}},
      {"token_ttl", {FieldType::kDuration, "The initial ttl of the token to generate"}},
      {"ttl", {FieldType::kDuration, deprecated("token_ttl")}},
      {"token_max_ttl", {FieldType::kDuration, "The maximum lifetime of the generated token"}},
      {"max_ttl", {FieldType::kDuration, deprecated("token_max_ttl")}},
      {"token_period",
       {FieldType::kDuration,
        "If set, tokens created via this role will have no max lifetime; instead, their "
        "renewal period will be fixed to this value."}},
      {"period", {FieldType::kDuration, deprecated("token_period")}},
      {"token_num_uses",
       {FieldType::kInt,
        "The maximum number of times a token may be used, a value of zero "
        "means unlimited"}},
      {"num_uses", {FieldType::kInt, deprecated("token_num_uses")}},
      {"token_bound_cidrs",
       {FieldType::kCommaStringSlice,
        "Comma separated string or JSON list of CIDR blocks. If set, specifies the blocks of "
        "IP addresses which are allowed to use the generated token."}},
      {"bound_cidrs", {FieldType::kCommaStringSlice, deprecated("token_bound_cidrs")}},
      {"token_explicit_max_ttl",
       {FieldType::kDuration,
        "If set, tokens created via this role carry an explicit maximum TTL. During renewal, "
        "the current maximum TTL values of the role and the mount are not checked for "
        "changes, and any updates to these values will have no effect on the token being "
        "renewed."}},
      {"token_no_default_policy",
       {FieldType::kBool,
        "If true, the 'default' policy will not automatically be added to generated tokens"}},
      {"token_type",
       {FieldType::kString,
        "The type of token to generate: \"default\" or \"service\" (Coffer makes service "
        "tokens only)."}},
  };
}

// Applies the token fields `d` gives (new names before the deprecated ones, as Vault).
absl::Status ApplyTokenFields(Role& r, const FieldData& d) {
  auto pick = [&](std::string_view name, std::string_view old) -> std::optional<std::string> {
    if (d.Has(name)) return std::string(name);
    if (d.Has(old)) return std::string(old);
    return std::nullopt;
  };
  if (auto f = pick("token_policies", "policies")) {
    r.token_policies = d.Strings(*f);
    r.legacy_policies = *f == "policies";
  }
  if (auto f = pick("token_bound_cidrs", "bound_cidrs")) {
    r.token_bound_cidrs = d.Strings(*f);
    for (const auto& c : r.token_bound_cidrs) RETURN_IF_ERROR(ValidateCidr(c));
  }
  if (auto f = pick("token_ttl", "ttl")) r.token_ttl = d.Duration(*f);
  if (auto f = pick("token_max_ttl", "max_ttl")) r.token_max_ttl = d.Duration(*f);
  if (auto f = pick("token_period", "period")) r.token_period = d.Duration(*f);
  if (auto f = pick("token_num_uses", "num_uses")) r.token_num_uses = d.Int(*f);
  if (d.Has("token_explicit_max_ttl"))
    r.token_explicit_max_ttl = d.Duration("token_explicit_max_ttl");
  if (d.Has("token_no_default_policy"))
    r.token_no_default_policy = d.Bool("token_no_default_policy");
  if (d.Has("token_type")) {
    std::string type = d.String("token_type");
    if (type.empty()) type = "default";
    if (type == "batch" || type == "default-batch" || type == "default-service")
      return absl::InvalidArgumentError(
          Cat("token_type \"", type, "\" is not supported: Coffer makes service tokens"));
    if (type != "default" && type != "service")
      return absl::InvalidArgumentError(Cat("invalid 'token_type' value \"", type, "\""));
    r.token_type = type;
  }
  if (r.token_num_uses < 0) return absl::InvalidArgumentError("token_num_uses cannot be negative");
  if (r.token_ttl < 0 || r.token_max_ttl < 0 || r.token_period < 0 || r.token_explicit_max_ttl < 0)
    return absl::InvalidArgumentError("token TTLs and periods cannot be negative");
  return absl::OkStatus();
}

absl::Status CheckBound(const std::vector<std::string>& v) {
  if (v.size() > 1 && std::find(v.begin(), v.end(), "*") != v.end())
    return absl::InvalidArgumentError("can not mix \"*\" with values");
  return absl::OkStatus();
}

absl::StatusOr<Response> WriteRole(State* state, Request& req, const FieldData& d) {
  const std::string name = d.String("name");
  RETURN_IF_ERROR(ValidateRoleName(name));
  MutexLock l(&state->write_mu);
  ASSIGN_OR_RETURN(auto existing, LoadRole(req.storage, name));
  Role r = existing.value_or(Role{});
  RETURN_IF_ERROR(ApplyTokenFields(r, d));
  if (r.token_period > 0 && req.mount_max_ttl > 0 && r.token_period > req.mount_max_ttl)
    return absl::InvalidArgumentError(Cat("token period of ", r.token_period,
                                          "s is greater than the backend's maximum lease TTL of ",
                                          req.mount_max_ttl, "s"));
  if (r.token_max_ttl > 0 && r.token_ttl > r.token_max_ttl)
    return absl::InvalidArgumentError("token ttl should not be greater than token max ttl");
  Response resp;
  if (req.mount_max_ttl > 0 && r.token_max_ttl > req.mount_max_ttl)
    resp.warnings.emplace_back(
        "max_ttl is greater than the system or backend mount's maximum TTL value; issued "
        "tokens' max TTL value will be truncated");

  if (d.Has("bound_service_account_names")) r.names = d.Strings("bound_service_account_names");
  if (r.names.empty())
    return absl::InvalidArgumentError("\"bound_service_account_names\" can not be empty");
  RETURN_IF_ERROR(CheckBound(r.names));
  if (d.Has("bound_service_account_namespaces"))
    r.namespaces = d.Strings("bound_service_account_namespaces");
  if (!d.String("bound_service_account_namespace_selector").empty())
    return absl::InvalidArgumentError(
        "bound_service_account_namespace_selector is not supported by Coffer (it would need to "
        "read the namespaces' labels from the cluster): list the namespaces, or globs such as "
        "\"team-*\", in bound_service_account_namespaces");
  if (r.namespaces.empty())
    return absl::InvalidArgumentError(
        "\"bound_service_account_namespaces\" can not be empty if "
        "\"bound_service_account_namespace_selector\" is not set");
  RETURN_IF_ERROR(CheckBound(r.namespaces));
  if (d.Has("audience")) r.audience = d.String("audience");
  if (d.Has("alias_name_source") && !d.String("alias_name_source").empty())
    r.alias_name_source = d.String("alias_name_source");
  if (r.alias_name_source != "serviceaccount_uid" && r.alias_name_source != "serviceaccount_name")
    return absl::InvalidArgumentError(
        Cat("invalid alias_name_source \"", r.alias_name_source,
            "\": use \"serviceaccount_uid\" or \"serviceaccount_name\""));
  RETURN_IF_ERROR(req.storage->Put(Cat("role/", Lower(name)), json::serialize(r.ToStorage())));
  return resp;
}

absl::StatusOr<Response> ReadRole(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("name")));
  if (!r) return absl::NotFoundError("");
  return Response::Data(r->ToApi());
}

absl::StatusOr<Response> DeleteRole(State* state, Request& req, const FieldData& d) {
  MutexLock l(&state->write_mu);
  RETURN_IF_ERROR(req.storage->Delete(Cat("role/", Lower(d.String("name")))));
  return Response::Empty();
}

absl::StatusOr<Response> ListRoles(Request& req, const FieldData&) {
  ASSIGN_OR_RETURN(auto keys, req.storage->List("role/"));
  if (keys.empty()) return absl::NotFoundError("");
  json::array a;
  for (const auto& k : keys) a.emplace_back(k);
  return Response::Data(json::object{{"keys", std::move(a)}});
}

}  // namespace

std::vector<Path> RolePaths(State* state) {
  std::vector<Path> p;
  p.push_back({.patterns = {"role"},
               .operations = {{Operation::kList, {ListRoles, "Lists the roles"}}},
               .synopsis = "Lists all the roles registered with the backend."});
  p.push_back(
      {.patterns = {"role/{name}"},
       .fields = RoleFields(),
       .operations = {{Operation::kRead, {ReadRole, "Reads a role"}},
                      {Operation::kUpdate,
                       {[state](Request& r, const FieldData& d) { return WriteRole(state, r, d); },
                        "Creates or updates a role"}},
                      {Operation::kDelete,
                       {[state](Request& r, const FieldData& d) { return DeleteRole(state, r, d); },
                        "Deletes a role"}}},
       .exists = [](Request& req, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
         ASSIGN_OR_RETURN(auto r, LoadRole(req.storage, d.String("name")));
         return std::optional<bool>(r.has_value());
       },
       .synopsis = "Register a role with the backend."});
  return p;
}

}  // namespace coffer::auth::kubernetes
