// PKI engine: revocation — revoke and revoke-with-key. A revoked certificate is recorded under
// revoked/<serial> and in its issuer's revocation index, which the issuer's CRL is built from
// (paths_crl.cc).
#include "crypto/crypto.h"
#include "engines/pki/pki_internal.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Handler;

std::vector<PkiPath> PkiBackend::RevokePaths(PkiBackend* b) {
  Handler revoke = [b](Request& r, const FieldData& d) {
    return b->Revoke(r, d, /*with_key=*/false);
  };
  Handler revoke_with_key = [b](Request& r, const FieldData& d) {
    return b->Revoke(r, d, /*with_key=*/true);
  };
  std::map<std::string, FieldSchema> fields{
      {"serial_number",
       StringField("Serial number of the certificate to revoke (colon or hyphen form).")},
      {"certificate", StringField("The certificate to revoke (PEM), instead of serial_number; "
                                  "how certificates issued by no_store roles are revoked.")}};

  std::vector<PkiPath> paths;
  paths.push_back({.path = {.patterns = {"revoke"},
                            .fields = fields,
                            .operations = Ops({{kUpdate, revoke, "Revokes a certificate."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Revokes a certificate and rebuilds its issuer's CRL."}});
  fields["private_key"] =
      SecretField("The certificate's private key (PEM), proving possession. Required.");
  paths.push_back({.path = {.patterns = {"revoke-with-key"},
                            .fields = fields,
                            .operations = Ops({{kUpdate, revoke_with_key,
                                                "Revokes a certificate, given its private key."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Revokes a certificate on proof of its private key."}});
  return paths;
}

absl::StatusOr<Response> PkiBackend::Revoke(Request& req, const FieldData& d, bool with_key) {
  std::string serial_in = Str(d, "serial_number");
  std::string cert_pem = Str(d, "certificate");
  if (serial_in.empty() == cert_pem.empty())
    return absl::InvalidArgumentError("give exactly one of serial_number or certificate to revoke");
  crypto::Cert cert;
  std::string issuer_id;
  std::string hyphen;
  if (!serial_in.empty()) {
    ASSIGN_OR_RETURN(std::string bytes, crypto::ParseSerial(serial_in));
    hyphen = HyphenSerial(crypto::SerialColonFromBytes(bytes));
  } else {
    ASSIGN_OR_RETURN(cert, crypto::ParseCertPem(cert_pem));
    hyphen = HyphenSerial(crypto::SerialColon(cert.get()));
  }
  ASSIGN_OR_RETURN(auto issuers, AllIssuers(req.storage));
  for (const auto& is : issuers)
    if (HyphenSerial(is->serial) == hyphen)
      return absl::InvalidArgumentError(
          Cat("adding issuer (id: ", is->id,
              ") to its own CRL is not allowed; delete the issuer or revoke it from its parent "
              "mount"));
  ASSIGN_OR_RETURN(auto rec, GetJson(req.storage, "certs/" + hyphen));
  if (rec) {
    ASSIGN_OR_RETURN(crypto::Cert stored, CertFromRecord(*rec));
    if (cert && crypto::CertDer(cert.get()) != crypto::CertDer(stored.get()))
      return absl::InvalidArgumentError(
          "the certificate given differs from the one stored under its serial number");
    cert = std::move(stored);
    issuer_id = GetString(*rec, "issuer_id");
  } else if (cert) {
    // A certificate issued with no_store: accepted when one of the mount's issuers signed it.
    for (const auto& is : issuers)
      if (crypto::IssuedBy(cert.get(), is->cert.get())) issuer_id = is->id;
    if (issuer_id.empty())
      return absl::InvalidArgumentError(
          "the certificate was not issued by any issuer of this mount");
  } else {
    return absl::InvalidArgumentError(
        Cat("certificate with serial ", serial_in,
            " not found (certificates issued by no_store roles can be revoked by giving the "
            "certificate itself)"));
  }
  if (with_key) {
    std::string key_pem = Str(d, "private_key");
    if (key_pem.empty()) return absl::InvalidArgumentError("the private_key field is required");
    auto key = crypto::ParsePrivateKeyPem(key_pem);
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    if (!key.ok()) return key.status();
    if (!crypto::SameKey(key->get(), X509_get0_pubkey(cert.get())))
      return absl::InvalidArgumentError(
          "failed to verify that the private key matches the certificate");
  }
  ASSIGN_OR_RETURN(auto existing, GetJson(req.storage, "revoked/" + hyphen));
  if (existing) {
    int64_t t = GetInt(*existing, "revocation_time");
    return Response::Data(json::object{
        {"revocation_time", t}, {"revocation_time_rfc3339", Rfc3339(t)}, {"state", "revoked"}});
  }
  const int64_t now = Now();
  if (crypto::NotAfterUnix(cert.get()) < now) {
    Response r;
    r.warnings.emplace_back("the certificate has already expired; it was not added to the CRL");
    return r;
  }
  json::object revoked{{"der", Base64Encode(crypto::CertDer(cert.get()))},
                       {"issuer_id", issuer_id},
                       {"revocation_time", now},
                       {"not_after", crypto::NotAfterUnix(cert.get())}};
  RETURN_IF_ERROR(req.storage->Write(
      {{storage::WriteOp::Kind::kPut, "revoked/" + hyphen, json::serialize(revoked)},
       {storage::WriteOp::Kind::kPut, Cat("crl-index/", issuer_id, "/", IndexName(hyphen, now)),
        ""}}));
  ASSIGN_OR_RETURN(CrlConfig cfg, LoadCrlConfig(req.storage));
  std::vector<std::string> warnings;
  if (cfg.auto_rebuild) {
    RETURN_IF_ERROR(req.storage->Delete("crls/" + issuer_id));  // rebuilt on next read
  } else {
    auto is = ResolveIssuer(req.storage, issuer_id);
    if (is.ok() && (*is)->key) {
      RETURN_IF_ERROR(RebuildCrl(req.storage, **is));
    } else {
      warnings.emplace_back("the issuer's key is not in this mount: its CRL was not rebuilt");
    }
  }
  Response r = Response::Data(json::object{
      {"revocation_time", now}, {"revocation_time_rfc3339", Rfc3339(now)}, {"state", "revoked"}});
  r.warnings = std::move(warnings);
  return r;
}

absl::Status PkiBackend::RevokeLease(Request& req, const json::object& internal) {
  const auto* serial = internal.if_contains("serial_number");
  if (!serial || !serial->is_string())
    return absl::DataLossError("the lease holds no certificate serial number");
  const std::map<std::string, core::framework::FieldSchema> schema{
      {"serial_number", {core::framework::FieldType::kString}},
      {"certificate", {core::framework::FieldType::kString}}};
  // A no_store certificate is revoked by the certificate itself (the lease holds it).
  json::object given{{"serial_number", *serial}};
  if (const auto* pem = internal.if_contains("certificate"); pem && pem->is_string())
    given = json::object{{"certificate", *pem}};
  ASSIGN_OR_RETURN(auto d, core::framework::FieldData::Parse(schema, given, {}));
  return Revoke(req, d, false).status();
}

}  // namespace coffer::engines::pki
