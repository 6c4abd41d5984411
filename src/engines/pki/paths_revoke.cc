// PKI engine: revocation and the certificate store — revoke, revoke-with-key, CRLs (per issuer,
// built from the revoked index only), cert/:serial, certs and certs/revoked (paged), config/crl,
// tidy (background, in pages) and tidy-status.
#include <charconv>
#include <functional>
#include <set>

#include "absl/strings/match.h"
#include "crypto/crypto.h"
#include "engines/pki/pki_internal.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;

namespace {

constexpr size_t kPage = 1000;

int64_t GetInt(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

absl::StatusOr<crypto::Cert> CertFromRecord(const json::object& rec) {
  auto der = Base64Decode(GetString(rec, "der"));
  if (!der) return absl::DataLossError("stored certificate is not base64");
  return crypto::ParseCertDer(*der);
}

// The index entry name: "<hyphen serial>_<revocation unix time>", so the CRL is built from
// listing alone.
std::string IndexName(const std::string& hyphen, int64_t t) { return Cat(hyphen, "_", t); }

}  // namespace

absl::StatusOr<Response> PkiBackend::Revoke(Request& req, bool with_key) {
  std::string serial_in = GetString(req.data, "serial_number");
  std::string cert_pem = GetString(req.data, "certificate");
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
    std::string key_pem = GetString(req.data, "private_key");
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
    r.warnings.push_back("the certificate has already expired; it was not added to the CRL");
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
      warnings.push_back("the issuer's key is not in this mount: its CRL was not rebuilt");
    }
  }
  Response r = Response::Data(json::object{
      {"revocation_time", now}, {"revocation_time_rfc3339", Rfc3339(now)}, {"state", "revoked"}});
  r.warnings = std::move(warnings);
  return r;
}

absl::Status PkiBackend::RebuildCrl(storage::Storage* s, const Issuer& issuer) {
  if (!issuer.key) return absl::InvalidArgumentError("the issuer has no key to sign a CRL");
  std::lock_guard lock(crl_mu_);
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

absl::StatusOr<Response> PkiBackend::ConfigCrl(Request& req) {
  if (req.op == Operation::kRead) {
    ASSIGN_OR_RETURN(CrlConfig c, LoadCrlConfig(req.storage));
    return Response::Data(c.ToJson());
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  ASSIGN_OR_RETURN(CrlConfig c, LoadCrlConfig(req.storage));
  ASSIGN_OR_RETURN(auto e, DurationField(req.data, "expiry"));
  if (e) {
    if (*e < 60) return absl::InvalidArgumentError("expiry must be at least one minute");
    c.expiry = *e;
  }
  ASSIGN_OR_RETURN(auto d, JsonBool(req.data, "disable"));
  if (d) c.disable = *d;
  ASSIGN_OR_RETURN(auto a, JsonBool(req.data, "auto_rebuild"));
  if (a) c.auto_rebuild = *a;
  ASSIGN_OR_RETURN(auto g, DurationField(req.data, "auto_rebuild_grace_period"));
  if (g) c.auto_rebuild_grace_period = *g;
  ASSIGN_OR_RETURN(auto od, JsonBool(req.data, "ocsp_disable"));
  if (od) c.ocsp_disable = *od;
  ASSIGN_OR_RETURN(auto delta, JsonBool(req.data, "enable_delta"));
  if (delta.value_or(false))
    return absl::InvalidArgumentError("delta CRLs are not supported by Coffer");
  json::object stored{{"expiry", c.expiry},
                      {"disable", c.disable},
                      {"auto_rebuild", c.auto_rebuild},
                      {"auto_rebuild_grace_period", c.auto_rebuild_grace_period},
                      {"ocsp_disable", c.ocsp_disable}};
  RETURN_IF_ERROR(req.storage->Put("config/crl", json::serialize(stored)));
  {
    std::unique_lock lock(mu_);
    crl_config_.reset();
  }
  // The published CRLs follow the new settings at once.
  ASSIGN_OR_RETURN(auto all, AllIssuers(req.storage));
  for (const auto& is : all)
    if (is->key) RETURN_IF_ERROR(RebuildCrl(req.storage, *is));
  return Response::Data(c.ToJson());
}

absl::StatusOr<Response> PkiBackend::ReadCert(Request& req, std::string_view rest) {
  if (rest == "ca" || rest == "ca_chain") {
    ASSIGN_OR_RETURN(auto is, ResolveIssuer(req.storage, "default"));
    if (rest == "ca")
      return Response::Data(json::object{{"certificate", is->cert_pem},
                                         {"revocation_time", 0},
                                         {"revocation_time_rfc3339", ""},
                                         {"issuer_id", is->id}});
    std::string chain;
    for (const auto& c : is->chain_pem) chain += (chain.empty() ? "" : "\n") + c;
    return Response::Data(json::object{{"certificate", chain},
                                       {"ca_chain", ToArray(is->chain_pem)},
                                       {"revocation_time", 0},
                                       {"revocation_time_rfc3339", ""}});
  }
  if (rest == "crl") {
    ASSIGN_OR_RETURN(auto r, CrlPath(req, "default", "pem"));
    std::string pem = r.raw_body;
    while (!pem.empty() && pem.back() == '\n') pem.pop_back();
    return Response::Data(json::object{
        {"certificate", pem}, {"revocation_time", 0}, {"revocation_time_rfc3339", ""}});
  }
  std::string_view serial = rest;
  std::string_view form;
  if (EndsWith(serial, "/raw/pem")) {
    form = "pem";
    serial.remove_suffix(8);
  } else if (EndsWith(serial, "/raw")) {
    form = "der";
    serial.remove_suffix(4);
  }
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

absl::StatusOr<Response> PkiBackend::Tidy(Request& req) {
  TidyStatus p;
  ASSIGN_OR_RETURN(auto a, JsonBool(req.data, "tidy_cert_store"));
  ASSIGN_OR_RETURN(auto b, JsonBool(req.data, "tidy_revoked_certs"));
  ASSIGN_OR_RETURN(auto c, JsonBool(req.data, "tidy_revoked_cert_issuer_associations"));
  ASSIGN_OR_RETURN(auto sb, DurationField(req.data, "safety_buffer"));
  p.tidy_cert_store = a.value_or(false);
  p.tidy_revoked_certs = b.value_or(false) || c.value_or(false);
  p.safety_buffer = sb.value_or(72 * 3600);
  if (p.safety_buffer < 1) return absl::InvalidArgumentError("safety_buffer must be positive");
  if (!p.tidy_cert_store && !p.tidy_revoked_certs)
    return absl::InvalidArgumentError(
        "tidy has nothing to do: set tidy_cert_store and/or tidy_revoked_certs to true");
  std::lock_guard lock(tidy_mu_);
  Response r;
  r.http_status = 202;
  if (tidy_status_.state == "Running") {
    r.http_status = 200;
    r.warnings.push_back("Tidy operation already in progress.");
    return r;
  }
  if (tidy_thread_.joinable()) tidy_thread_.join();
  p.state = "Running";
  p.time_started = Now();
  tidy_status_ = p;
  storage::Storage* s = req.storage;
  tidy_thread_ = std::thread([this, s, p] { RunTidy(s, p); });
  r.warnings.push_back(
      "Tidy operation successfully started. Any information from the operation will be printed "
      "to Coffer's server logs.");
  return r;
}

void PkiBackend::RunTidy(storage::Storage* s, TidyStatus p) {
  int64_t certs_deleted = 0, revoked_deleted = 0;
  std::set<std::string> touched_issuers;
  auto finish = [&](const absl::Status& st) {
    std::lock_guard lock(tidy_mu_);
    tidy_status_.cert_store_deleted_count = certs_deleted;
    tidy_status_.revoked_cert_deleted_count = revoked_deleted;
    tidy_status_.time_finished = Now();
    tidy_status_.state = st.ok() ? "Finished" : stopping_ ? "Cancelled" : "Error";
    tidy_status_.error = st.ok() ? "" : Msg(st);
    tidy_status_.message = st.ok() ? "Tidying finished" : "Tidying stopped";
  };
  auto progress = [&] {
    std::lock_guard lock(tidy_mu_);
    tidy_status_.cert_store_deleted_count = certs_deleted;
    tidy_status_.revoked_cert_deleted_count = revoked_deleted;
  };
  auto run = [&]() -> absl::Status {
    const int64_t cutoff = Now() - p.safety_buffer;
    auto walk = [&](const std::string& prefix,
                    const std::function<absl::Status(const std::string&)>& fn) -> absl::Status {
      std::string after;
      for (;;) {
        if (stopping_) return absl::CancelledError("the mount is shutting down");
        ASSIGN_OR_RETURN(auto names, s->List(prefix, after, kPage));
        for (const auto& n : names) RETURN_IF_ERROR(fn(n));
        progress();
        if (names.size() < kPage) return absl::OkStatus();
        after = names.back();
      }
    };
    if (p.tidy_cert_store) {
      RETURN_IF_ERROR(walk("certs/", [&](const std::string& n) -> absl::Status {
        ASSIGN_OR_RETURN(auto rec, GetJson(s, "certs/" + n));
        if (rec && GetInt(*rec, "not_after") < cutoff) {
          RETURN_IF_ERROR(s->Delete("certs/" + n));
          ++certs_deleted;
        }
        return absl::OkStatus();
      }));
    }
    if (p.tidy_revoked_certs) {
      RETURN_IF_ERROR(walk("revoked/", [&](const std::string& n) -> absl::Status {
        ASSIGN_OR_RETURN(auto rec, GetJson(s, "revoked/" + n));
        if (rec && GetInt(*rec, "not_after") < cutoff) {
          std::string issuer = GetString(*rec, "issuer_id");
          RETURN_IF_ERROR(s->Write(
              {{storage::WriteOp::Kind::kDelete, "revoked/" + n, ""},
               {storage::WriteOp::Kind::kDelete, "certs/" + n, ""},
               {storage::WriteOp::Kind::kDelete,
                Cat("crl-index/", issuer, "/", IndexName(n, GetInt(*rec, "revocation_time"))),
                ""}}));
          touched_issuers.insert(issuer);
          ++revoked_deleted;
        }
        return absl::OkStatus();
      }));
      for (const auto& id : touched_issuers) {
        auto is = ResolveIssuer(s, id);
        if (is.ok() && (*is)->key) RETURN_IF_ERROR(RebuildCrl(s, **is));
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = run();
  if (!st.ok())
    log::Warn("pki tidy stopped", {{"error", Msg(st)}});
  else
    log::Info("pki tidy finished", {{"certs_deleted", std::to_string(certs_deleted)},
                                    {"revoked_deleted", std::to_string(revoked_deleted)}});
  finish(st);
}

absl::StatusOr<Response> PkiBackend::TidyStatusPath(Request& req) {
  (void)req;
  std::lock_guard lock(tidy_mu_);
  const TidyStatus& t = tidy_status_;
  return Response::Data(json::object{
      {"safety_buffer", t.safety_buffer},
      {"tidy_cert_store", t.tidy_cert_store},
      {"tidy_revoked_certs", t.tidy_revoked_certs},
      {"state", t.state},
      {"error", t.error.empty() ? json::value(nullptr) : json::value(t.error)},
      {"time_started", t.time_started ? json::value(Rfc3339(t.time_started)) : nullptr},
      {"time_finished", t.time_finished ? json::value(Rfc3339(t.time_finished)) : nullptr},
      {"message", t.message},
      {"cert_store_deleted_count", t.cert_store_deleted_count},
      {"revoked_cert_deleted_count", t.revoked_cert_deleted_count},
      {"missing_issuer_cert_count", 0}});
}

}  // namespace coffer::engines::pki
