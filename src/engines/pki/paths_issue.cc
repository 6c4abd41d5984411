// PKI engine: issuance — issue/:role, sign/:role, sign-verbatim(/:role), root/sign-intermediate,
// root/sign-self-issued and their issuer/:ref/... variants; the role's name policy; TTL capping;
// response formats.
#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "engines/pki/pki_internal.h"
#include "util/cidr.h"
#include "util/encoding.h"
#include "util/glob.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Handler;

namespace {

// '*' matches any run of characters, in either case (Vault's glob for allowed_domains and
// allowed_uri_sans).
bool GlobMatch(std::string_view pattern, std::string_view s) {
  return StarGlobMatch(pattern, s, /*fold_case=*/true);
}

bool EndsWithFold(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && EqualsFold(s.substr(s.size() - suffix.size()), suffix);
}

// Whether `name` (a CN, DNS SAN or email) passes the role's name policy. Empty: allowed.
std::string CheckName(const Role& r, const std::string& name) {
  std::string_view sanitized = name;
  std::string_view email_domain;
  bool is_email = false, is_wildcard = false;
  if (size_t at = name.rfind('@'); at != std::string::npos) {
    is_email = true;
    email_domain = std::string_view(name).substr(at + 1);
    sanitized = email_domain;
  }
  if (sanitized.starts_with("*.")) {
    is_wildcard = true;
    if (!r.allow_wildcard_certificates) return "wildcard names are not allowed by this role";
    sanitized.remove_prefix(2);
  }
  if (sanitized.find('*') != std::string_view::npos && !r.allow_glob_domains)
    return "only a whole leftmost wildcard label (*.example.com) is allowed";
  if (r.enforce_hostnames && !IsHostname(sanitized, false)) return "it is not a valid hostname";
  if (r.allow_any_name) return "";
  if (r.allow_localhost) {
    if (sanitized == "localhost" || sanitized == "localdomain") return "";
    if (r.allow_subdomains &&
        (EndsWithFold(sanitized, ".localhost") || EndsWithFold(sanitized, ".localdomain")))
      return "";
  }
  for (const auto& d : r.allowed_domains) {
    if (d.empty()) continue;
    if (r.allow_bare_domains &&
        (EqualsFold(sanitized, d) || (is_email && EqualsFold(email_domain, d))))
      return "";
    if (r.allow_subdomains &&
        (EndsWithFold(sanitized, "." + d) || (is_wildcard && EqualsFold(sanitized, d))))
      return "";
    if (r.allow_glob_domains && d.find('*') != std::string::npos && GlobMatch(d, name)) return "";
  }
  return "it is not allowed by this role";
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseOtherSans(
    const std::vector<std::string>& v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : v) {
    size_t semi = s.find(';');
    size_t colon = s.find(':', semi == std::string::npos ? 0 : semi);
    if (semi == std::string::npos || colon == std::string::npos)
      return absl::InvalidArgumentError(
          Cat("other_sans \"", s, "\" is not in the form <oid>;UTF8:<value>"));
    std::string type = s.substr(semi + 1, colon - semi - 1);
    if (type != "UTF8" && type != "UTF-8")
      return absl::InvalidArgumentError(
          Cat("other_sans \"", s, "\": only the UTF8 type is supported"));
    out.emplace_back(s.substr(0, semi), s.substr(colon + 1));
  }
  return out;
}

// Bounds on the subject alternative names one certificate may carry, the CSR's included when
// they are taken from it. Vault has none: a request with 20,000 alt_names produced and stored a
// 527 KB certificate. Each name is held in memory several times while the request is checked and
// signed, and the certificate is stored, sent back and parsed by every client that meets it.
// Real certificates stay far below (public CAs allow 100 to 250 names).
constexpr size_t kMaxSans = 1000;
constexpr size_t kMaxSanBytes = size_t{64} * 1024;  // summed; other_sans count oid + value

absl::Status CheckSanLimits(const crypto::CertTemplate& t) {
  const size_t count = t.dns_names.size() + t.emails.size() + t.ip_sans.size() + t.uri_sans.size() +
                       t.other_sans.size();
  if (count > kMaxSans)
    return absl::InvalidArgumentError(
        Cat("too many subject alternative names: ", count, " given, the limit is ", kMaxSans));
  size_t bytes = 0;
  for (const auto* list : {&t.dns_names, &t.emails, &t.ip_sans, &t.uri_sans})
    for (const auto& n : *list) bytes += n.size();
  for (const auto& [oid, value] : t.other_sans) bytes += oid.size() + value.size();
  if (bytes > kMaxSanBytes)
    return absl::InvalidArgumentError(Cat("subject alternative names too long: ", bytes,
                                          " bytes given, the limit is ", kMaxSanBytes,
                                          " bytes of names in total"));
  return absl::OkStatus();
}

absl::Status CheckCsrKey(const Role& r, const crypto::KeySpec& k) {
  if (r.key_type == "any") return absl::OkStatus();
  if (crypto::KeyTypeName(k.type) != r.key_type)
    return absl::InvalidArgumentError(Cat("role requires keys of type ", r.key_type,
                                          ", but the CSR has a ", crypto::KeyTypeName(k.type),
                                          " key"));
  if (k.type != crypto::KeyType::kEd25519 && k.bits < r.key_bits)
    return absl::InvalidArgumentError(Cat("role requires a minimum of ", r.key_bits, " bits for ",
                                          r.key_type, " keys, but the CSR's key has ", k.bits));
  return absl::OkStatus();
}

}  // namespace

bool IsHostname(std::string_view name, bool allow_wildcard) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  if (allow_wildcard && name.starts_with("*.")) name.remove_prefix(2);
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    start = end + 1;
    if (end == name.size()) break;
  }
  return true;
}

absl::Status ApplySubjectFields(const FieldData& d, crypto::CertTemplate* t) {
  auto list = [&](std::string_view k, std::vector<std::string>* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, List(d, k));
    if (v) *dst = std::move(*v);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(list("organization", &t->organization));
  RETURN_IF_ERROR(list("ou", &t->ou));
  RETURN_IF_ERROR(list("country", &t->country));
  RETURN_IF_ERROR(list("locality", &t->locality));
  RETURN_IF_ERROR(list("province", &t->province));
  RETURN_IF_ERROR(list("street_address", &t->street_address));
  RETURN_IF_ERROR(list("postal_code", &t->postal_code));
  ASSIGN_OR_RETURN(auto sn, StrictStr(d, "serial_number"));
  if (sn) t->serial_number = *sn;
  return absl::OkStatus();
}

absl::Status ApplySanFields(const FieldData& d, crypto::CertTemplate* t) {
  ASSIGN_OR_RETURN(auto alt, List(d, "alt_names"));
  for (const auto& n : alt.value_or(std::vector<std::string>())) {
    if (n.find('@') != std::string::npos)
      t->emails.push_back(n);
    else
      t->dns_names.push_back(n);
  }
  ASSIGN_OR_RETURN(auto ips, List(d, "ip_sans"));
  for (const auto& ip : ips.value_or(std::vector<std::string>())) {
    if (!ValidateCidr(ip).ok() || ip.find('/') != std::string::npos)
      return absl::InvalidArgumentError(Cat("ip_sans: \"", ip, "\" is not an IP address"));
    t->ip_sans.push_back(ip);
  }
  ASSIGN_OR_RETURN(auto uris, List(d, "uri_sans"));
  for (const auto& u : uris.value_or(std::vector<std::string>())) {
    if (u.find(':') == std::string::npos)
      return absl::InvalidArgumentError(Cat("uri_sans: \"", u, "\" is not a URI (no scheme)"));
    t->uri_sans.push_back(u);
  }
  ASSIGN_OR_RETURN(auto others, List(d, "other_sans"));
  if (others) {
    ASSIGN_OR_RETURN(t->other_sans, ParseOtherSans(*others));
  }
  return CheckSanLimits(*t);
}

void AddCnToSans(crypto::CertTemplate* t) {
  const std::string& cn = t->common_name;
  if (cn.empty()) return;
  if (cn.find('@') != std::string::npos) {
    if (std::find(t->emails.begin(), t->emails.end(), cn) == t->emails.end())
      t->emails.insert(t->emails.begin(), cn);
  } else if (IsHostname(cn, true)) {
    if (std::find(t->dns_names.begin(), t->dns_names.end(), cn) == t->dns_names.end())
      t->dns_names.insert(t->dns_names.begin(), cn);
  }
}

// The issuer a request names: issuer/:ref/... in the URL, else the issuer_ref field.
std::string IssuerRefOf(const FieldData& d) {
  std::string ref = d.String("ref");
  return !ref.empty() ? ref : Str(d, "issuer_ref");
}

absl::StatusOr<int64_t> ComputeNotAfter(const FieldData& d, int64_t now, int64_t default_ttl,
                                        int64_t max_ttl, const Issuer* issuer,
                                        std::vector<std::string>* warnings) {
  int64_t not_after = 0;
  const int64_t ttl = d.Duration("ttl");  // 0 when absent
  std::string na = Str(d, "not_after");
  if (!na.empty()) {
    if (ttl > 0)
      return absl::InvalidArgumentError("either ttl or not_after may be given, not both");
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, na, &t, &err))
      return absl::InvalidArgumentError(
          Cat("not_after \"", na, "\" is not an RFC 3339 time such as 2030-01-01T00:00:00Z"));
    not_after = absl::ToUnixSeconds(t);
    if (not_after <= now) return absl::InvalidArgumentError("not_after is in the past");
  } else {
    int64_t want = ttl > 0 ? ttl : default_ttl;
    if (max_ttl > 0 && want > max_ttl) {
      if (ttl > 0)
        warnings->push_back(Cat("TTL \"", want, "s\" is longer than permitted maxTTL \"", max_ttl,
                                "s\", so maxTTL is being used"));
      want = max_ttl;
    }
    if (want <= 0) want = max_ttl > 0 ? max_ttl : int64_t{768} * 3600;
    not_after = now + want;
  }
  if (issuer && not_after > issuer->not_after) {
    if (issuer->leaf_not_after_behavior == "truncate") {
      not_after = issuer->not_after;
    } else if (issuer->leaf_not_after_behavior != "permit") {
      return absl::InvalidArgumentError(Cat(
          "cannot satisfy request, as TTL would result in notAfter of ", Rfc3339(not_after),
          " that is beyond the expiration of the CA certificate at ", Rfc3339(issuer->not_after)));
    }
  }
  return not_after;
}

absl::Status FormatCertificate(json::object& out, X509* cert, const Issuer* issuer,
                               std::string_view format, bool remove_roots,
                               std::string_view der_in) {
  SignedCert c{der_in.empty() ? crypto::CertDer(cert) : std::string(der_in),
               crypto::SerialColon(cert), crypto::NotAfterUnix(cert)};
  return FormatCertificate(out, c, issuer, format, remove_roots);
}

absl::Status FormatCertificate(json::object& out, const SignedCert& c, const Issuer* issuer,
                               std::string_view format, bool remove_roots) {
  if (format.empty()) format = "pem";
  if (format != "pem" && format != "der" && format != "pem_bundle")
    return absl::InvalidArgumentError(
        Cat("format \"", format, "\" is not one of pem, der, pem_bundle"));
  const bool der = format == "der";
  auto enc = [&](const std::string& pem) -> std::string {
    if (!der) return pem;
    auto c = crypto::ParseCertPem(pem);
    return c.ok() ? Base64Encode(crypto::CertDer(c->get())) : "";
  };
  std::string cert_pem = crypto::PemFromDer(c.der, "CERTIFICATE");
  out["serial_number"] = c.serial_colon;
  out["expiration"] = c.not_after;
  out["certificate"] = der ? Base64Encode(c.der) : cert_pem;
  if (issuer) {
    out["issuing_ca"] = enc(issuer->cert_pem);
    json::array chain;
    for (size_t i = 0; i < issuer->chain_pem.size(); ++i) {
      if (remove_roots && i + 1 == issuer->chain_pem.size()) {
        auto c = crypto::ParseCertPem(issuer->chain_pem[i]);
        if (c.ok() && crypto::IsSelfSigned(c->get())) continue;
      }
      chain.emplace_back(enc(issuer->chain_pem[i]));
    }
    if (format == "pem_bundle") {
      std::string bundle = cert_pem;
      for (const auto& c : chain) bundle += "\n" + std::string(c.as_string());
      out["certificate"] = bundle;
    }
    out["ca_chain"] = std::move(chain);
  }
  return absl::OkStatus();
}

// The response formats, checked before anything is signed or stored (a bad one must not leave
// a certificate behind that nobody received).
absl::Status CheckFormats(std::string_view format, std::string_view key_format) {
  if (!format.empty() && format != "pem" && format != "der" && format != "pem_bundle")
    return absl::InvalidArgumentError(
        Cat("format \"", format, "\" is not one of pem, der, pem_bundle"));
  if (!key_format.empty() && key_format != "der" && key_format != "pkcs8")
    return absl::InvalidArgumentError(
        Cat("private_key_format \"", key_format, "\" is not one of der, pkcs8"));
  return absl::OkStatus();
}

absl::Status AddPrivateKey(json::object& out, EVP_PKEY* key, std::string_view format,
                           std::string_view key_format) {
  if (!key_format.empty() && key_format != "der" && key_format != "pkcs8")
    return absl::InvalidArgumentError(
        Cat("private_key_format \"", key_format, "\" is not one of der, pkcs8"));
  ASSIGN_OR_RETURN(crypto::KeySpec spec, crypto::DescribeKey(key));
  if (format == "der") {
    ASSIGN_OR_RETURN(crypto::SecretBytes d, crypto::PrivateKeyDer(key, key_format));
    out["private_key"] = Base64Encode(d.view());
  } else {
    ASSIGN_OR_RETURN(crypto::SecretBytes p, crypto::PrivateKeyPem(key, key_format));
    out["private_key"] = std::string(p.view());
    if (format == "pem_bundle" && out.contains("certificate"))
      out["certificate"] =
          std::string(p.view()) + "\n" + std::string(out["certificate"].as_string());
  }
  out["private_key_type"] = std::string(crypto::KeyTypeName(spec.type));
  return absl::OkStatus();
}

absl::Status PkiBackend::StoreCertificate(storage::Storage* s, X509* cert,
                                          const std::string& issuer_id, std::string_view der) {
  return StoreCertificate(s,
                          SignedCert{der.empty() ? crypto::CertDer(cert) : std::string(der),
                                     crypto::SerialColon(cert), crypto::NotAfterUnix(cert)},
                          issuer_id);
}

std::string PkiBackend::CertKey(const SignedCert& c) {
  return "certs/" + HyphenSerial(c.serial_colon);
}

std::string PkiBackend::CertRecord(const SignedCert& c, const std::string& issuer_id) {
  return json::serialize(json::object{
      {"der", Base64Encode(c.der)}, {"issuer_id", issuer_id}, {"not_after", c.not_after}});
}

absl::Status PkiBackend::StoreCertificate(storage::Storage* s, const SignedCert& c,
                                          const std::string& issuer_id) {
  return s->Put(CertKey(c), CertRecord(c, issuer_id));
}

absl::StatusOr<SignedCert> PkiBackend::SignAndStore(Request& req, crypto::CertTemplate& t,
                                                    const X509_PUBKEY* spki, const Issuer& issuer,
                                                    bool no_store) {
  RETURN_IF_ERROR(RequireKey(issuer, "sign"));
  ASSIGN_OR_RETURN(UrlConfig urls, LoadUrls(req.storage));
  t.issuing_certificates = urls.issuing_certificates;
  t.crl_distribution_points = urls.crl_distribution_points;
  t.ocsp_servers = urls.ocsp_servers;
  SignedCert out;
  if (auto fast = crypto::SignLeafDer(t, spki, issuer.cert.get(), issuer.key->key.get())) {
    out = {std::move(fast->der), crypto::SerialColonFromBytes(fast->serial), fast->not_after};
  } else {
    ASSIGN_OR_RETURN(crypto::Cert cert,
                     crypto::SignCertificate(t, spki, issuer.cert.get(), issuer.key->key.get()));
    out = {crypto::CertDer(cert.get()), crypto::SerialColon(cert.get()),
           crypto::NotAfterUnix(cert.get())};
  }
  if (no_store) return out;
  if (req.defer_write && req.storage->WritesAsync()) {
    // The record is this request's last write: the answer waits for it (Request::defer_write).
    req.pending_write = storage::StartWrite(
        req.storage, {{storage::WriteOp::Kind::kPut, CertKey(out), CertRecord(out, issuer.id)}});
    return out;
  }
  RETURN_IF_ERROR(StoreCertificate(req.storage, out, issuer.id));
  return out;
}

// ---- the fields issuance shares ----

std::map<std::string, FieldSchema> SubjectFields() {
  return {
      {"ou", ListField("OU (OrganizationalUnit) values of the subject.")},
      {"organization", ListField("O (Organization) values of the subject.")},
      {"country", ListField("C (Country) values of the subject.")},
      {"locality", ListField("L (Locality) values of the subject.")},
      {"province", ListField("ST (Province) values of the subject.")},
      {"street_address", ListField("Street Address values of the subject.")},
      {"postal_code", ListField("Postal Code values of the subject.")},
      {"serial_number",
       {FieldType::kAny,
        "(string) The subject's serialNumber attribute (not the certificate's "
        "serial number); a non-string is refused."}},
  };
}

std::map<std::string, FieldSchema> SanFields() {
  return {
      {"alt_names", ListField("Subject Alternative Names: DNS names, or emails (with '@').")},
      {"ip_sans", ListField("IP Subject Alternative Names.")},
      {"uri_sans", ListField("URI Subject Alternative Names.")},
      {"other_sans", ListField("Other Subject Alternative Names, as <oid>;UTF8:<value>.")},
  };
}

std::map<std::string, FieldSchema> TtlFields() {
  return {
      {"ttl", DurationField("Requested lifetime; capped by the role's and the mount's max_ttl.")},
      {"not_after", StringField("Requested notAfter, as an RFC 3339 time (instead of ttl).")},
  };
}

std::map<std::string, FieldSchema> FormatFields(bool with_key) {
  std::map<std::string, FieldSchema> f{
      {"format", StringField("Format of the certificates in the response: pem, der (base64) or "
                             "pem_bundle.",
                             "pem")}};
  if (with_key)
    f["private_key_format"] = StringField(
        "Format of a generated private key: der (PKCS#1 or SEC 1; PEM unless "
        "format is der) or pkcs8.",
        "der");
  return f;
}

namespace {

FieldSchema RoleField() { return {FieldType::kString, "Name of the role."}; }
FieldSchema IssuerRefField() {
  return {FieldType::kString, "Reference of the issuer: its id, its name or \"default\"."};
}

std::map<std::string, FieldSchema> IssueFields(bool with_csr) {
  auto f = Fields(
      {SanFields(),
       TtlFields(),
       FormatFields(!with_csr),
       {{"role", RoleField()},
        {"common_name", StringField("The requested common name.")},
        {"serial_number", SubjectFields().at("serial_number")},
        {"exclude_cn_from_sans",
         BoolField("Whether the common name stays out of the Subject Alternative Names.", false)},
        {"remove_roots_from_chain",
         BoolField("Whether self-signed roots are left out of ca_chain.", false)}}});
  if (with_csr) f["csr"] = StringField("The certificate signing request (PEM). Required.");
  return f;
}

std::map<std::string, FieldSchema> SignVerbatimFields() {
  return Fields({TtlFields(),
                 FormatFields(false),
                 {{"role", {FieldType::kString, "Name of a role whose limits apply (optional)."}},
                  {"issuer_ref", StringField("The issuer that signs (its id or name); default: "
                                             "the role's, else the mount's default.")},
                  {"csr", StringField("The certificate signing request (PEM). Required.")},
                  {"key_usage",
                   ListField("Key usages of the certificate.",
                             json::array{"DigitalSignature", "KeyAgreement", "KeyEncipherment"})},
                  {"ext_key_usage", ListField("Extended key usages, by name.")},
                  {"ext_key_usage_oids", ListField("Extended key usages, by OID.")},
                  {"signature_bits",
                   {FieldType::kInt,
                    "Bits of the signature's hash: 256, 384 or 512; the role's (or 0, "
                    "picked for the key) when unset."}},
                  {"remove_roots_from_chain",
                   BoolField("Whether self-signed roots are left out of ca_chain.", false)}}});
}

std::map<std::string, FieldSchema> SignIntermediateFields() {
  return Fields(
      {SubjectFields(),
       SanFields(),
       TtlFields(),
       FormatFields(false),
       {{"issuer_ref", StringField("The issuer that signs (its id or name); default: the "
                                   "mount's default issuer.")},
        {"csr", StringField("The intermediate CA's certificate signing request (PEM). Required.")},
        {"common_name", StringField("The intermediate's common name; required unless "
                                    "use_csr_values.")},
        {"use_csr_values",
         BoolField("Whether the subject and SANs are taken from the CSR.", false)},
        {"exclude_cn_from_sans",
         BoolField("Whether the common name stays out of the Subject Alternative Names.", false)},
        {"max_path_length",
         IntField("The basicConstraints path length; -1 for no limit (the issuer's own limit "
                  "applies).",
                  -1)},
        {"permitted_dns_domains",
         ListField("DNS domains of the name constraints extension (permitted subtrees).")},
        {"signature_bits",
         IntField("Bits of the signature's hash: 256, 384 or 512; 0 picks one for the key.", 0)},
        {"use_pss", BoolField("Whether an RSA issuer signs with PSS.", false)},
        {"not_before_duration", DurationField("How far in the past notBefore is set.", "30s")}}});
}

std::map<std::string, FieldSchema> WithRef(std::map<std::string, FieldSchema> f) {
  f["ref"] = IssuerRefField();
  return f;
}

}  // namespace

std::vector<PkiPath> PkiBackend::IssuePaths(PkiBackend* b) {
  Handler issue = [b](Request& req, const FieldData& d) { return b->Issue(req, d, false); };
  Handler sign = [b](Request& req, const FieldData& d) { return b->Issue(req, d, true); };
  Handler verbatim = [b](Request& req, const FieldData& d) { return b->SignVerbatim(req, d); };
  Handler intermediate = [b](Request& req, const FieldData& d) {
    return b->SignIntermediate(req, d);
  };
  Handler self_issued = [b](Request& req, const FieldData& d) { return b->SignSelfIssued(req, d); };
  // Under issuer/<ref>/, a missing operation resolves the issuer, then answers 404.
  Handler not_found = [b](Request& req, const FieldData& d) {
    return b->IssuerSubpathNotFound(req, d.String("ref"));
  };
  const std::string kIssue = "Issues a certificate and its private key.";
  const std::string kSign = "Signs a CSR within the role's limits.";
  const std::string kVerbatim = "Signs a CSR as it is, with the role's limits when one is named.";
  const std::string kIntermediate = "Signs an intermediate CA's CSR.";
  const std::string kSelfIssued = "Re-signs a self-issued CA certificate with the issuer (sudo).";

  // Role names take the rest of the path: "issue/a/b" is an unknown role "a/b", as it always was.
  std::vector<PkiPath> paths;
  paths.push_back(
      {.path = {.patterns = {"issue/{role*}"},
                .fields = IssueFields(false),
                .operations = Ops({{kUpdate, issue, kIssue}}),
                .unsupported = kUnsupported,
                .synopsis = "Issues a certificate with a new key, as the role allows."}});
  paths.push_back({.path = {.patterns = {"sign/{role*}"},
                            .fields = IssueFields(true),
                            .operations = Ops({{kUpdate, sign, kSign}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Signs a CSR, as the role allows."}});
  paths.push_back({.path = {.patterns = {"sign-verbatim", "sign-verbatim/{role*}"},
                            .fields = SignVerbatimFields(),
                            .operations = Ops({{kUpdate, verbatim, kVerbatim}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Signs a CSR with its own subject and names."}});
  paths.push_back({.path = {.patterns = {"root/sign-intermediate"},
                            .fields = SignIntermediateFields(),
                            .operations = Ops({{kUpdate, intermediate, kIntermediate}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Signs an intermediate CA with the default issuer."}});
  paths.push_back(
      {.path = {.patterns = {"root/sign-self-issued"},
                .fields = {{"certificate", StringField("The self-issued certificate (PEM).")},
                           {"issuer_ref", StringField("The issuer that signs; default: the "
                                                      "mount's default issuer.")}},
                .operations = Ops({{kUpdate, self_issued, kSelfIssued}}),
                .unsupported = kUnsupported,
                .synopsis = "Re-signs a self-issued CA certificate with the default issuer."}});

  paths.push_back({.path = {.patterns = {"issuer/{ref}/issue/{role*}"},
                            .fields = WithRef(IssueFields(false)),
                            .operations = Ops({{kUpdate, issue, kIssue}}),
                            .synopsis = "issue/:role with the issuer given."},
                   .missing_op = not_found});
  paths.push_back({.path = {.patterns = {"issuer/{ref}/sign/{role*}"},
                            .fields = WithRef(IssueFields(true)),
                            .operations = Ops({{kUpdate, sign, kSign}}),
                            .synopsis = "sign/:role with the issuer given."},
                   .missing_op = not_found});
  paths.push_back(
      {.path = {.patterns = {"issuer/{ref}/sign-verbatim", "issuer/{ref}/sign-verbatim/{role*}"},
                .fields = WithRef(SignVerbatimFields()),
                .operations = Ops({{kUpdate, verbatim, kVerbatim}}),
                .synopsis = "sign-verbatim with the issuer given."},
       .missing_op = not_found});
  paths.push_back({.path = {.patterns = {"issuer/{ref}/sign-intermediate"},
                            .fields = WithRef(SignIntermediateFields()),
                            .operations = Ops({{kUpdate, intermediate, kIntermediate}}),
                            .synopsis = "root/sign-intermediate with the issuer given."},
                   .missing_op = not_found});
  paths.push_back(
      {.path = {.patterns = {"issuer/{ref}/sign-self-issued"},
                .fields =
                    WithRef({{"certificate", StringField("The self-issued certificate (PEM).")}}),
                .operations = Ops({{kUpdate, self_issued, kSelfIssued}}),
                .synopsis = "root/sign-self-issued with the issuer given."},
       .missing_op = not_found});
  return paths;
}

absl::StatusOr<Response> PkiBackend::Issue(Request& req, const FieldData& d, bool with_csr) {
  const std::string issuer_ref = d.String("ref");  // "" for the role's issuer
  ASSIGN_OR_RETURN(auto role, LoadRole(req.storage, d.String("role")));
  const Role& r = *role;
  ASSIGN_OR_RETURN(auto issuer,
                   ResolveIssuer(req.storage, issuer_ref.empty() ? r.issuer_ref : issuer_ref));
  RETURN_IF_ERROR(RequireKey(*issuer, "issue"));
  if (issuer->usage.find("issuing-certificates") == std::string::npos)
    return absl::InvalidArgumentError(
        Cat("issuer ", issuer->id, " is not allowed to issue certificates (usage)"));

  std::optional<crypto::CsrInfo> csr;
  crypto::PKey generated;
  const X509_PUBKEY* subject_spki = nullptr;
  X509_PUBKEY* generated_spki = nullptr;
  absl::Cleanup free_spki = [&] { X509_PUBKEY_free(generated_spki); };
  if (with_csr) {
    ASSIGN_OR_RETURN(csr, CsrField(d));
    RETURN_IF_ERROR(CheckCsrKey(r, csr->key));
    subject_spki = csr->spki.get();
  } else {
    if (r.key_type == "any")
      return absl::InvalidArgumentError(
          "role key type \"any\" not allowed for issuing certificates, only signing");
    ASSIGN_OR_RETURN(crypto::KeySpec spec, crypto::ParseKeySpec(r.key_type, r.key_bits));
    ASSIGN_OR_RETURN(generated, crypto::GenerateKey(spec));
    if (X509_PUBKEY_set(&generated_spki, generated.get()) != 1)
      return absl::InternalError("encoding the generated public key failed");
    subject_spki = generated_spki;
  }

  crypto::CertTemplate t;
  // Common name.
  if (csr && r.use_csr_common_name)
    t.common_name = csr->common_name;
  else
    t.common_name = Str(d, "common_name");
  if (t.common_name.empty() && r.require_cn)
    return absl::InvalidArgumentError(
        "the common_name field is required, or must be provided in a CSR with "
        "\"use_csr_common_name\" set to true, unless \"require_cn\" is set to false");
  // Names.
  if (csr && r.use_csr_sans) {
    t.dns_names = csr->dns_names;
    t.emails = csr->emails;
    t.ip_sans = csr->ip_sans;
    t.uri_sans = csr->uri_sans;
    if (csr->has_other_names)
      return absl::InvalidArgumentError(
          "the CSR has otherName SANs, which are not taken from CSRs: give them as other_sans");
  } else {
    RETURN_IF_ERROR(ApplySanFields(d, &t));
  }
  if (csr && r.use_csr_sans) {
    ASSIGN_OR_RETURN(auto others, List(d, "other_sans"));
    if (others) {
      ASSIGN_OR_RETURN(t.other_sans, ParseOtherSans(*others));
    }
    RETURN_IF_ERROR(CheckSanLimits(t));  // the CSR's names with the request's other_sans
  }
  const bool exclude_cn = d.Bool("exclude_cn_from_sans");

  // The role's name policy: the CN, every DNS name and email.
  if (!t.common_name.empty()) {
    std::string why = CheckName(r, t.common_name);
    if (!why.empty())
      return absl::InvalidArgumentError(
          Cat("common name ", t.common_name, " not allowed by this role: ", why));
  }
  for (const auto* list : {&t.dns_names, &t.emails})
    for (const auto& n : *list) {
      std::string why = CheckName(r, n);
      if (!why.empty())
        return absl::InvalidArgumentError(
            Cat("subject alternate name ", n, " not allowed by this role: ", why));
    }
  if (!t.ip_sans.empty()) {
    if (!r.allow_ip_sans)
      return absl::InvalidArgumentError(
          Cat("IP Subject Alternative Names are not allowed in this role, but was provided ",
              t.ip_sans.front()));
    if (!r.allowed_ip_sans_cidr.empty())
      for (const auto& ip : t.ip_sans) {
        bool in = false;
        for (const auto& c : r.allowed_ip_sans_cidr) in = in || CidrContains(c, ip);
        if (!in)
          return absl::InvalidArgumentError(Cat("IP Subject Alternative Name ", ip,
                                                " is not within the role's allowed_ip_sans_cidr"));
      }
  }
  for (const auto& u : t.uri_sans) {
    if (r.allowed_uri_sans.empty())
      return absl::InvalidArgumentError(
          Cat("URI Subject Alternative Names are not allowed in this role, but were provided ", u));
    bool ok = false;
    for (const auto& pat : r.allowed_uri_sans) ok = ok || GlobMatch(pat, u);
    if (!ok)
      return absl::InvalidArgumentError(
          Cat("URI Subject Alternative Name ", u, " not allowed by this role's allowed_uri_sans"));
  }
  for (const auto& [oid, value] : t.other_sans) {
    bool ok = false;
    for (const auto& pat : r.allowed_other_sans)
      ok = ok || pat == "*" || GlobMatch(pat, Cat(oid, ";UTF8:", value));
    if (!ok)
      return absl::InvalidArgumentError(Cat("other SAN ", oid, ";UTF8:", value,
                                            " not allowed by this role's allowed_other_sans"));
  }
  if (!exclude_cn) AddCnToSans(&t);

  // Subject attributes come from the role.
  t.organization = r.organization;
  t.ou = r.ou;
  t.country = r.country;
  t.locality = r.locality;
  t.province = r.province;
  t.street_address = r.street_address;
  t.postal_code = r.postal_code;
  ASSIGN_OR_RETURN(auto sn, StrictStr(d, "serial_number"));
  if (sn) t.serial_number = *sn;
  t.key_usage = r.key_usage_bits;
  t.ext_key_usage = r.eku_oids;
  t.signature_bits = static_cast<int>(r.signature_bits);
  t.use_pss = r.use_pss;

  std::vector<std::string> warnings;
  const int64_t now = Now();
  t.not_before = now - r.not_before_duration;
  const int64_t default_ttl = r.ttl > 0 ? r.ttl : req.mount_default_ttl;
  const int64_t max_ttl =
      r.max_ttl > 0 ? std::min(r.max_ttl, req.mount_max_ttl) : req.mount_max_ttl;
  ASSIGN_OR_RETURN(t.not_after, ComputeNotAfter(d, now, std::min(default_ttl, max_ttl), max_ttl,
                                                issuer.get(), &warnings));

  const std::string format = Str(d, "format");
  RETURN_IF_ERROR(CheckFormats(format, Str(d, "private_key_format")));
  ASSIGN_OR_RETURN(SignedCert cert, SignAndStore(req, t, subject_spki, *issuer, r.no_store));

  json::object out;
  RETURN_IF_ERROR(
      FormatCertificate(out, cert, issuer.get(), format, d.Bool("remove_roots_from_chain")));
  if (generated)
    RETURN_IF_ERROR(AddPrivateKey(out, generated.get(), format, Str(d, "private_key_format")));
  Response resp = Response::Data(std::move(out));
  resp.warnings = std::move(warnings);
  if (r.generate_lease) {
    // Vault: the lease lives as long as the certificate; revoking it revokes the certificate.
    resp.secret = core::SecretLease{.ttl = std::max<int64_t>(1, t.not_after - now),
                                    .renewable = false,
                                    .internal = json::object{{"serial_number", cert.serial_colon}}};
    // A no_store certificate can only be revoked by giving it: the lease keeps it (public).
    if (r.no_store)
      resp.secret->internal["certificate"] = crypto::PemFromDer(cert.der, "CERTIFICATE");
  }
  return resp;
}

absl::StatusOr<Response> PkiBackend::SignVerbatim(Request& req, const FieldData& d) {
  const std::string role_name = d.String("role");  // "" without a role
  const std::string issuer_ref = IssuerRefOf(d);   // "" for the role's issuer, or the default
  std::shared_ptr<const Role> role;
  if (!role_name.empty()) {
    ASSIGN_OR_RETURN(role, LoadRole(req.storage, role_name));
  }
  ASSIGN_OR_RETURN(auto issuer,
                   ResolveIssuer(req.storage, !issuer_ref.empty() ? issuer_ref
                                              : role ? std::string_view(role->issuer_ref)
                                                     : "default"));
  RETURN_IF_ERROR(RequireKey(*issuer, "issue"));
  ASSIGN_OR_RETURN(crypto::CsrInfo csr, CsrField(d));
  if (role) RETURN_IF_ERROR(CheckCsrKey(*role, csr.key));
  if (csr.requests_ca)
    return absl::InvalidArgumentError(
        "refusing to sign a CSR that asks for a CA certificate via sign-verbatim: use "
        "root/sign-intermediate");
  crypto::CertTemplate t;
  ASSIGN_OR_RETURN(t.subject, crypto::CsrSubject(csr));
  t.common_name = csr.common_name;
  t.dns_names = csr.dns_names;
  t.emails = csr.emails;
  t.ip_sans = csr.ip_sans;
  t.uri_sans = csr.uri_sans;
  RETURN_IF_ERROR(CheckSanLimits(t));
  ASSIGN_OR_RETURN(auto ku, List(d, "key_usage"));  // the declared default when absent
  for (const auto& u : ku.value_or(std::vector<std::string>())) {
    ASSIGN_OR_RETURN(uint32_t bit, crypto::ParseKeyUsage(u));
    t.key_usage |= bit;
  }
  ASSIGN_OR_RETURN(auto eku, List(d, "ext_key_usage"));
  for (const auto& e : eku.value_or(std::vector<std::string>())) {
    ASSIGN_OR_RETURN(std::string oid, crypto::ParseExtKeyUsage(e));
    t.ext_key_usage.push_back(oid);
  }
  ASSIGN_OR_RETURN(auto ekuo, List(d, "ext_key_usage_oids"));
  for (const auto& o : ekuo.value_or(std::vector<std::string>())) t.ext_key_usage.push_back(o);
  t.signature_bits = static_cast<int>(d.Has("signature_bits") ? d.Int("signature_bits")
                                      : role                  ? role->signature_bits
                                                              : 0);
  std::vector<std::string> warnings;
  const int64_t now = Now();
  t.not_before = now - (role ? role->not_before_duration : 30);
  int64_t max_ttl =
      role && role->max_ttl > 0 ? std::min(role->max_ttl, req.mount_max_ttl) : req.mount_max_ttl;
  int64_t def = role && role->ttl > 0 ? role->ttl : req.mount_default_ttl;
  ASSIGN_OR_RETURN(t.not_after, ComputeNotAfter(d, now, std::min(def, max_ttl), max_ttl,
                                                issuer.get(), &warnings));
  RETURN_IF_ERROR(CheckFormats(Str(d, "format"), ""));
  ASSIGN_OR_RETURN(SignedCert cert,
                   SignAndStore(req, t, csr.spki.get(), *issuer, role && role->no_store));
  json::object out;
  RETURN_IF_ERROR(FormatCertificate(out, cert, issuer.get(), Str(d, "format"),
                                    d.Bool("remove_roots_from_chain")));
  Response resp = Response::Data(std::move(out));
  resp.warnings = std::move(warnings);
  return resp;
}

absl::StatusOr<Response> PkiBackend::SignIntermediate(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto issuer, ResolveIssuer(req.storage, IssuerRefOf(d)));  // "": default
  RETURN_IF_ERROR(RequireKey(*issuer, "sign"));
  ASSIGN_OR_RETURN(crypto::CsrInfo csr, CsrField(d));
  crypto::CertTemplate t;
  t.is_ca = true;
  if (d.Bool("use_csr_values")) {
    ASSIGN_OR_RETURN(t.subject, crypto::CsrSubject(csr));
    t.common_name = csr.common_name;
    t.dns_names = csr.dns_names;
    t.emails = csr.emails;
    t.ip_sans = csr.ip_sans;
    t.uri_sans = csr.uri_sans;
    RETURN_IF_ERROR(CheckSanLimits(t));
  } else {
    // Vault signs intermediates as a role with use_csr_common_name: without a common_name
    // field, the CSR's is used.
    t.common_name = Str(d, "common_name");
    if (t.common_name.empty()) t.common_name = csr.common_name;
    if (t.common_name.empty())
      return absl::InvalidArgumentError(
          "the common_name field is required: the CSR has no common name either");
    RETURN_IF_ERROR(ApplySubjectFields(d, &t));
    RETURN_IF_ERROR(ApplySanFields(d, &t));
    if (!d.Bool("exclude_cn_from_sans")) AddCnToSans(&t);
  }
  t.max_path_length = static_cast<int>(d.Int("max_path_length"));
  // The issuer's own pathLen constrains its children.
  {
    long parent = X509_get_pathlen(issuer->cert.get());
    if (parent == 0)
      return absl::InvalidArgumentError(
          "the signing CA has a max path length of 0 and cannot sign intermediate CAs");
    if (parent > 0 && (t.max_path_length < 0 || t.max_path_length > parent - 1))
      t.max_path_length = static_cast<int>(parent - 1);
  }
  ASSIGN_OR_RETURN(auto pdd, List(d, "permitted_dns_domains"));
  if (pdd) t.permitted_dns_domains = *pdd;
  t.signature_bits = static_cast<int>(d.Int("signature_bits"));
  t.use_pss = d.Bool("use_pss");
  std::vector<std::string> warnings;
  const int64_t now = Now();
  t.not_before = now - d.Duration("not_before_duration");
  // As Vault: an intermediate may outlive its issuer (the issuer's leaf_not_after_behavior is
  // for leaves); clients stop trusting the chain when the issuer expires anyway.
  ASSIGN_OR_RETURN(t.not_after, ComputeNotAfter(d, now, req.mount_max_ttl, req.mount_max_ttl,
                                                nullptr, &warnings));
  RETURN_IF_ERROR(CheckFormats(Str(d, "format"), ""));
  ASSIGN_OR_RETURN(SignedCert cert, SignAndStore(req, t, csr.spki.get(), *issuer, false));
  json::object out;
  RETURN_IF_ERROR(FormatCertificate(out, cert, issuer.get(), Str(d, "format"), false));
  Response resp = Response::Data(std::move(out));
  resp.warnings = std::move(warnings);
  return resp;
}

absl::StatusOr<Response> PkiBackend::SignSelfIssued(Request& req, const FieldData& d) {
  // Vault's cross-signing of another self-issued CA (a rotated root, say): the certificate keeps
  // everything but its issuer and authority key id. Root-protected (sudo), as in Vault.
  ASSIGN_OR_RETURN(auto issuer, ResolveIssuer(req.storage, IssuerRefOf(d)));  // "": default
  RETURN_IF_ERROR(RequireKey(*issuer, "sign"));
  const std::string pem = Str(d, "certificate");
  if (pem.empty()) return absl::InvalidArgumentError("the certificate field is required");
  ASSIGN_OR_RETURN(crypto::Cert in, crypto::ParseCertPem(pem));
  ASSIGN_OR_RETURN(crypto::Cert out,
                   crypto::ResignSelfIssued(in.get(), issuer->cert.get(), issuer->key->key.get()));
  return Response::Data(
      json::object{{"certificate", crypto::CertPem(out.get())}, {"issuing_ca", issuer->cert_pem}});
}

}  // namespace coffer::engines::pki
