// PKI engine: roles and roles/:name (LIST, GET, POST, PATCH, DELETE) with Vault's parameters and
// defaults.
#include <set>

#include "engines/pki/pki_internal.h"
#include "util/cidr.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Handler;

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
    ASSIGN_OR_RETURN(auto v, StoredDuration(d, k));
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
  uint64_t generation = 0;
  {
    ReaderMutexLock lock(&mu_);
    if (auto it = roles_.find(name); it != roles_.end()) return it->second;
    generation = roles_generation_;
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
  MutexLock lock(&mu_);
  if (roles_generation_ == generation) roles_[std::string(name)] = role;
  return std::shared_ptr<const Role>(role);
}

namespace {

// roles/{name*} takes the rest of the path so that a name with '/' gets this message.
absl::StatusOr<std::string> RoleName(const FieldData& d) {
  std::string name = d.String("name");
  if (name.empty() || name.find('/') != std::string::npos)
    return absl::InvalidArgumentError("a role name is required and must not contain '/'");
  return name;
}

std::map<std::string, FieldSchema> RoleFields() {
  const std::string kIgnored = "Accepted for compatibility with Vault; no effect in Coffer.";
  return {
      {"name", {FieldType::kString, "Name of the role."}},
      {"issuer_ref",
       StringField("Reference (name or id) of the issuer that signs this role's certificates.",
                   "default")},
      {"ttl", DurationField("Lifetime of issued certificates; the mount's default when unset.")},
      {"max_ttl", DurationField("Longest lifetime a certificate may ask for; the mount's maximum "
                                "when unset.")},
      {"lease", StringField("Deprecated: the old name of ttl, used when ttl is not given.")},
      {"not_before_duration",
       DurationField("How far in the past notBefore is set, against clock skew.", "30s")},
      {"allow_localhost", BoolField("Whether localhost is allowed as a name.", true)},
      {"allowed_domains", ListField("Domains the role issues for (see allow_bare_domains, "
                                    "allow_subdomains and allow_glob_domains).")},
      {"allow_bare_domains",
       BoolField("Whether the names in allowed_domains themselves may be issued.", false)},
      {"allow_subdomains",
       BoolField("Whether subdomains of allowed_domains may be issued, wildcards included.",
                 false)},
      {"allow_glob_domains",
       BoolField("Whether allowed_domains may hold globs such as ftp*.example.com.", false)},
      {"allow_wildcard_certificates",
       BoolField("Whether wildcard names (*.example.com) may be issued.", true)},
      {"allow_any_name", BoolField("Whether any name may be issued.", false)},
      {"enforce_hostnames",
       BoolField("Whether DNS names must be valid hostnames (emails excepted).", true)},
      {"allow_ip_sans", BoolField("Whether IP SANs may be requested.", true)},
      {"allowed_ip_sans_cidr",
       ListField("CIDR blocks the requested IP SANs must fall in; any when empty.")},
      {"allowed_uri_sans", ListField("Globs the requested URI SANs must match; none allowed when "
                                     "empty.")},
      {"allowed_other_sans",
       ListField("Other SANs allowed, as <oid>;UTF8:<glob>; \"*\" allows any.")},
      {"server_flag", BoolField("Whether certificates are flagged for server use.", true)},
      {"client_flag", BoolField("Whether certificates are flagged for client use.", true)},
      {"code_signing_flag", BoolField("Whether certificates are flagged for code signing.", false)},
      {"email_protection_flag",
       BoolField("Whether certificates are flagged for email protection.", false)},
      {"key_type",
       StringField("Key type of issued certificates: rsa, ec, ed25519, or any (signing only).",
                   "rsa")},
      {"key_bits", IntField("Key size; 0 picks the key type's default.", 0)},
      {"signature_bits",
       IntField("Bits of the signature's hash: 256, 384 or 512; 0 picks one for the key.", 0)},
      {"use_pss", BoolField("Whether RSA issuers sign with PSS rather than PKCS#1 v1.5.", false)},
      {"key_usage", ListField("Key usages of issued certificates.",
                              json::array{"DigitalSignature", "KeyAgreement", "KeyEncipherment"})},
      {"ext_key_usage", ListField("Extended key usages, by name, added to the flags above.")},
      {"ext_key_usage_oids", ListField("Extended key usages, by OID.")},
      {"use_csr_common_name",
       BoolField("Whether sign/:role takes the common name from the CSR.", true)},
      {"use_csr_sans", BoolField("Whether sign/:role takes the SANs from the CSR.", true)},
      {"ou", ListField("OU (OrganizationalUnit) values of the subject.")},
      {"organization", ListField("O (Organization) values of the subject.")},
      {"country", ListField("C (Country) values of the subject.")},
      {"locality", ListField("L (Locality) values of the subject.")},
      {"province", ListField("ST (Province) values of the subject.")},
      {"street_address", ListField("Street Address values of the subject.")},
      {"postal_code", ListField("Postal Code values of the subject.")},
      {"generate_lease", BoolField("Whether issued certificates get a lease.", false)},
      {"no_store", BoolField("Whether issued certificates are kept out of storage (they cannot "
                             "be listed or revoked by serial).",
                             false)},
      {"require_cn", BoolField("Whether a common name is required.", true)},
      {"basic_constraints_valid_for_non_ca",
       BoolField("Whether leaf certificates carry basicConstraints (cA false).", false)},
      {"allowed_domains_template", {FieldType::kAny, kIgnored}},
      {"allowed_uri_sans_template", {FieldType::kAny, kIgnored}},
      {"allowed_serial_numbers", {FieldType::kAny, kIgnored}},
      {"allowed_user_ids", {FieldType::kAny, kIgnored}},
      {"cn_validations", {FieldType::kAny, kIgnored}},
      {"policy_identifiers", {FieldType::kAny, kIgnored}},
      {"allow_token_displayname", {FieldType::kAny, kIgnored}},
      {"backend", {FieldType::kAny, kIgnored}},
      {"require_cn_for_sign", {FieldType::kAny, kIgnored}},
      {"allow_wildcard_certificates_in_cn", {FieldType::kAny, kIgnored}},
  };
}

}  // namespace

std::vector<PkiPath> PkiBackend::RolePaths(PkiBackend* b) {
  Handler list_roles = [b](Request& r, const FieldData&) { return b->ListRoles(r); };
  Handler read_role = [b](Request& r, const FieldData& d) { return b->ReadRole(r, d); };
  Handler write_role = [b](Request& r, const FieldData& d) { return b->WriteRole(r, d); };
  Handler delete_role = [b](Request& r, const FieldData& d) { return b->DeleteRole(r, d); };
  // The name is checked before the operation, as it always was.
  Handler check_name_then_405 = [](Request&, const FieldData& d) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(RoleName(d).status());
    return UnsupportedOperation();
  };

  std::vector<PkiPath> paths;
  paths.push_back(
      {.path = {.patterns = {"roles"},
                .operations = Ops({{kList, list_roles, "Lists the roles."}}),
                // A write to "roles/" has always been checked as one to the role "", which
                // does not exist (it needs create); "roles" is not checked.
                .exists = [](Request& r, const FieldData&) -> absl::StatusOr<std::optional<bool>> {
                  if (!r.path.ends_with('/')) return std::optional<bool>();
                  return std::optional<bool>(false);
                },
                .unsupported = kUnsupported,
                .synopsis = "The roles of the mount."}});
  paths.push_back(
      {.path = {.patterns = {"roles/{name*}"},
                .fields = RoleFields(),
                .operations =
                    Ops({{kRead, read_role, "Reads the role."},
                         {kUpdate, write_role, "Creates or replaces the role."},
                         {kPatch, write_role, "Changes the fields given of an existing role."},
                         {kDelete, delete_role, "Deletes the role."}}),
                .exists = [](Request& r,
                             const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
                  ASSIGN_OR_RETURN(auto raw, r.storage->Get("role/" + d.String("name")));
                  return std::optional<bool>(raw.has_value());
                },
                .unsupported = "",
                .synopsis = "A role: which certificates issue/:role and sign/:role may issue.",
                .description = "Unknown fields are ignored with a warning, as Vault does."},
       .missing_op = check_name_then_405});
  return paths;
}

absl::StatusOr<Response> PkiBackend::ListRoles(Request& req) {
  ASSIGN_OR_RETURN(auto names, req.storage->List("role/"));
  if (names.empty()) return absl::NotFoundError("");
  return Response::Data(json::object{{"keys", ToArray(names)}});
}

absl::StatusOr<Response> PkiBackend::ReadRole(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(const std::string name, RoleName(d));
  ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("role/", name)));
  if (!raw) return absl::NotFoundError("");
  ASSIGN_OR_RETURN(auto role, LoadRole(req.storage, name));
  return Response::Data(role->ToJson());
}

absl::StatusOr<Response> PkiBackend::WriteRole(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(const std::string name, RoleName(d));
  const std::string key = Cat("role/", name);
  Role role;
  if (req.op == Operation::kPatch) {
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
    if (!raw) return absl::NotFoundError(Cat("role \"", name, "\" does not exist"));
    ASSIGN_OR_RETURN(auto existing, LoadRole(req.storage, name));
    role = *existing;
  }
  // The role is applied from the body as it is stored (Role::Apply decodes stored roles too):
  // the framework has checked the typed fields already, with the same messages.
  std::vector<std::string> unknown;
  json::object data = req.data;
  if (!data.contains("ttl") && data.contains("lease")) data["ttl"] = data["lease"];
  RETURN_IF_ERROR(role.Apply(data, &unknown));
  RETURN_IF_ERROR(role.Finish());
  json::object stored = role.ToJson();
  RETURN_IF_ERROR(req.storage->Put(key, json::serialize(stored)));
  InvalidateRole(name);
  Response r = Response::Data(std::move(stored));
  if (!unknown.empty()) {
    std::string w = "Endpoint ignored these unrecognized parameters: [";
    for (size_t i = 0; i < unknown.size(); ++i) w += (i ? " " : "") + unknown[i];
    r.warnings.push_back(w + "]");
  }
  return r;
}

absl::StatusOr<Response> PkiBackend::DeleteRole(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(const std::string name, RoleName(d));
  RETURN_IF_ERROR(req.storage->Delete(Cat("role/", name)));
  InvalidateRole(name);
  return Response::Empty();
}

}  // namespace coffer::engines::pki
