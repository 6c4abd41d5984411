// PKI engine: roles/:name (LIST, GET, POST, PATCH, DELETE) with Vault's parameters and defaults.
#include <set>

#include "engines/pki/pki_internal.h"
#include "util/cidr.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;

namespace {

// Accepted but without effect in Coffer (documented in docs/compatibility.md).
const std::set<std::string, std::less<>> kAcceptedOnly = {
    "allowed_domains_template", "allowed_uri_sans_template",
    "allowed_serial_numbers",   "allowed_user_ids",
    "cn_validations",           "policy_identifiers",
    "allow_token_displayname",  "backend",
    "require_cn_for_sign",      "allow_wildcard_certificates_in_cn"};

}  // namespace

json::object Role::ToJson() const {
  return json::object{
      {"ttl", ttl},
      {"max_ttl", max_ttl},
      {"not_before_duration", not_before_duration},
      {"allowed_domains", ToArray(allowed_domains)},
      {"allow_bare_domains", allow_bare_domains},
      {"allow_subdomains", allow_subdomains},
      {"allow_glob_domains", allow_glob_domains},
      {"allow_wildcard_certificates", allow_wildcard_certificates},
      {"allow_any_name", allow_any_name},
      {"allow_localhost", allow_localhost},
      {"enforce_hostnames", enforce_hostnames},
      {"allow_ip_sans", allow_ip_sans},
      {"allowed_ip_sans_cidr", ToArray(allowed_ip_sans_cidr)},
      {"allowed_uri_sans", ToArray(allowed_uri_sans)},
      {"allowed_other_sans", ToArray(allowed_other_sans)},
      {"require_cn", require_cn},
      {"use_csr_common_name", use_csr_common_name},
      {"use_csr_sans", use_csr_sans},
      {"server_flag", server_flag},
      {"client_flag", client_flag},
      {"code_signing_flag", code_signing_flag},
      {"email_protection_flag", email_protection_flag},
      {"key_usage", ToArray(key_usage)},
      {"ext_key_usage", ToArray(ext_key_usage)},
      {"ext_key_usage_oids", ToArray(ext_key_usage_oids)},
      {"organization", ToArray(organization)},
      {"ou", ToArray(ou)},
      {"country", ToArray(country)},
      {"locality", ToArray(locality)},
      {"province", ToArray(province)},
      {"street_address", ToArray(street_address)},
      {"postal_code", ToArray(postal_code)},
      {"key_type", key_type},
      {"key_bits", key_bits},
      {"signature_bits", signature_bits},
      {"use_pss", use_pss},
      {"no_store", no_store},
      {"generate_lease", generate_lease},
      {"basic_constraints_valid_for_non_ca", basic_constraints_valid_for_non_ca},
      {"issuer_ref", issuer_ref},
      {"allowed_domains_template", false},
      {"allowed_uri_sans_template", false},
      {"allowed_serial_numbers", json::array()},
      {"allowed_user_ids", json::array()},
      {"cn_validations", json::array{"email", "hostname"}},
      {"policy_identifiers", json::array()},
      {"allow_token_displayname", false},
  };
}

absl::Status Role::Apply(const json::object& d, std::vector<std::string>* unknown) {
  auto dur = [&](std::string_view k, int64_t* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, DurationField(d, k));
    if (v) *dst = *v;
    return absl::OkStatus();
  };
  auto flag = [&](std::string_view k, bool* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, JsonBool(d, k));
    if (v) *dst = *v;
    return absl::OkStatus();
  };
  auto list = [&](std::string_view k, std::vector<std::string>* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, StringList(d, k));
    if (v) *dst = std::move(*v);
    return absl::OkStatus();
  };
  auto integer = [&](std::string_view k, int64_t* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, JsonInt(d, k));
    if (v) *dst = *v;
    return absl::OkStatus();
  };
  auto str = [&](std::string_view k, std::string* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, JsonString(d, k));
    if (v) *dst = *v;
    return absl::OkStatus();
  };
  static const std::set<std::string, std::less<>> kKnown = {"ttl",
                                                            "max_ttl",
                                                            "lease",
                                                            "not_before_duration",
                                                            "allowed_domains",
                                                            "allow_bare_domains",
                                                            "allow_subdomains",
                                                            "allow_glob_domains",
                                                            "allow_wildcard_certificates",
                                                            "allow_any_name",
                                                            "allow_localhost",
                                                            "enforce_hostnames",
                                                            "allow_ip_sans",
                                                            "allowed_ip_sans_cidr",
                                                            "allowed_uri_sans",
                                                            "require_cn",
                                                            "use_csr_common_name",
                                                            "use_csr_sans",
                                                            "server_flag",
                                                            "client_flag",
                                                            "code_signing_flag",
                                                            "email_protection_flag",
                                                            "key_usage",
                                                            "ext_key_usage",
                                                            "ext_key_usage_oids",
                                                            "organization",
                                                            "ou",
                                                            "country",
                                                            "locality",
                                                            "province",
                                                            "street_address",
                                                            "postal_code",
                                                            "key_type",
                                                            "key_bits",
                                                            "signature_bits",
                                                            "use_pss",
                                                            "no_store",
                                                            "generate_lease",
                                                            "basic_constraints_valid_for_non_ca",
                                                            "issuer_ref",
                                                            "name",
                                                            "allowed_other_sans"};
  for (const auto& [k, v] : d)
    if (!kKnown.contains(k) && !kAcceptedOnly.contains(k)) unknown->emplace_back(k);
  RETURN_IF_ERROR(dur("ttl", &ttl));
  RETURN_IF_ERROR(dur("max_ttl", &max_ttl));
  RETURN_IF_ERROR(dur("not_before_duration", &not_before_duration));
  RETURN_IF_ERROR(list("allowed_domains", &allowed_domains));
  RETURN_IF_ERROR(flag("allow_bare_domains", &allow_bare_domains));
  RETURN_IF_ERROR(flag("allow_subdomains", &allow_subdomains));
  RETURN_IF_ERROR(flag("allow_glob_domains", &allow_glob_domains));
  RETURN_IF_ERROR(flag("allow_wildcard_certificates", &allow_wildcard_certificates));
  RETURN_IF_ERROR(flag("allow_any_name", &allow_any_name));
  RETURN_IF_ERROR(flag("allow_localhost", &allow_localhost));
  RETURN_IF_ERROR(flag("enforce_hostnames", &enforce_hostnames));
  RETURN_IF_ERROR(flag("allow_ip_sans", &allow_ip_sans));
  RETURN_IF_ERROR(list("allowed_ip_sans_cidr", &allowed_ip_sans_cidr));
  RETURN_IF_ERROR(list("allowed_uri_sans", &allowed_uri_sans));
  RETURN_IF_ERROR(list("allowed_other_sans", &allowed_other_sans));
  RETURN_IF_ERROR(flag("require_cn", &require_cn));
  RETURN_IF_ERROR(flag("use_csr_common_name", &use_csr_common_name));
  RETURN_IF_ERROR(flag("use_csr_sans", &use_csr_sans));
  RETURN_IF_ERROR(flag("server_flag", &server_flag));
  RETURN_IF_ERROR(flag("client_flag", &client_flag));
  RETURN_IF_ERROR(flag("code_signing_flag", &code_signing_flag));
  RETURN_IF_ERROR(flag("email_protection_flag", &email_protection_flag));
  RETURN_IF_ERROR(list("key_usage", &key_usage));
  RETURN_IF_ERROR(list("ext_key_usage", &ext_key_usage));
  RETURN_IF_ERROR(list("ext_key_usage_oids", &ext_key_usage_oids));
  RETURN_IF_ERROR(list("organization", &organization));
  RETURN_IF_ERROR(list("ou", &ou));
  RETURN_IF_ERROR(list("country", &country));
  RETURN_IF_ERROR(list("locality", &locality));
  RETURN_IF_ERROR(list("province", &province));
  RETURN_IF_ERROR(list("street_address", &street_address));
  RETURN_IF_ERROR(list("postal_code", &postal_code));
  const bool type_given = d.contains("key_type");
  RETURN_IF_ERROR(str("key_type", &key_type));
  if (type_given && !d.contains("key_bits")) key_bits = 0;  // the new type's default
  RETURN_IF_ERROR(integer("key_bits", &key_bits));
  RETURN_IF_ERROR(integer("signature_bits", &signature_bits));
  RETURN_IF_ERROR(flag("use_pss", &use_pss));
  RETURN_IF_ERROR(flag("no_store", &no_store));
  RETURN_IF_ERROR(flag("generate_lease", &generate_lease));
  RETURN_IF_ERROR(flag("basic_constraints_valid_for_non_ca", &basic_constraints_valid_for_non_ca));
  RETURN_IF_ERROR(str("issuer_ref", &issuer_ref));
  if (issuer_ref.empty()) issuer_ref = "default";
  return absl::OkStatus();
}

absl::Status Role::Finish() {
  if (max_ttl > 0 && ttl > max_ttl)
    return absl::InvalidArgumentError("ttl cannot be larger than max_ttl");
  if (not_before_duration < 0)
    return absl::InvalidArgumentError("not_before_duration must not be negative");
  if (key_type == "any") {
    key_bits = 0;
  } else {
    ASSIGN_OR_RETURN(crypto::KeySpec spec, crypto::ParseKeySpec(key_type, key_bits));
    key_bits = spec.bits;
  }
  if (signature_bits != 0 && signature_bits != 256 && signature_bits != 384 &&
      signature_bits != 512)
    return absl::InvalidArgumentError("signature_bits must be 0 (automatic), 256, 384 or 512");
  key_usage_bits = 0;
  for (const auto& u : key_usage) {
    ASSIGN_OR_RETURN(uint32_t bit, crypto::ParseKeyUsage(u));
    key_usage_bits |= bit;
  }
  eku_oids.clear();
  auto add_eku = [&](const std::string& oid) {
    if (std::find(eku_oids.begin(), eku_oids.end(), oid) == eku_oids.end()) eku_oids.push_back(oid);
  };
  if (server_flag) add_eku("1.3.6.1.5.5.7.3.1");
  if (client_flag) add_eku("1.3.6.1.5.5.7.3.2");
  if (code_signing_flag) add_eku("1.3.6.1.5.5.7.3.3");
  if (email_protection_flag) add_eku("1.3.6.1.5.5.7.3.4");
  for (const auto& e : ext_key_usage) {
    ASSIGN_OR_RETURN(std::string oid, crypto::ParseExtKeyUsage(e));
    add_eku(oid);
  }
  for (const auto& oid : ext_key_usage_oids) {
    ASN1_OBJECT* o = OBJ_txt2obj(oid.c_str(), 1);
    if (!o)
      return absl::InvalidArgumentError(Cat("ext_key_usage_oids: \"", oid, "\" is not an OID"));
    ASN1_OBJECT_free(o);
    add_eku(oid);
  }
  for (const auto& c : allowed_ip_sans_cidr)
    RETURN_IF_ERROR(ValidateCidr(c).ok()
                        ? absl::OkStatus()
                        : absl::InvalidArgumentError(
                              Cat("allowed_ip_sans_cidr: \"", c, "\" is not a CIDR block")));
  for (const auto& c : country)
    if (c.size() != 2)
      return absl::InvalidArgumentError(Cat("country \"", c, "\" must be a two-letter code"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Role>> PkiBackend::LoadRole(storage::Storage* s,
                                                                 std::string_view name) {
  {
    std::shared_lock lock(mu_);
    if (auto it = roles_.find(name); it != roles_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(auto raw, s->Get(Cat("role/", name)));
  if (!raw) return absl::InvalidArgumentError(Cat("unknown role: ", name));
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("stored role is not JSON");
  auto role = std::make_shared<Role>();
  role->name = std::string(name);
  std::vector<std::string> unknown;
  RETURN_IF_ERROR(role->Apply(v.as_object(), &unknown));
  RETURN_IF_ERROR(role->Finish());
  std::unique_lock lock(mu_);
  roles_[std::string(name)] = role;
  return std::shared_ptr<const Role>(role);
}

absl::StatusOr<Response> PkiBackend::RolePath(Request& req, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos)
    return absl::InvalidArgumentError("a role name is required and must not contain '/'");
  const std::string key = Cat("role/", name);
  switch (req.op) {
    case Operation::kRead: {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
      if (!raw) return absl::NotFoundError("");
      ASSIGN_OR_RETURN(auto role, LoadRole(req.storage, name));
      return Response::Data(role->ToJson());
    }
    case Operation::kCreate:
    case Operation::kUpdate:
    case Operation::kPatch: {
      Role role;
      if (req.op == Operation::kPatch) {
        ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
        if (!raw) return absl::NotFoundError(Cat("role \"", name, "\" does not exist"));
        ASSIGN_OR_RETURN(auto existing, LoadRole(req.storage, name));
        role = *existing;
      }
      std::vector<std::string> unknown;
      json::object data = req.data;
      if (!data.contains("ttl") && data.contains("lease")) data["ttl"] = data["lease"];
      RETURN_IF_ERROR(role.Apply(data, &unknown));
      RETURN_IF_ERROR(role.Finish());
      json::object stored = role.ToJson();
      RETURN_IF_ERROR(req.storage->Put(key, json::serialize(stored)));
      {
        std::unique_lock lock(mu_);
        roles_.erase(std::string(name));
      }
      Response r = Response::Data(std::move(stored));
      if (!unknown.empty()) {
        std::string w = "Endpoint ignored these unrecognized parameters: [";
        for (size_t i = 0; i < unknown.size(); ++i) w += (i ? " " : "") + unknown[i];
        r.warnings.push_back(w + "]");
      }
      return r;
    }
    case Operation::kDelete: {
      RETURN_IF_ERROR(req.storage->Delete(key));
      std::unique_lock lock(mu_);
      roles_.erase(std::string(name));
      return Response::Empty();
    }
    default:
      return UnsupportedOperation();
  }
}

}  // namespace coffer::engines::pki
