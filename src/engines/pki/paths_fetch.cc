// PKI engine: reading CA certificates and issued certificates — ca, ca/pem, ca_chain, cert/ca,
// cert/ca_chain, cert/crl, cert/:serial (and its raw DER and PEM forms), certs and certs/revoked
// (paged through storage).
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

std::vector<PkiPath> PkiBackend::FetchPaths(PkiBackend* b) {
  Handler ca_der = [b](Request& r, const FieldData&) { return b->CaCert(r, "der"); };
  Handler ca_pem = [b](Request& r, const FieldData&) { return b->CaCert(r, "pem"); };
  Handler ca_chain = [b](Request& r, const FieldData&) { return b->CaChain(r); };
  Handler ca_as_cert = [b](Request& r, const FieldData&) { return b->ReadCaAsCert(r); };
  Handler chain_as_cert = [b](Request& r, const FieldData&) { return b->ReadCaChainAsCert(r); };
  Handler crl_as_cert = [b](Request& r, const FieldData&) { return b->ReadCrlAsCert(r); };
  Handler cert_der = [b](Request& r, const FieldData& d) {
    return b->ReadCert(r, d.String("serial"), "der");
  };
  Handler cert_pem = [b](Request& r, const FieldData& d) {
    return b->ReadCert(r, d.String("serial"), "pem");
  };
  // The rest of the path is the serial number, with /raw or /raw/pem at its end as the engine
  // has always read it (so "cert/a/b" is refused as a serial number, not as a path).
  Handler cert = [b](Request& r, const FieldData& d) {
    const std::string rest = d.String("serial");
    std::string_view serial = rest;
    std::string_view form;
    if (serial.ends_with("/raw/pem")) {
      form = "pem";
      serial.remove_suffix(8);
    } else if (serial.ends_with("/raw")) {
      form = "der";
      serial.remove_suffix(4);
    }
    return b->ReadCert(r, serial, form);
  };
  Handler list_certs = [b](Request& r, const FieldData&) { return b->ListCerts(r, "certs/"); };
  Handler list_revoked = [b](Request& r, const FieldData&) { return b->ListCerts(r, "revoked/"); };

  const FieldSchema serial{FieldType::kString,
                           "Serial number of the certificate, colon or hyphen form."};
  // Read as they always were: the query string first, then the body (a string or a number).
  std::map<std::string, FieldSchema> page{
      {"after", StringField("List the serial numbers after this one (a page's last key).")},
      {"limit", {FieldType::kAny, "(int) At most this many serial numbers."}}};
  auto certs_fields = page;
  certs_fields["key_info"] =
      FieldSchema{FieldType::kAny,
                  "(bool) Coffer extension: \"true\" adds each certificate's common name, "
                  "expiration and issuer (needs a limit of at most 1000)."};

  std::vector<PkiPath> paths;
  paths.push_back({.path = {.patterns = {"ca"},
                            .operations = Ops({{kRead, ca_der,
                                                "Reads the default issuer's certificate "
                                                "(DER)."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The default issuer's certificate, without "
                                        "authentication."}});
  paths.push_back({.path = {.patterns = {"ca/pem"},
                            .operations = Ops({{kRead, ca_pem,
                                                "Reads the default issuer's certificate "
                                                "(PEM)."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The default issuer's certificate, without "
                                        "authentication."}});
  paths.push_back(
      {.path = {.patterns = {"ca_chain"},
                .operations = Ops({{kRead, ca_chain, "Reads the default issuer's chain (PEM)."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer and its parents, without "
                            "authentication."}});
  // The literal cert/ paths come before cert/{serial...}, which would match them too.
  paths.push_back(
      {.path = {.patterns = {"cert/ca"},
                .operations = Ops({{kRead, ca_as_cert, "Reads the default issuer's certificate."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer's certificate, as cert/:serial "
                            "answers."}});
  paths.push_back(
      {.path = {.patterns = {"cert/ca_chain"},
                .operations = Ops({{kRead, chain_as_cert, "Reads the default issuer's chain."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer's chain, as cert/:serial answers."}});
  paths.push_back(
      {.path = {.patterns = {"cert/crl"},
                .operations = Ops({{kRead, crl_as_cert, "Reads the default issuer's CRL."}}),
                .unsupported = kUnsupported,
                .synopsis = "The default issuer's CRL, as cert/:serial answers."}});
  paths.push_back({.path = {.patterns = {"cert/{serial}/raw"},
                            .fields = {{"serial", serial}},
                            .operations = Ops({{kRead, cert_der, "Reads the certificate (DER)."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "An issued certificate (DER), without authentication."}});
  paths.push_back({.path = {.patterns = {"cert/{serial}/raw/pem"},
                            .fields = {{"serial", serial}},
                            .operations = Ops({{kRead, cert_pem, "Reads the certificate (PEM)."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "An issued certificate (PEM), without authentication."}});
  paths.push_back({.path = {.patterns = {"cert/{serial*}"},
                            .fields = {{"serial", serial}},
                            .operations = Ops({{kRead, cert,
                                                "Reads the certificate and its revocation "
                                                "time."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "An issued certificate, without authentication."}});
  paths.push_back({.path = {.patterns = {"certs"},
                            .fields = certs_fields,
                            .operations = Ops({{kList, list_certs,
                                                "Lists the serial numbers of the stored "
                                                "certificates, in order."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The stored certificates, paged (after, limit)."}});
  paths.push_back({.path = {.patterns = {"certs/revoked"},
                            .fields = page,
                            .operations = Ops({{kList, list_revoked,
                                                "Lists the serial numbers of the revoked "
                                                "certificates, in order."}}),
                            .unsupported = kUnsupported,
                            .synopsis = "The revoked certificates, paged (after, limit)."}});
  return paths;
}

absl::StatusOr<Response> PkiBackend::CaCert(Request& req, std::string_view form) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  if (form == "der") return RawBody(crypto::CertDer(is->cert.get()), "application/pkix-cert");
  return RawBody(is->cert_pem + "\n", "application/pem-certificate-chain");
}

absl::StatusOr<Response> PkiBackend::CaChain(Request& req) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  std::string body;
  for (const auto& c : is->chain_pem) body += c + "\n";
  return RawBody(std::move(body), "application/pem-certificate-chain");
}

absl::StatusOr<Response> PkiBackend::ReadCaAsCert(Request& req) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  return Response::Data(json::object{{"certificate", is->cert_pem},
                                     {"revocation_time", 0},
                                     {"revocation_time_rfc3339", ""},
                                     {"issuer_id", is->id}});
}

absl::StatusOr<Response> PkiBackend::ReadCaChainAsCert(Request& req) {
  ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
  std::string chain;
  for (const auto& c : is->chain_pem) chain += (chain.empty() ? "" : "\n") + c;
  return Response::Data(json::object{{"certificate", chain},
                                     {"ca_chain", ToArray(is->chain_pem)},
                                     {"revocation_time", 0},
                                     {"revocation_time_rfc3339", ""}});
}

absl::StatusOr<Response> PkiBackend::ReadCrlAsCert(Request& req) {
  ASSIGN_OR_RETURN(auto r, CrlPath(req, "default", "pem"));
  std::string pem = r.raw_body;
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return Response::Data(
      json::object{{"certificate", pem}, {"revocation_time", 0}, {"revocation_time_rfc3339", ""}});
}

absl::StatusOr<Response> PkiBackend::ReadCert(Request& req, std::string_view serial,
                                              std::string_view form) {
  ASSIGN_OR_RETURN(std::string bytes, crypto::ParseSerial(serial));
  const std::string hyphen = HyphenSerial(crypto::SerialColonFromBytes(bytes));
  crypto::Cert cert;
  std::string issuer_id;
  ASSIGN_OR_RETURN(auto rec, GetJson(req.storage, "certs/" + hyphen));
  if (!rec) {
    ASSIGN_OR_RETURN(rec, GetJson(req.storage, "revoked/" + hyphen));
  }
  if (rec) {
    ASSIGN_OR_RETURN(cert, CertFromRecord(*rec));
    issuer_id = GetString(*rec, "issuer_id");
  } else {
    ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
    for (const auto& is : all)
      if (HyphenSerial(is->serial) == hyphen) {
        ASSIGN_OR_RETURN(cert, crypto::ParseCertPem(is->cert_pem));
        issuer_id = is->id;
      }
  }
  if (!cert) return absl::NotFoundError(Cat("certificate with serial ", serial, " not found"));
  if (form == "der") return RawBody(crypto::CertDer(cert.get()), "application/pkix-cert");
  if (form == "pem")
    return RawBody(crypto::CertPem(cert.get()) + "\n", "application/pem-certificate-chain");
  ASSIGN_OR_RETURN(auto rv, GetJson(req.storage, "revoked/" + hyphen));
  int64_t rt = rv ? GetInt(*rv, "revocation_time") : 0;
  return Response::Data(json::object{{"certificate", crypto::CertPem(cert.get())},
                                     {"revocation_time", rt},
                                     {"revocation_time_rfc3339", rt ? Rfc3339(rt) : ""},
                                     {"issuer_id", issuer_id}});
}

absl::StatusOr<Response> PkiBackend::ListCerts(Request& req, std::string_view prefix) {
  std::string after;
  size_t limit = 0;
  auto param = [&](std::string_view k) -> std::string {
    if (auto q = req.QueryParam(k)) return *q;
    const json::value* v = req.data.if_contains(k);
    if (v && v->is_string()) return std::string(v->as_string());
    if (v && v->is_int64()) return std::to_string(v->as_int64());
    return {};
  };
  if (std::string a = param("after"); !a.empty()) {
    ASSIGN_OR_RETURN(std::string bytes, crypto::ParseSerial(a));
    after = HyphenSerial(crypto::SerialColonFromBytes(bytes));
  }
  if (std::string l = param("limit"); !l.empty()) {
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(l.data(), l.data() + l.size(), n);
    if (ec != std::errc() || ptr != l.data() + l.size() || n <= 0)
      return absl::InvalidArgumentError(Cat("limit \"", l, "\" must be a positive integer"));
    limit = static_cast<size_t>(n);
  }
  ASSIGN_OR_RETURN(auto keys, req.storage->List(prefix, after, limit));
  if (keys.empty()) return absl::NotFoundError("");
  json::object data{{"keys", ToArray(keys)}};
  // Coffer extension (docs/compatibility.md): key_info=true adds each stored certificate's
  // common name, expiry and issuer, so a page of 1,000 is one request (`coffer cluster status`).
  std::string ki = param("key_info");
  if (prefix == "certs/" && (ki == "true" || ki == "1")) {
    if (limit == 0 || limit > 1000)
      return absl::InvalidArgumentError("key_info=true needs a limit of at most 1000");
    json::object info;
    for (const auto& k : keys) {
      ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("certs/", k)));
      if (!raw) continue;
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (ec || !v.is_object()) continue;
      const auto& o = v.as_object();
      json::object e;
      if (auto* na = o.if_contains("not_after"); na && na->is_int64())
        e["expiration"] = na->as_int64();
      if (auto* iss = o.if_contains("issuer_id"); iss && iss->is_string())
        e["issuer_id"] = iss->as_string();
      if (auto* der = o.if_contains("der"); der && der->is_string()) {
        auto bytes = Base64Decode(std::string_view(der->as_string()));
        if (bytes) {
          auto cert = crypto::ParseCertDer(*bytes);
          if (cert.ok()) e["common_name"] = crypto::CommonName(X509_get_subject_name(cert->get()));
        }
      }
      info[k] = std::move(e);
    }
    data["key_info"] = std::move(info);
  }
  return Response::Data(std::move(data));
}

}  // namespace coffer::engines::pki
