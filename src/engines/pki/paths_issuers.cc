// PKI engine: CAs, issuers and keys — root/generate, root/rotate, root (DELETE), root/replace,
// intermediate/generate, intermediate/set-signed, config/ca, issuers/generate/...,
// issuers/import/..., issuers, issuer/:ref (and its pem, der, json forms), keys, key/:ref,
// config/issuers, config/keys, config/urls.
#include "engines/pki/pki_internal.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Handler;
using core::framework::Path;

namespace {

absl::Status CheckType(std::string_view type, bool allow_existing) {
  if (type == "internal" || type == "exported") return absl::OkStatus();
  if (type == "existing" && allow_existing) return absl::OkStatus();
  if (type == "kms")
    return absl::InvalidArgumentError("managed keys (kms) are not supported by Coffer");
  return absl::InvalidArgumentError(Cat("unknown type \"", type, "\": use internal, exported",
                                        allow_existing ? " or existing" : ""));
}

// The key for a new CA: an existing one (type existing, key_ref) or a fresh one.
absl::StatusOr<std::pair<crypto::PKey, std::string>> KeyForCa(PkiBackend* b, Request& req,
                                                              const FieldData& d,
                                                              std::string_view type) {
  if (type == "existing") {
    ASSIGN_OR_RETURN(auto k, b->ResolveKey(req.storage, Str(d, "key_ref")));
    EVP_PKEY_up_ref(k->key.get());
    return std::make_pair(crypto::PKey(k->key.get()), k->id);
  }
  ASSIGN_OR_RETURN(crypto::KeySpec spec,
                   crypto::ParseKeySpec(Str(d, "key_type"), d.Int("key_bits")));
  ASSIGN_OR_RETURN(crypto::PKey key, crypto::GenerateKey(spec));
  return std::make_pair(std::move(key), std::string());
}

absl::Status CaTemplate(const FieldData& d, crypto::CertTemplate* t) {
  t->common_name = Str(d, "common_name");
  if (t->common_name.empty())
    return absl::InvalidArgumentError("the common_name field is required for a CA certificate");
  RETURN_IF_ERROR(ApplySubjectFields(d, t));
  RETURN_IF_ERROR(ApplySanFields(d, t));
  AddCnToSans(t);
  t->max_path_length = static_cast<int>(d.Int("max_path_length"));
  if (t->max_path_length < -1)
    return absl::InvalidArgumentError("max_path_length must be -1 (no limit) or at least 0");
  ASSIGN_OR_RETURN(auto pdd, List(d, "permitted_dns_domains"));
  if (pdd) t->permitted_dns_domains = *pdd;
  t->signature_bits = static_cast<int>(d.Int("signature_bits"));
  if (t->signature_bits != 0 && t->signature_bits != 256 && t->signature_bits != 384 &&
      t->signature_bits != 512)
    return absl::InvalidArgumentError("signature_bits must be 256, 384 or 512");
  t->use_pss = d.Bool("use_pss");
  t->is_ca = true;
  return absl::OkStatus();
}

// The fields of a new CA certificate or CSR (root/generate, intermediate/generate).
std::map<std::string, FieldSchema> CaFields() {
  return Fields(
      {SubjectFields(),
       SanFields(),
       FormatFields(true),
       {{"type",
         {FieldType::kString,
          "internal (the key stays in the mount), exported (the "
          "response holds the key) or existing (key_ref)."}},
        {"common_name", StringField("The CA's common name. Required.")},
        {"max_path_length", IntField("The basicConstraints path length; -1 for no limit.", -1)},
        {"permitted_dns_domains",
         ListField("DNS domains of the name constraints extension (permitted subtrees).")},
        {"signature_bits",
         IntField("Bits of the signature's hash: 256, 384 or 512; 0 picks one for the key.", 0)},
        {"use_pss", BoolField("Whether an RSA key signs with PSS.", false)},
        {"key_type", StringField("Type of a new key: rsa, ec or ed25519.", "rsa")},
        {"key_bits", IntField("Size of a new key; 0 picks the key type's default.", 0)},
        {"key_ref", StringField("The key to use with type existing (name or id).", "default")},
        {"key_name", StringField("A name for a new key.")}}});
}

// The paths below root/generate/, issuers/generate/root/, intermediate/generate/ and
// issuers/generate/intermediate/ have always been read up to their last segment, the type
// (root/rotate/ takes the rest of the path as it is).
std::string LastSegment(std::string_view rest) {
  return std::string(rest.substr(rest.rfind('/') + 1));
}

// The body's own value, where today's behaviour tells null from absent.
const json::value& Given(const Request& req, std::string_view name) {
  static const json::value kNull;
  const json::value* v = req.data.if_contains(name);
  return v ? *v : kNull;
}

}  // namespace

std::vector<PkiPath> PkiBackend::IssuerPaths(PkiBackend* b) {
  // The handlers.
  Handler generate_root = [b](Request& r, const FieldData& d) {
    return b->GenerateRoot(r, d, /*rotate=*/false);
  };
  Handler rotate_root = [b](Request& r, const FieldData& d) {
    return b->GenerateRoot(r, d, /*rotate=*/true);
  };
  Handler generate_intermediate = [b](Request& r, const FieldData& d) {
    return b->GenerateIntermediate(r, d);
  };
  Handler set_signed = [b](Request& r, const FieldData& d) {
    return b->ImportBundle(r, d, "certificate");
  };
  Handler import_bundle = [b](Request& r, const FieldData& d) {
    return b->ImportBundle(r, d, "pem_bundle");
  };
  Handler delete_root = [b](Request& r, const FieldData&) { return b->DeleteRoot(r); };
  Handler replace_root = [b](Request& r, const FieldData&) {
    if (!r.data.contains("default")) r.data["default"] = "next";
    return b->WriteConfigIssuers(r);
  };
  Handler list_issuers = [b](Request& r, const FieldData&) { return b->ListIssuers(r); };
  Handler read_issuer = [b](Request& r, const FieldData& d) { return b->ReadIssuer(r, d); };
  Handler write_issuer = [b](Request& r, const FieldData& d) { return b->WriteIssuer(r, d); };
  Handler delete_issuer = [b](Request& r, const FieldData& d) { return b->DeleteIssuer(r, d); };
  Handler fetch_issuer = [b](Request& r, const FieldData& d) { return b->FetchIssuer(r, d); };
  Handler list_keys = [b](Request& r, const FieldData&) { return b->ListKeys(r); };
  Handler read_key = [b](Request& r, const FieldData& d) { return b->ReadKey(r, d); };
  Handler write_key = [b](Request& r, const FieldData& d) { return b->WriteKey(r, d); };
  Handler delete_key = [b](Request& r, const FieldData& d) { return b->DeleteKey(r, d); };
  Handler read_config_issuers = [b](Request& r, const FieldData&) {
    return b->ReadConfigIssuers(r);
  };
  Handler write_config_issuers = [b](Request& r, const FieldData&) {
    return b->WriteConfigIssuers(r);
  };
  Handler read_config_keys = [b](Request& r, const FieldData&) { return b->ReadConfigKeys(r); };
  Handler write_config_keys = [b](Request& r, const FieldData& d) {
    return b->WriteConfigKeys(r, d);
  };
  Handler read_config_urls = [b](Request& r, const FieldData&) { return b->ReadConfigUrls(r); };
  Handler write_config_urls = [b](Request& r, const FieldData& d) {
    return b->WriteConfigUrls(r, d);
  };
  // issuer/<ref> and key/<ref> check the issuer or key before anything else, whatever the
  // operation: an unknown one is a 400 even where the operation is not served.
  Handler resolve_issuer_then_405 = [b](Request& r,
                                        const FieldData& d) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(b->ResolveIssuer(r.storage, d.String("ref")).status());
    return UnsupportedOperation();
  };
  Handler resolve_key_then_405 = [b](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(b->ResolveKey(r.storage, d.String("ref")).status());
    return UnsupportedOperation();
  };

  // The fields.
  const auto root_fields = Fields(
      {CaFields(),
       TtlFields(),
       {{"issuer_name", StringField("A name for the new issuer.")},
        {"not_before_duration", DurationField("How far in the past notBefore is set.", "30s")}}});
  const auto intermediate_fields =
      Fields({CaFields(),
              {{"add_basic_constraints",
                BoolField("Whether the CSR asks for basicConstraints cA=TRUE.", false)},
               {"issuer_name",
                StringField("A name for the issuer that intermediate/set-signed will import for "
                            "this key (Coffer keeps it until then; Vault ignores it here).")}}});
  const FieldSchema issuer_ref{FieldType::kString,
                               "Reference of the issuer: its id, its name or \"default\"."};
  const FieldSchema key_ref{FieldType::kString,
                            "Reference of the key: its id, its name or \"default\"."};

  std::vector<PkiPath> paths;
  // ---- new CAs ----
  paths.push_back({.path = {.patterns = {"root/generate/{type*}", "issuers/generate/root/{type*}"},
                            .fields = root_fields,
                            .operations = Ops({{kUpdate, generate_root,
                                                "Generates a root CA; it becomes the default "
                                                "issuer."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Generates a self-signed root CA certificate and key."}});
  paths.push_back({.path = {.patterns = {"root/rotate/{type*}"},
                            .fields = root_fields,
                            .operations = Ops({{kUpdate, rotate_root,
                                                "Generates a root CA that does not become the "
                                                "default."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Generates a new root CA beside the current one "
                                        "(root/replace makes it the default)."}});
  paths.push_back({.path = {.patterns = {"intermediate/generate/{type*}",
                                         "issuers/generate/intermediate/{type*}"},
                            .fields = intermediate_fields,
                            .operations = Ops({{kUpdate, generate_intermediate,
                                                "Generates a key and a CSR for an intermediate "
                                                "CA."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Generates an intermediate CA's key and CSR, to be signed "
                                        "elsewhere."}});
  paths.push_back({.path = {.patterns = {"intermediate/cross-sign"},
                            .fields = intermediate_fields,
                            .operations = Ops({{kUpdate,
                                                [b](Request& r, const FieldData& d) {
                                                  return b->GenerateIntermediate(r, d, "existing");
                                                },
                                                "A CSR for an existing key (key_ref), to have "
                                                "another issuer cross-sign it."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "intermediate/generate/existing: a CSR for a key the "
                                        "mount holds."}});
  paths.push_back(
      {.path = {.patterns = {"intermediate/set-signed"},
                .fields = {{"certificate", StringField("The signed intermediate certificate (PEM), "
                                                       "optionally followed by its parents.")}},
                .operations =
                    Ops({{kUpdate, set_signed, "Imports the signed intermediate certificate."}}),
                .unsupported = kUnsupported,
                .synopsis = "Imports the certificate signed for "
                            "intermediate/generate's CSR."}});
  paths.push_back(
      {.path = {
           .patterns = {"config/ca", "issuers/import/bundle", "issuers/import/cert"},
           .fields = {{"pem_bundle", SecretField("CA certificates (PEM), with or without their "
                                                 "private key.")}},
           .operations =
               Ops({{kUpdate, import_bundle, "Imports the issuers and key of a PEM bundle."}}),
           .unsupported = kUnsupported,
           .synopsis = "Imports CA certificates and keys."}});
  paths.push_back({.path = {.patterns = {"root"},
                            .operations = Ops({{kDelete, delete_root,
                                                "Deletes every issuer and key (issued "
                                                "certificates stay)."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The mount's CAs (DELETE only; needs sudo)."}});
  paths.push_back(
      {.path = {.patterns = {"root/replace"},
                .fields = {{"default",
                            StringField("The issuer (name or id) to make the default.", "next")}},
                .operations = Ops({{kUpdate, replace_root, "Makes an issuer the default."}}),
                .unsupported = kUnsupported,
                .synopsis = "Replaces the default issuer (config/issuers under "
                            "another name)."}});

  // ---- issuers ----
  paths.push_back({.path = {.patterns = {"issuers"},
                            .operations = Ops({{kList, list_issuers,
                                                "Lists the issuers with their names and keys."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The issuers of the mount."}});
  paths.push_back(
      {.path = {
           .patterns = {"issuer/{ref}/revoke"},
           .fields = {{"ref", issuer_ref}},
           .operations =
               Ops({{kUpdate, [b](Request& r, const FieldData& d) { return b->RevokeIssuer(r, d); },
                     "Revokes the issuer."}}),
           .synopsis = "Revokes an issuer: it issues nothing more, and its "
                       "parent in this mount lists it on its CRL."}});
  paths.push_back(
      {.path = {.patterns = {"issuer/{ref}"},
                .fields = {{"ref", issuer_ref},
                           {"issuer_name", StringField("A new name for the issuer.")},
                           {"leaf_not_after_behavior",
                            StringField("What happens when a leaf would outlive the issuer: err, "
                                        "truncate or permit.",
                                        "err")},
                           {"usage", ListField("What the issuer may do: read-only, "
                                               "issuing-certificates, crl-signing, ocsp-signing.",
                                               "read-only,issuing-certificates,crl-signing")}},
                .operations =
                    Ops({{kRead, read_issuer, "Reads the issuer."},
                         {kUpdate, write_issuer, "Changes the issuer's name, behaviour or usage."},
                         {kPatch, write_issuer, "Changes the issuer's name, behaviour or usage."},
                         {kDelete, delete_issuer, "Deletes the issuer (its key stays)."}}),
                .unsupported = "",
                .synopsis = "One issuer: its certificate, chain, name and behaviour."},
       .missing_op = resolve_issuer_then_405});
  paths.push_back(
      {.path = {.patterns = {"issuer/{ref}/{format:pem|der|json}"},
                .fields = {{"ref", issuer_ref},
                           {"format", {FieldType::kString, "pem, der or json (with the chain)."}}},
                .operations = Ops({{kRead, fetch_issuer, "Reads the issuer's certificate."}}),
                .unsupported = "",
                .synopsis = "The issuer's certificate, without authentication."},
       .missing_op = resolve_issuer_then_405});

  // ---- keys ----
  paths.push_back(
      {.path = {.patterns = {"keys"},
                .operations = Ops({{kList, list_keys, "Lists the keys with their names."}}),
                .unsupported = kUnsupported,
                .synopsis = "The keys of the mount."}});
  // key/{ref*}: a key's name may hold '/' (key_name is free text).
  paths.push_back(
      {.path = {.patterns = {"key/{ref*}"},
                .fields = {{"ref", key_ref}, {"key_name", StringField("A new name for the key.")}},
                .operations =
                    Ops({{kRead, read_key, "Reads the key's id, name, type and size."},
                         {kUpdate, write_key, "Renames the key."},
                         {kDelete, delete_key, "Deletes the key unless an issuer uses it."}}),
                .unsupported = "",
                .synopsis = "One key of the mount (never its private part)."},
       .missing_op = resolve_key_then_405});

  // ---- configuration ----
  paths.push_back(
      {.path = {.patterns = {"config/issuers"},
                .fields = {{"default", StringField("The default issuer (name or id).")},
                           {"default_follows_latest_issuer",
                            {FieldType::kAny,
                             "(bool) Accepted for compatibility with Vault; Coffer never moves "
                             "the default by itself."}}},
                .operations = Ops({{kRead, read_config_issuers, "Reads the default issuer."},
                                   {kUpdate, write_config_issuers, "Sets the default issuer."}}),
                .unsupported = "",
                .synopsis = "The default issuer: the one issue/, sign/, ca and crl use."}});
  paths.push_back(
      {.path = {.patterns = {"config/keys"},
                .fields = {{"default", StringField("The default key (name or id).")}},
                .operations = Ops({{kRead, read_config_keys, "Reads the default key."},
                                   {kUpdate, write_config_keys, "Sets the default key."}}),
                .unsupported = "",
                .synopsis = "The default key: the one type existing uses without key_ref."}});
  paths.push_back(
      {.path = {.patterns = {"config/urls"},
                .fields = {{"issuing_certificates",
                            ListField("URLs of the issuing CA certificate, for the Authority "
                                      "Information Access extension.")},
                           {"crl_distribution_points",
                            ListField("URLs of the CRL, for the CRL Distribution Points "
                                      "extension.")},
                           {"ocsp_servers",
                            ListField("URLs of OCSP responders, for the Authority Information "
                                      "Access extension.")},
                           {"enable_templating",
                            {FieldType::kAny,
                             "(bool) Templated URLs; not supported by Coffer (true is refused, "
                             "anything else ignored)."}}},
                .operations = Ops({{kRead, read_config_urls, "Reads the URLs."},
                                   {kUpdate, write_config_urls, "Sets the URLs given."}}),
                .unsupported = "",
                .synopsis = "The URLs written into issued certificates."}});
  return paths;
}

absl::StatusOr<Response> PkiBackend::GenerateRoot(Request& req, const FieldData& d, bool rotate) {
  const std::string type = rotate ? d.String("type") : LastSegment(d.String("type"));
  RETURN_IF_ERROR(CheckType(type, true));
  crypto::CertTemplate t;
  RETURN_IF_ERROR(CaTemplate(d, &t));
  const std::string issuer_name = Str(d, "issuer_name");
  const std::string key_name = Str(d, "key_name");
  if (!issuer_name.empty()) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& is : all)
      if (is->name == issuer_name)
        return absl::InvalidArgumentError(
            Cat("issuer name \"", issuer_name, "\" is already in use"));
  }
  std::vector<std::string> warnings;
  const int64_t now = Now();
  t.not_before = now - d.Duration("not_before_duration");
  ASSIGN_OR_RETURN(t.not_after, ComputeNotAfter(d, now, req.mount_max_ttl, req.mount_max_ttl,
                                                nullptr, &warnings));
  ASSIGN_OR_RETURN(auto kp, KeyForCa(this, req, d, type));
  auto& [key, existing_key_id] = kp;
  ASSIGN_OR_RETURN(crypto::Cert cert, crypto::SignCertificate(t, key.get(), nullptr, key.get()));
  std::string key_id = existing_key_id;
  if (key_id.empty()) {
    ASSIGN_OR_RETURN(key_id, SaveKey(req.storage, key.get(), key_name));
  }
  ASSIGN_OR_RETURN(std::string issuer_id,
                   SaveIssuer(req.storage, cert.get(), key_id, issuer_name, !rotate));
  ASSIGN_OR_RETURN(auto issuer, ResolveIssuer(req.storage, issuer_id));
  // Vault lists the root it made among the mount's certificates (LIST certs, cert/:serial).
  RETURN_IF_ERROR(StoreCertificate(req.storage, cert.get(), issuer_id));

  json::object out;
  RETURN_IF_ERROR(FormatCertificate(out, cert.get(), issuer.get(), Str(d, "format"), false));
  out.erase("ca_chain");
  out["issuer_id"] = issuer_id;
  out["issuer_name"] = issuer_name;
  out["key_id"] = key_id;
  out["key_name"] = key_name;
  if (type == "exported")
    RETURN_IF_ERROR(AddPrivateKey(out, key.get(), Str(d, "format"), Str(d, "private_key_format")));
  Response r = Response::Data(std::move(out));
  r.warnings = std::move(warnings);
  return r;
}

absl::StatusOr<Response> PkiBackend::GenerateIntermediate(Request& req, const FieldData& d,
                                                          std::string_view type_override) {
  const std::string type =
      type_override.empty() ? LastSegment(d.String("type")) : std::string(type_override);
  RETURN_IF_ERROR(CheckType(type, true));
  crypto::CertTemplate t;
  RETURN_IF_ERROR(CaTemplate(d, &t));
  ASSIGN_OR_RETURN(auto kp, KeyForCa(this, req, d, type));
  auto& [key, existing_key_id] = kp;
  crypto::CsrRequest q;
  q.common_name = t.common_name;
  q.organization = t.organization;
  q.ou = t.ou;
  q.country = t.country;
  q.locality = t.locality;
  q.province = t.province;
  q.street_address = t.street_address;
  q.postal_code = t.postal_code;
  q.serial_number = t.serial_number;
  q.dns_names = t.dns_names;
  q.ip_sans = t.ip_sans;
  q.uri_sans = t.uri_sans;
  q.emails = t.emails;
  q.is_ca = d.Bool("add_basic_constraints");
  ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsrPem(key.get(), q, t.signature_bits, t.use_pss));
  std::string key_id = existing_key_id;
  const std::string key_name = Str(d, "key_name");
  if (key_id.empty()) {
    ASSIGN_OR_RETURN(key_id, SaveKey(req.storage, key.get(), key_name));
  }
  // The issuer's name, for when its certificate comes back through set-signed.
  if (const std::string issuer_name = Str(d, "issuer_name"); !issuer_name.empty()) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& is : all)
      if (is->name == issuer_name)
        return absl::InvalidArgumentError(
            Cat("issuer name \"", issuer_name, "\" is already in use"));
    RETURN_IF_ERROR(req.storage->Put("pending-issuer-name/" + key_id, issuer_name));
  }
  json::object out{{"csr", csr}, {"key_id", key_id}, {"key_name", key_name}};
  if (Str(d, "format") == "der") {
    // The CSR as base64 DER.
    std::string body;
    for (std::string_view line : Split(csr, '\n'))
      if (!line.empty() && line[0] != '-') body.append(line);
    out["csr"] = body;
  }
  if (type == "exported")
    RETURN_IF_ERROR(AddPrivateKey(out, key.get(), Str(d, "format"), Str(d, "private_key_format")));
  return Response::Data(std::move(out));
}

absl::StatusOr<Response> PkiBackend::ImportBundle(Request& req, const FieldData& d,
                                                  std::string_view field) {
  std::string pem = Str(d, field);
  if (pem.empty())
    return absl::InvalidArgumentError(Cat("the ", field, " field is required (a PEM bundle)"));
  ASSIGN_OR_RETURN(crypto::PemBundle bundle, crypto::ParsePemBundle(pem));
  OPENSSL_cleanse(pem.data(), pem.size());
  std::vector<std::string> warnings;
  json::array imported_keys, existing_keys, imported_issuers, existing_issuers;
  json::object mapping;
  if (bundle.key) {
    ASSIGN_OR_RETURN(auto before, req.storage->List("key/"));
    ASSIGN_OR_RETURN(std::string kid, SaveKey(req.storage, bundle.key.get(), ""));
    if (std::find(before.begin(), before.end(), kid) != before.end())
      existing_keys.emplace_back(kid);
    else
      imported_keys.emplace_back(kid);
  }
  for (auto& c : bundle.certs) {
    if (!crypto::IsCa(c.get()))
      return absl::InvalidArgumentError(
          Cat("certificate \"", crypto::NameOneLine(X509_get_subject_name(c.get())),
              "\" is not a CA (basicConstraints cA=TRUE is missing); only CA certificates can "
              "be imported as issuers"));
  }
  for (auto& c : bundle.certs) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    const std::string der = crypto::CertDer(c.get());
    std::string found;
    for (const auto& is : all)
      if (crypto::CertDer(is->cert.get()) == der) found = is->id;
    if (!found.empty()) {
      existing_issuers.emplace_back(found);
      continue;
    }
    // The key: whichever key of the mount matches the certificate's public key.
    std::string key_id;
    ASSIGN_OR_RETURN(auto key_ids, req.storage->List("key/"));
    for (const auto& kid : key_ids) {
      auto k = ResolveKey(req.storage, kid);
      if (k.ok() && crypto::SameKey((*k)->key.get(), X509_get0_pubkey(c.get()))) key_id = kid;
    }
    // A name given to intermediate/generate for this key, if it is still free.
    std::string name;
    if (!key_id.empty()) {
      ASSIGN_OR_RETURN(auto pending, req.storage->Get("pending-issuer-name/" + key_id));
      if (pending) {
        bool taken = false;
        for (const auto& is : all) taken = taken || is->name == *pending;
        if (!taken) name = *pending;
        RETURN_IF_ERROR(req.storage->Delete("pending-issuer-name/" + key_id));
      }
    }
    ASSIGN_OR_RETURN(std::string id, SaveIssuer(req.storage, c.get(), key_id, name, false));
    imported_issuers.emplace_back(id);
    mapping[id] = key_id;
    if (key_id.empty() && &c == &bundle.certs.front() && field == "certificate")
      warnings.emplace_back(
          "the mount holds no private key for this certificate: it can be read but cannot "
          "issue; generate the CSR with intermediate/generate/internal on this mount");
  }
  json::object out{
      {"imported_issuers", imported_issuers.empty() ? json::value(nullptr) : imported_issuers},
      {"imported_keys", imported_keys.empty() ? json::value(nullptr) : imported_keys},
      {"existing_issuers", existing_issuers.empty() ? json::value(nullptr) : existing_issuers},
      {"existing_keys", existing_keys.empty() ? json::value(nullptr) : existing_keys},
      {"mapping", mapping}};
  Response r = Response::Data(std::move(out));
  r.warnings = std::move(warnings);
  return r;
}

absl::StatusOr<Response> PkiBackend::ListIssuers(Request& req) {
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  if (all.empty()) return absl::NotFoundError("");
  std::string def;
  if (auto d = ResolveIssuer(req.storage, "default"); d.ok()) def = (*d)->id;
  json::array keys;
  json::object info;
  for (const auto& is : all) {
    keys.emplace_back(is->id);
    info[is->id] = json::object{{"issuer_name", is->name},
                                {"is_default", is->id == def},
                                {"key_id", is->key_id},
                                {"serial_number", is->serial}};
  }
  return Response::Data(json::object{{"keys", keys}, {"key_info", info}});
}

absl::StatusOr<Response> PkiBackend::ListKeys(Request& req) {
  ASSIGN_OR_RETURN(auto ids, req.storage->List("key/"));
  if (ids.empty()) return absl::NotFoundError("");
  json::object info;
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, id));
    info[id] = json::object{{"key_name", k->name}};
  }
  return Response::Data(json::object{{"keys", ToArray(ids)}, {"key_info", info}});
}

absl::StatusOr<Response> PkiBackend::DeleteRoot(Request& req) {
  // Vault's DELETE /pki/root: removes every issuer and key (issued certificates stay).
  ASSIGN_OR_RETURN(auto ids, req.storage->List("issuer/"));
  std::vector<storage::WriteOp> ops;
  for (auto& id : ids) ops.push_back({storage::WriteOp::Kind::kDelete, "issuer/" + id, ""});
  ASSIGN_OR_RETURN(auto kids, req.storage->List("key/"));
  for (auto& id : kids) ops.push_back({storage::WriteOp::Kind::kDelete, "key/" + id, ""});
  ops.push_back({storage::WriteOp::Kind::kDelete, "config/issuers", ""});
  ops.push_back({storage::WriteOp::Kind::kDelete, "config/keys", ""});
  RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
  InvalidateIssuers();
  return Response::Empty();
}

namespace {
json::object KeyJson(const KeyEntry& e) {
  return json::object{{"key_id", e.id},
                      {"key_name", e.name},
                      {"key_type", std::string(crypto::KeyTypeName(e.spec.type))},
                      {"key_bits", e.spec.bits}};
}
}  // namespace

absl::StatusOr<Response> PkiBackend::ReadKey(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, d.String("ref")));
  return Response::Data(KeyJson(*k));
}

absl::StatusOr<Response> PkiBackend::WriteKey(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, d.String("ref")));
  ASSIGN_OR_RETURN(auto raw, req.storage->Get("key/" + k->id));
  if (!raw) return absl::NotFoundError("");
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("stored key is not JSON");
  std::string name = Str(d, "key_name");
  v.as_object()["key_name"] = name;
  std::string body = json::serialize(v);
  absl::Status st = req.storage->Put("key/" + k->id, body);
  OPENSSL_cleanse(body.data(), body.size());
  RETURN_IF_ERROR(st);
  InvalidateIssuers();
  ASSIGN_OR_RETURN(auto k2, ResolveKey(req.storage, k->id));
  return Response::Data(KeyJson(*k2));
}

absl::StatusOr<Response> PkiBackend::DeleteKey(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, d.String("ref")));
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  for (const auto& is : all)
    if (is->key_id == k->id)
      return absl::InvalidArgumentError(
          Cat("key ", k->id, " is in use by issuer ", is->id, ": delete the issuer first"));
  RETURN_IF_ERROR(req.storage->Delete("key/" + k->id));
  ASSIGN_OR_RETURN(auto raw, req.storage->Get("config/keys"));
  if (raw && raw->find(k->id) != std::string::npos)
    RETURN_IF_ERROR(req.storage->Delete("config/keys"));
  InvalidateIssuers();
  return Response::Empty();
}

absl::StatusOr<Response> PkiBackend::IssuerSubpathNotFound(Request& req, std::string_view ref) {
  RETURN_IF_ERROR(ResolveIssuer(req.storage, ref).status());
  return absl::NotFoundError(Cat("unsupported path \"", req.path, "\""));
}

absl::StatusOr<Response> PkiBackend::ReadIssuer(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, d.String("ref")));
  return Response::Data(is->ToJson());
}

absl::StatusOr<Response> PkiBackend::FetchIssuer(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, d.String("ref")));
  const std::string format = d.String("format");
  if (format == "pem") return RawBody(is->cert_pem + "\n", "application/pem-certificate-chain");
  if (format == "der") return RawBody(crypto::CertDer(is->cert.get()), "application/pkix-cert");
  return Response::Data(json::object{{"certificate", is->cert_pem},
                                     {"ca_chain", ToArray(is->chain_pem)},
                                     {"issuer_id", is->id},
                                     {"issuer_name", is->name}});
}

absl::StatusOr<Response> PkiBackend::RevokeIssuer(Request& req, const FieldData& d) {
  // Vault: the issuer is marked revoked and loses its issuance and OCSP usages; when its parent
  // is in the mount, the parent's CRL lists it. Revoking twice changes nothing.
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, d.String("ref")));
  if (is->revocation_time > 0) return Response::Data(is->ToJson());
  ASSIGN_OR_RETURN(auto stored, GetJson(req.storage, "issuer/" + is->id));
  if (!stored) return absl::NotFoundError("");
  const int64_t now = Now();
  json::object o = std::move(*stored);
  o["revocation_time"] = now;
  std::string usage;
  const std::string old_usage = GetString(o, "usage");  // Split returns views into it
  for (std::string_view u : Split(old_usage, ','))
    if (u != "issuing-certificates" && u != "ocsp-signing" && !u.empty())
      usage += (usage.empty() ? "" : ",") + std::string(u);
  o["usage"] = usage;
  std::vector<storage::WriteOp> ops{
      {storage::WriteOp::Kind::kPut, "issuer/" + is->id, json::serialize(o)}};
  std::shared_ptr<const Issuer> parent;
  if (!is->self_signed) {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& other : all)
      if (other->id != is->id && crypto::IssuedBy(is->cert.get(), other->cert.get()))
        parent = other;
  }
  const std::string hyphen = HyphenSerial(is->serial);
  if (parent) {
    json::object revoked{{"der", Base64Encode(crypto::CertDer(is->cert.get()))},
                         {"issuer_id", parent->id},
                         {"revocation_time", now},
                         {"not_after", is->not_after}};
    ops.push_back({storage::WriteOp::Kind::kPut, "revoked/" + hyphen, json::serialize(revoked)});
    ops.push_back({storage::WriteOp::Kind::kPut,
                   Cat("crl-index/", parent->id, "/", IndexName(hyphen, now)), ""});
  }
  RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
  InvalidateIssuers();
  if (parent) {
    ASSIGN_OR_RETURN(CrlConfig cfg, LoadCrlConfig(req.storage));
    if (cfg.auto_rebuild || !parent->key)
      RETURN_IF_ERROR(req.storage->Delete("crls/" + parent->id));  // rebuilt on next read
    else
      RETURN_IF_ERROR(RebuildCrl(req.storage, *parent));
  }
  ASSIGN_OR_RETURN(auto updated, ResolveIssuer(req.storage, is->id));
  return Response::Data(updated->ToJson());
}

absl::StatusOr<Response> PkiBackend::WriteIssuer(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, d.String("ref")));
  ASSIGN_OR_RETURN(auto raw, req.storage->Get("issuer/" + is->id));
  if (!raw) return absl::NotFoundError("");
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("stored issuer is not JSON");
  json::object& o = v.as_object();
  // A field given as null counts as given (and empty), as it always has.
  if (req.data.contains("issuer_name")) {
    std::string name = Str(d, "issuer_name");
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& other : all)
      if (other->id != is->id && !name.empty() && other->name == name)
        return absl::InvalidArgumentError(Cat("issuer name \"", name, "\" is already in use"));
    if (name == "default")
      return absl::InvalidArgumentError("\"default\" is reserved and cannot be an issuer name");
    o["issuer_name"] = name;
  }
  if (req.data.contains("leaf_not_after_behavior")) {
    const json::value& given = Given(req, "leaf_not_after_behavior");
    std::string b = given.is_string() ? std::string(given.as_string()) : "";
    if (b != "err" && b != "truncate" && b != "permit")
      return absl::InvalidArgumentError(
          Cat("leaf_not_after_behavior \"", b, "\" is not one of err, truncate, permit"));
    o["leaf_not_after_behavior"] = b;
  }
  if (req.data.contains("usage")) {
    ASSIGN_OR_RETURN(auto u, StringList(Given(req, "usage"), "usage"));
    std::string joined;
    for (const auto& s : u.value_or(std::vector<std::string>())) {
      if (s != "read-only" && s != "issuing-certificates" && s != "crl-signing" &&
          s != "ocsp-signing")
        return absl::InvalidArgumentError(
            Cat("usage \"", s,
                "\" is not one of read-only, issuing-certificates, crl-signing, "
                "ocsp-signing"));
      joined += (joined.empty() ? "" : ",") + s;
      if (s == "issuing-certificates" && is->revocation_time > 0)
        return absl::InvalidArgumentError(
            "this issuer was revoked: it cannot be given the issuing-certificates usage again");
    }
    o["usage"] = joined;
  }
  RETURN_IF_ERROR(req.storage->Put("issuer/" + is->id, json::serialize(o)));
  InvalidateIssuers();
  ASSIGN_OR_RETURN(auto updated, ResolveIssuer(req.storage, is->id));
  return Response::Data(updated->ToJson());
}

absl::StatusOr<Response> PkiBackend::DeleteIssuer(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, d.String("ref")));
  std::vector<storage::WriteOp> ops{{storage::WriteOp::Kind::kDelete, "issuer/" + is->id, ""},
                                    {storage::WriteOp::Kind::kDelete, "crls/" + is->id, ""}};
  auto def = ResolveIssuer(req.storage, "default");
  Response r;
  if (def.ok() && (*def)->id == is->id) {
    ops.push_back({storage::WriteOp::Kind::kDelete, "config/issuers", ""});
    r.warnings.emplace_back(
        "the deleted issuer was the default: set a new default with config/issuers");
  }
  RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
  InvalidateIssuers();
  return r;
}

absl::StatusOr<Response> PkiBackend::ReadConfigIssuers(Request& req) {
  auto def = ResolveIssuer(req.storage, "default");
  return Response::Data(json::object{{"default", def.ok() ? (*def)->id : ""},
                                     {"default_follows_latest_issuer", false}});
}

absl::StatusOr<Response> PkiBackend::WriteConfigIssuers(Request& req) {
  // Read from the body itself: root/replace fills in "next" only when "default" is absent.
  std::string ref = GetString(req.data, "default");
  if (ref.empty() || ref == "default")
    return absl::InvalidArgumentError("the default field must name an issuer (id or name)");
  if (ref == "next") {
    // root/replace without a reference: the most recently added root. Coffer has no order of
    // creation it can trust here, so it asks for an explicit reference.
    return absl::InvalidArgumentError(
        "give the new default issuer explicitly: root/replace default=<issuer id or name>");
  }
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, ref));
  RETURN_IF_ERROR(req.storage->Put(
      "config/issuers", json::serialize(json::object{{"default", is->id},
                                                     {"default_follows_latest_issuer", false}})));
  InvalidateIssuers();
  return Response::Data(
      json::object{{"default", is->id}, {"default_follows_latest_issuer", false}});
}

absl::StatusOr<Response> PkiBackend::ReadConfigKeys(Request& req) {
  auto def = ResolveKey(req.storage, "default");
  return Response::Data(json::object{{"default", def.ok() ? (*def)->id : ""}});
}

absl::StatusOr<Response> PkiBackend::WriteConfigKeys(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto k, ResolveKey(req.storage, Str(d, "default")));
  RETURN_IF_ERROR(
      req.storage->Put("config/keys", json::serialize(json::object{{"default", k->id}})));
  InvalidateIssuers();
  return Response::Data(json::object{{"default", k->id}});
}

absl::StatusOr<Response> PkiBackend::ReadConfigUrls(Request& req) {
  ASSIGN_OR_RETURN(UrlConfig u, LoadUrls(req.storage));
  return Response::Data(
      json::object{{"issuing_certificates", ToArray(u.issuing_certificates)},
                   {"crl_distribution_points", ToArray(u.crl_distribution_points)},
                   {"ocsp_servers", ToArray(u.ocsp_servers)},
                   {"enable_templating", false}});
}

absl::StatusOr<Response> PkiBackend::WriteConfigUrls(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(UrlConfig u, LoadUrls(req.storage));
  auto set = [&](std::string_view key, std::vector<std::string>* dst) -> absl::Status {
    ASSIGN_OR_RETURN(auto v, List(d, key));
    if (!v) return absl::OkStatus();
    for (const auto& url : *v) {
      size_t colon = url.find("://");
      if (colon == std::string::npos || colon == 0 || url.size() <= colon + 3)
        return absl::InvalidArgumentError(
            Cat(key, ": \"", url, "\" is not a URL (expected scheme://host/path)"));
      for (unsigned char c : url)
        if (c <= 0x20 || c >= 0x7f)
          return absl::InvalidArgumentError(
              Cat(key, ": \"", url, "\" has spaces or non-ASCII characters"));
    }
    *dst = *v;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(set("issuing_certificates", &u.issuing_certificates));
  RETURN_IF_ERROR(set("crl_distribution_points", &u.crl_distribution_points));
  RETURN_IF_ERROR(set("ocsp_servers", &u.ocsp_servers));
  // A malformed enable_templating is ignored, as it always was; true is refused.
  if (auto et = JsonBool(req.data, "enable_templating"); et.ok() && et->value_or(false))
    return absl::InvalidArgumentError("enable_templating is not supported by Coffer");
  RETURN_IF_ERROR(req.storage->Put(
      "config/urls",
      json::serialize(json::object{{"issuing_certificates", ToArray(u.issuing_certificates)},
                                   {"crl_distribution_points", ToArray(u.crl_distribution_points)},
                                   {"ocsp_servers", ToArray(u.ocsp_servers)}})));
  InvalidateUrls();
  return Response::Empty();
}

}  // namespace coffer::engines::pki
