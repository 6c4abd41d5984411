// PKI engine: CRLs — crl, crl/pem, crl/rotate, issuer/:ref/crl(/der|/pem) and config/crl. Each
// issuer has its own CRL, built from its revocation index (crl-index/<issuer>/) alone and kept
// under crls/<issuer> until it expires or a revocation rebuilds it.
#include <charconv>

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

json::object CrlConfig::ToJson() const {
  return json::object{{"expiry", Cat(expiry / 3600, "h")},
                      {"disable", disable},
                      {"ocsp_disable", ocsp_disable},
                      {"auto_rebuild", auto_rebuild},
                      {"auto_rebuild_grace_period", Cat(auto_rebuild_grace_period / 3600, "h")},
                      {"enable_delta", false},
                      {"delta_rebuild_interval", "15m"},
                      {"ocsp_expiry", "12h"},
                      {"cross_cluster_revocation", false},
                      {"unified_crl", false},
                      {"unified_crl_on_existing_paths", false}};
}

std::vector<PkiPath> PkiBackend::CrlPaths(PkiBackend* b) {
  Handler read_crl_der = [b](Request& r, const FieldData&) {
    return b->CrlPath(r, "default", "der");
  };
  Handler read_crl_pem = [b](Request& r, const FieldData&) {
    return b->CrlPath(r, "default", "pem");
  };
  Handler rotate_crl = [b](Request& r, const FieldData&) { return b->RotateCrl(r); };
  Handler read_config = [b](Request& r, const FieldData&) { return b->ReadConfigCrl(r); };
  Handler write_config = [b](Request& r, const FieldData& d) { return b->WriteConfigCrl(r, d); };
  Handler read_issuer_crl_json = [b](Request& r, const FieldData& d) -> absl::StatusOr<Response> {
    // Vault's JSON form: {"crl": PEM}.
    ASSIGN_OR_RETURN(auto crl, b->CrlPath(r, d.String("ref"), "pem"));
    return Response::Data(json::object{{"crl", crl.raw_body}});
  };
  Handler read_issuer_crl = [b](Request& r, const FieldData& d) {
    return b->CrlPath(r, d.String("ref"), d.String("format"));
  };
  // Under issuer/<ref>/, a missing operation resolves the issuer, then answers 404.
  Handler not_found = [b](Request& r, const FieldData& d) {
    return b->IssuerSubpathNotFound(r, d.String("ref"));
  };
  const FieldSchema ref{FieldType::kString,
                        "Reference of the issuer: its id, its name or \"default\"."};

  std::vector<PkiPath> paths;
  paths.push_back(
      {.path = {.patterns = {"crl"},
                .operations = Ops({{kRead, read_crl_der, "Reads the default issuer's CRL (DER)."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer's CRL, without authentication."}});
  paths.push_back(
      {.path = {.patterns = {"crl/pem"},
                .operations = Ops({{kRead, read_crl_pem, "Reads the default issuer's CRL (PEM)."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer's CRL, without authentication."}});
  paths.push_back({.path = {.patterns = {"crl/rotate"},
                            .operations = Ops({{kRead, rotate_crl,
                                                "Rebuilds the CRL of every issuer whose key the "
                                                "mount holds."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "Rebuilds the CRLs now."}});
  paths.push_back(
      {.path = {
           .patterns = {"config/crl"},
           .fields = {{"expiry",
                       DurationField("How long a CRL is valid (at least one minute).", "72h")},
                      {"disable", BoolField("Whether CRLs are published empty.", false)},
                      {"auto_rebuild",
                       BoolField("Whether a revocation only marks the CRL stale, to be "
                                 "rebuilt when it is next read, rather than rebuilding it at "
                                 "once.",
                                 false)},
                      {"auto_rebuild_grace_period",
                       DurationField("Accepted and stored; Coffer rebuilds an expired CRL "
                                     "when it is read.",
                                     "12h")},
                      {"ocsp_disable",
                       BoolField("Accepted and stored; Coffer has no OCSP responder yet.", false)},
                      {"enable_delta",
                       BoolField("Delta CRLs; not supported by Coffer (true is refused).", false)}},
           .operations =
               Ops({{kRead, read_config, "Reads the CRL configuration."},
                    {kUpdate, write_config, "Changes the fields given; the CRLs are rebuilt."}}),
           .unsupported = "",
           .synopsis = "How CRLs are built."}});
  paths.push_back({.path = {.patterns = {"issuer/{ref}/crl"},
                            .fields = {{"ref", ref}},
                            .operations = Ops({{kRead, read_issuer_crl_json,
                                                "Reads the issuer's CRL (PEM, in JSON)."}}),
                            .synopsis = "The issuer's CRL, without authentication."},
                   .missing_op = not_found});
  paths.push_back(
      {.path = {.patterns = {"issuer/{ref}/crl/{format:der|pem}"},
                .fields = {{"ref", ref}, {"format", {FieldType::kString, "der or pem."}}},
                .operations = Ops({{kRead, read_issuer_crl, "Reads the issuer's CRL."}}),
                .synopsis = "The issuer's CRL, without authentication."},
       .missing_op = not_found});
  return paths;
}

absl::Status PkiBackend::RebuildCrl(storage::Storage* s, const Issuer& issuer) {
  if (!issuer.key) return absl::InvalidArgumentError("the issuer has no key to sign a CRL");
  MutexLock lock(&crl_mu_);
  ASSIGN_OR_RETURN(CrlConfig cfg, LoadCrlConfig(s));
  ASSIGN_OR_RETURN(auto prev, GetJson(s, "crls/" + issuer.id));
  const int64_t number = prev ? GetInt(*prev, "number") + 1 : 1;
  std::vector<crypto::RevokedSerial> revoked;
  if (!cfg.disable) {
    const std::string prefix = Cat("crl-index/", issuer.id, "/");
    std::string after;
    for (;;) {
      ASSIGN_OR_RETURN(auto names, s->List(prefix, after, kPage));
      for (const auto& n : names) {
        size_t us = n.rfind('_');
        if (us == std::string::npos) continue;
        auto bytes = crypto::ParseSerial(std::string_view(n).substr(0, us));
        int64_t t = 0;
        std::from_chars(n.data() + us + 1, n.data() + n.size(), t);
        if (bytes.ok()) revoked.push_back({*bytes, t});
      }
      if (names.size() < kPage) break;
      after = names.back();
    }
  }
  const int64_t now = Now();
  ASSIGN_OR_RETURN(crypto::Crl crl, crypto::SignCrl(issuer.cert.get(), issuer.key->key.get(),
                                                    number, now, now + cfg.expiry, revoked));
  json::object rec{{"der", Base64Encode(crypto::CrlDer(crl.get()))},
                   {"number", number},
                   {"this_update", now},
                   {"next_update", now + cfg.expiry}};
  return s->Put("crls/" + issuer.id, json::serialize(rec));
}

absl::StatusOr<Response> PkiBackend::CrlPath(Request& req, std::string_view issuer_ref,
                                             std::string_view form) {
  ASSIGN_OR_RETURN(auto issuer, ResolveIssuer(req.storage, issuer_ref));
  ASSIGN_OR_RETURN(auto rec, GetJson(req.storage, "crls/" + issuer->id));
  if (!rec || GetInt(*rec, "next_update") <= Now()) {
    RETURN_IF_ERROR(RebuildCrl(req.storage, *issuer));
    ASSIGN_OR_RETURN(rec, GetJson(req.storage, "crls/" + issuer->id));
  }
  auto der = Base64Decode(GetString(*rec, "der"));
  if (!der) return absl::DataLossError("stored CRL is not base64");
  if (form == "der") return RawBody(*der, "application/pkix-crl");
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  crypto::Crl crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
  if (!crl) return absl::DataLossError("stored CRL is not valid DER");
  return RawBody(crypto::CrlPem(crl.get()) + "\n", "application/x-pem-file");
}

absl::StatusOr<Response> PkiBackend::RotateCrl(Request& req) {
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  for (const auto& is : all)
    if (is->key) RETURN_IF_ERROR(RebuildCrl(req.storage, *is));
  return Response::Data(json::object{{"success", true}});
}

absl::StatusOr<Response> PkiBackend::ReadConfigCrl(Request& req) {
  ASSIGN_OR_RETURN(CrlConfig c, LoadCrlConfig(req.storage));
  return Response::Data(c.ToJson());
}

absl::StatusOr<Response> PkiBackend::WriteConfigCrl(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(CrlConfig c, LoadCrlConfig(req.storage));
  if (d.Has("expiry")) {
    const int64_t e = d.Duration("expiry");
    if (e < 60) return absl::InvalidArgumentError("expiry must be at least one minute");
    c.expiry = e;
  }
  if (d.Has("disable")) c.disable = d.Bool("disable");
  if (d.Has("auto_rebuild")) c.auto_rebuild = d.Bool("auto_rebuild");
  if (d.Has("auto_rebuild_grace_period"))
    c.auto_rebuild_grace_period = d.Duration("auto_rebuild_grace_period");
  if (d.Has("ocsp_disable")) c.ocsp_disable = d.Bool("ocsp_disable");
  if (d.Bool("enable_delta"))
    return absl::InvalidArgumentError("delta CRLs are not supported by Coffer");
  json::object stored{{"expiry", c.expiry},
                      {"disable", c.disable},
                      {"auto_rebuild", c.auto_rebuild},
                      {"auto_rebuild_grace_period", c.auto_rebuild_grace_period},
                      {"ocsp_disable", c.ocsp_disable}};
  RETURN_IF_ERROR(req.storage->Put("config/crl", json::serialize(stored)));
  InvalidateCrlConfig();
  // The published CRLs follow the new settings at once.
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  for (const auto& is : all)
    if (is->key) RETURN_IF_ERROR(RebuildCrl(req.storage, *is));
  return Response::Data(c.ToJson());
}

}  // namespace coffer::engines::pki
