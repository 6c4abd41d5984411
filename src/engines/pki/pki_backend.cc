// PKI engine: routing, shared helpers and the issuer/key cache.
#include "engines/pki/pki_backend.h"

#include <ctime>

#include "absl/strings/ascii.h"
#include "crypto/crypto.h"
#include "engines/pki/pki_internal.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;

bool EqualsFold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::object& o,
                                                                   std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  if (v->is_string()) {
    for (std::string_view part : Split(std::string_view(v->as_string()), ',')) {
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      if (!part.empty()) out.emplace_back(part);
    }
    return std::optional(std::move(out));
  }
  if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (!e.is_string())
        return absl::InvalidArgumentError(
            Cat(key, ": expected a list of strings, got an element of type ", JsonTypeName(e)));
      if (!e.as_string().empty()) out.emplace_back(e.as_string());
    }
    return std::optional(std::move(out));
  }
  return absl::InvalidArgumentError(
      Cat(key, ": expected a list of strings or a comma-separated string, got ", JsonTypeName(*v)));
}

absl::StatusOr<std::optional<int64_t>> DurationField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<int64_t>();
  if (v->is_string() && v->as_string().empty()) return std::optional<int64_t>(0);
  auto d = ParseDurationSeconds(*v);
  if (!d.ok()) return absl::InvalidArgumentError(Cat(key, ": ", Msg(d.status())));
  return std::optional<int64_t>(*d);
}

std::string GetString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_string()) return std::string(v->as_string());
  return {};
}

json::array ToArray(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::string HyphenSerial(std::string_view colon) {
  std::string s(colon);
  for (char& c : s)
    if (c == ':') c = '-';
  return s;
}

std::string Rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object Issuer::ToJson() const {
  json::object o{{"issuer_id", id},
                 {"issuer_name", name},
                 {"key_id", key_id},
                 {"certificate", cert_pem},
                 {"ca_chain", ToArray(chain_pem)},
                 {"leaf_not_after_behavior", leaf_not_after_behavior},
                 {"usage", usage},
                 {"manual_chain", nullptr},
                 {"revocation_signature_algorithm", ""},
                 {"serial_number", serial},
                 {"not_after", Rfc3339(not_after)}};
  return o;
}

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

int64_t PkiBackend::Now() const { return clock_->NowUnix(); }

PkiBackend::~PkiBackend() {
  stopping_ = true;
  if (tidy_thread_.joinable()) tidy_thread_.join();
}

void PkiBackend::InvalidateCaches() {
  std::unique_lock lock(mu_);
  issuers_loaded_ = false;
  issuers_.clear();
  keys_.clear();
  default_issuer_.clear();
  default_key_.clear();
  urls_.reset();
  crl_config_.reset();
}

absl::StatusOr<std::optional<json::object>> GetJson(storage::Storage* s, std::string_view key) {
  ASSIGN_OR_RETURN(auto raw, s->Get(key));
  if (!raw) return std::optional<json::object>();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError(Cat("stored ", key, " is not JSON"));
  return std::optional<json::object>(std::move(v.as_object()));
}

Response RawBody(std::string body, std::string content_type) {
  Response r;
  r.raw = true;
  r.raw_body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

absl::Status RequireKey(const Issuer& issuer, std::string_view action) {
  if (issuer.key) return absl::OkStatus();
  return absl::InvalidArgumentError(
      Cat("issuer ", issuer.id, " has no private key in this mount and cannot ", action));
}

absl::StatusOr<crypto::CsrInfo> CsrField(const json::object& data) {
  std::string pem = GetString(data, "csr");
  if (pem.empty()) return absl::InvalidArgumentError("the csr field is required (PEM)");
  return crypto::ParseCsr(pem);
}

// Loads every issuer and key of the mount (a handful; never the issued certificates).
absl::Status PkiBackend::LoadIssuersLocked(storage::Storage* s) {
  issuers_.clear();
  keys_.clear();
  ASSIGN_OR_RETURN(auto key_ids, s->List("key/"));
  for (const auto& id : key_ids) {
    ASSIGN_OR_RETURN(auto o, GetJson(s, "key/" + id));
    if (!o) continue;
    auto k = std::make_shared<KeyEntry>();
    k->id = id;
    k->name = GetString(*o, "key_name");
    crypto::SecretBytes pem(GetString(*o, "private_key"));
    ASSIGN_OR_RETURN(k->key, crypto::ParsePrivateKeyPem(pem.view()));
    ASSIGN_OR_RETURN(k->spec, crypto::DescribeKey(k->key.get()));
    keys_[id] = std::move(k);
  }
  std::vector<std::shared_ptr<Issuer>> loaded;
  ASSIGN_OR_RETURN(auto ids, s->List("issuer/"));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto o, GetJson(s, "issuer/" + id));
    if (!o) continue;
    auto is = std::make_shared<Issuer>();
    is->id = id;
    is->name = GetString(*o, "issuer_name");
    is->key_id = GetString(*o, "key_id");
    is->leaf_not_after_behavior = GetString(*o, "leaf_not_after_behavior");
    if (is->leaf_not_after_behavior.empty()) is->leaf_not_after_behavior = "err";
    std::string usage = GetString(*o, "usage");
    if (!usage.empty()) is->usage = usage;
    is->cert_pem = GetString(*o, "certificate");
    ASSIGN_OR_RETURN(is->cert, crypto::ParseCertPem(is->cert_pem));
    is->serial = crypto::SerialColon(is->cert.get());
    is->not_after = crypto::NotAfterUnix(is->cert.get());
    is->self_signed = crypto::IsSelfSigned(is->cert.get());
    if (auto it = keys_.find(is->key_id); it != keys_.end()) is->key = it->second;
    loaded.push_back(is);
  }
  // Chains: each issuer followed by its parents among the mount's issuers (up to a root).
  for (auto& is : loaded) {
    is->chain_pem.push_back(is->cert_pem);
    const Issuer* cur = is.get();
    for (int depth = 0; depth < 8 && !cur->self_signed; ++depth) {
      const Issuer* parent = nullptr;
      for (auto& p : loaded)
        if (p.get() != cur && crypto::IssuedBy(cur->cert.get(), p->cert.get())) parent = p.get();
      if (!parent) break;
      is->chain_pem.push_back(parent->cert_pem);
      cur = parent;
    }
    issuers_[is->id] = is;
  }
  ASSIGN_OR_RETURN(auto cfg, GetJson(s, "config/issuers"));
  default_issuer_ = cfg ? GetString(*cfg, "default") : "";
  ASSIGN_OR_RETURN(auto kcfg, GetJson(s, "config/keys"));
  default_key_ = kcfg ? GetString(*kcfg, "default") : "";
  issuers_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Issuer>> PkiBackend::ResolveIssuer(storage::Storage* s,
                                                                        std::string_view ref) {
  {
    std::shared_lock lock(mu_);
    if (issuers_loaded_) {
      if (ref.empty() || ref == "default") {
        if (default_issuer_.empty())
          return absl::InvalidArgumentError(
              "no default issuer is configured: generate or import a CA first "
              "(root/generate/internal, intermediate/set-signed or config/ca)");
        ref = default_issuer_;
      }
      if (auto it = issuers_.find(std::string(ref)); it != issuers_.end()) return it->second;
      for (const auto& [id, is] : issuers_)
        if (is->name == ref) return is;
      return absl::InvalidArgumentError(Cat("unable to find PKI issuer for reference: ", ref));
    }
  }
  {
    std::unique_lock lock(mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  return ResolveIssuer(s, ref);
}

absl::StatusOr<std::vector<std::shared_ptr<const Issuer>>> PkiBackend::AllIssuers(
    storage::Storage* s) {
  {
    std::unique_lock lock(mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const Issuer>> out;
  for (const auto& [id, is] : issuers_) out.push_back(is);
  return out;
}

absl::StatusOr<std::shared_ptr<const KeyEntry>> PkiBackend::ResolveKey(storage::Storage* s,
                                                                       std::string_view ref) {
  {
    std::unique_lock lock(mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  std::shared_lock lock(mu_);
  if (ref.empty() || ref == "default") {
    if (default_key_.empty()) return absl::InvalidArgumentError("no default key is configured");
    ref = default_key_;
  }
  if (auto it = keys_.find(std::string(ref)); it != keys_.end()) return it->second;
  for (const auto& [id, k] : keys_)
    if (k->name == ref) return k;
  return absl::InvalidArgumentError(Cat("unable to find PKI key for reference: ", ref));
}

absl::StatusOr<UrlConfig> PkiBackend::LoadUrls(storage::Storage* s) {
  {
    std::shared_lock lock(mu_);
    if (urls_) return *urls_;
  }
  UrlConfig u;
  ASSIGN_OR_RETURN(auto o, GetJson(s, "config/urls"));
  if (o) {
    ASSIGN_OR_RETURN(auto a, StringList(*o, "issuing_certificates"));
    ASSIGN_OR_RETURN(auto b, StringList(*o, "crl_distribution_points"));
    ASSIGN_OR_RETURN(auto c, StringList(*o, "ocsp_servers"));
    u.issuing_certificates = a.value_or(std::vector<std::string>());
    u.crl_distribution_points = b.value_or(std::vector<std::string>());
    u.ocsp_servers = c.value_or(std::vector<std::string>());
  }
  std::unique_lock lock(mu_);
  urls_ = u;
  return u;
}

absl::StatusOr<CrlConfig> PkiBackend::LoadCrlConfig(storage::Storage* s) {
  {
    std::shared_lock lock(mu_);
    if (crl_config_) return *crl_config_;
  }
  CrlConfig c;
  ASSIGN_OR_RETURN(auto o, GetJson(s, "config/crl"));
  if (o) {
    ASSIGN_OR_RETURN(auto e, DurationField(*o, "expiry"));
    if (e) c.expiry = *e;
    ASSIGN_OR_RETURN(auto d, JsonBool(*o, "disable"));
    c.disable = d.value_or(false);
    ASSIGN_OR_RETURN(auto a, JsonBool(*o, "auto_rebuild"));
    c.auto_rebuild = a.value_or(false);
    ASSIGN_OR_RETURN(auto g, DurationField(*o, "auto_rebuild_grace_period"));
    if (g) c.auto_rebuild_grace_period = *g;
    ASSIGN_OR_RETURN(auto od, JsonBool(*o, "ocsp_disable"));
    c.ocsp_disable = od.value_or(false);
  }
  std::unique_lock lock(mu_);
  crl_config_ = c;
  return c;
}

absl::StatusOr<std::string> PkiBackend::SaveKey(storage::Storage* s, EVP_PKEY* key,
                                                const std::string& name) {
  // The same key imported twice is one key.
  {
    std::unique_lock lock(mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
    for (const auto& [id, k] : keys_)
      if (crypto::SameKey(k->key.get(), key)) return id;
    if (!name.empty())
      for (const auto& [id, k] : keys_)
        if (k->name == name)
          return absl::InvalidArgumentError(Cat("key name \"", name, "\" is already in use"));
  }
  ASSIGN_OR_RETURN(crypto::KeySpec spec, crypto::DescribeKey(key));
  ASSIGN_OR_RETURN(crypto::SecretBytes pem, crypto::PrivateKeyPem(key, "pkcs8"));
  std::string id = crypto::RandomUuid();
  json::object o{{"key_id", id},
                 {"key_name", name},
                 {"key_type", std::string(crypto::KeyTypeName(spec.type))},
                 {"key_bits", spec.bits},
                 {"private_key", std::string(pem.view())}};
  std::string body = json::serialize(o);
  absl::Status st = s->Put("key/" + id, body);
  OPENSSL_cleanse(body.data(), body.size());
  o["private_key"] = "";
  RETURN_IF_ERROR(st);
  ASSIGN_OR_RETURN(auto kcfg, GetJson(s, "config/keys"));
  if (!kcfg || GetString(*kcfg, "default").empty())
    RETURN_IF_ERROR(s->Put("config/keys", json::serialize(json::object{{"default", id}})));
  InvalidateCaches();
  return id;
}

absl::StatusOr<std::string> PkiBackend::SaveIssuer(storage::Storage* s, X509* cert,
                                                   const std::string& key_id,
                                                   const std::string& name, bool make_default) {
  std::string id = crypto::RandomUuid();
  json::object o{{"issuer_id", id},
                 {"issuer_name", name},
                 {"key_id", key_id},
                 {"certificate", crypto::CertPem(cert)},
                 {"leaf_not_after_behavior", "err"},
                 {"usage", "read-only,issuing-certificates,crl-signing"}};
  RETURN_IF_ERROR(s->Put("issuer/" + id, json::serialize(o)));
  ASSIGN_OR_RETURN(auto cfg, GetJson(s, "config/issuers"));
  if (make_default || !cfg || GetString(*cfg, "default").empty())
    RETURN_IF_ERROR(s->Put(
        "config/issuers",
        json::serialize(json::object{{"default", id}, {"default_follows_latest_issuer", false}})));
  InvalidateCaches();
  return id;
}

absl::StatusOr<std::optional<bool>> PkiBackend::Exists(Request& req) {
  if (StartsWith(req.path, "roles/")) {
    ASSIGN_OR_RETURN(auto raw, req.storage->Get("role/" + req.path.substr(6)));
    return std::optional<bool>(raw.has_value());
  }
  return std::optional<bool>();
}

const core::SpecialPaths& PkiBackend::Special() const {
  // Vault's PKI PathsSpecial, for the paths Coffer serves.
  static const core::SpecialPaths kSpecial{
      // Replacing or destroying the mount's CA, or signing with it verbatim, needs sudo.
      .root = {"root", "root/sign-self-issued"},
      // CA certificates, CRLs and single certificates are public.
      .unauthenticated = {"cert/*", "ca/pem", "ca_chain", "ca", "crl/delta", "crl/delta/pem",
                          "crl/pem", "crl", "issuer/+/crl/der", "issuer/+/crl/pem",
                          "issuer/+/crl", "issuer/+/crl/delta/der", "issuer/+/crl/delta/pem",
                          "issuer/+/crl/delta", "issuer/+/pem", "issuer/+/der", "issuer/+/json",
                          "issuers", "issuers/", "ocsp", "ocsp/*"},
      .seal_wrap_storage = {"key/*", "issuer/*", "config/ca_bundle"},
  };
  return kSpecial;
}

absl::StatusOr<Response> PkiBackend::Handle(Request& req) {
  std::string_view p = req.path;
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  const Operation op = req.op;
  const bool write = op == Operation::kUpdate || op == Operation::kCreate;
  const bool read = op == Operation::kRead;
  const bool list = op == Operation::kList;
  auto after = [&](std::string_view prefix) { return p.substr(prefix.size()); };
  auto need = [&](bool ok) -> absl::Status {
    return ok ? absl::OkStatus()
              : UnsupportedOperation(Cat(core::OperationName(op), " on pki path \"", p, "\""));
  };

  if (StartsWith(p, "root/generate/") || StartsWith(p, "issuers/generate/root/")) {
    RETURN_IF_ERROR(need(write));
    return GenerateRoot(req, p.substr(p.rfind('/') + 1), false);
  }
  if (StartsWith(p, "root/rotate/")) {
    RETURN_IF_ERROR(need(write));
    return GenerateRoot(req, after("root/rotate/"), true);
  }
  if (StartsWith(p, "intermediate/generate/") || StartsWith(p, "issuers/generate/intermediate/")) {
    RETURN_IF_ERROR(need(write));
    return GenerateIntermediate(req, p.substr(p.rfind('/') + 1));
  }
  if (p == "intermediate/set-signed") {
    RETURN_IF_ERROR(need(write));
    return ImportBundle(req, "certificate");
  }
  if (p == "config/ca" || p == "issuers/import/bundle" || p == "issuers/import/cert") {
    RETURN_IF_ERROR(need(write));
    return ImportBundle(req, "pem_bundle");
  }
  if (p == "root/sign-intermediate") {
    RETURN_IF_ERROR(need(write));
    return SignIntermediate(req, "default");
  }
  if (p == "root/sign-self-issued") {
    RETURN_IF_ERROR(need(write));
    return SignSelfIssued(req, "default");
  }
  if (p == "root") {
    RETURN_IF_ERROR(need(op == Operation::kDelete));
    // Vault's DELETE /pki/root: removes every issuer and key (issued certificates stay).
    ASSIGN_OR_RETURN(auto ids, req.storage->List("issuer/"));
    std::vector<storage::WriteOp> ops;
    for (auto& id : ids) ops.push_back({storage::WriteOp::Kind::kDelete, "issuer/" + id, ""});
    ASSIGN_OR_RETURN(auto kids, req.storage->List("key/"));
    for (auto& id : kids) ops.push_back({storage::WriteOp::Kind::kDelete, "key/" + id, ""});
    ops.push_back({storage::WriteOp::Kind::kDelete, "config/issuers", ""});
    ops.push_back({storage::WriteOp::Kind::kDelete, "config/keys", ""});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    InvalidateCaches();
    return Response::Empty();
  }
  if (p == "issuers") {
    RETURN_IF_ERROR(need(list));
    return ListIssuers(req);
  }
  if (StartsWith(p, "issuer/")) return IssuerPath(req, after("issuer/"));
  if (p == "keys") {
    RETURN_IF_ERROR(need(list));
    return ListKeys(req);
  }
  if (StartsWith(p, "key/")) return KeyPath(req, after("key/"));
  if (p == "config/issuers" || p == "root/replace") {
    if (p == "root/replace") {
      RETURN_IF_ERROR(need(write));
      if (!req.data.contains("default")) req.data["default"] = "next";
    }
    return ConfigIssuers(req);
  }
  if (p == "config/keys") return ConfigKeys(req);
  if (p == "config/urls") return ConfigUrls(req);
  if (p == "config/crl") return ConfigCrl(req);
  if (p == "ca" || p == "ca/pem") {
    RETURN_IF_ERROR(need(read));
    return CaCert(req, p == "ca" ? "der" : "pem");
  }
  if (p == "ca_chain") {
    RETURN_IF_ERROR(need(read));
    return CaChain(req);
  }
  if (p == "roles") {
    RETURN_IF_ERROR(need(list));
    ASSIGN_OR_RETURN(auto names, req.storage->List("role/"));
    if (names.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", ToArray(names)}});
  }
  if (StartsWith(p, "roles/")) return RolePath(req, after("roles/"));
  if (StartsWith(p, "issue/")) {
    RETURN_IF_ERROR(need(write));
    return Issue(req, after("issue/"), "", false);
  }
  if (StartsWith(p, "sign/")) {
    RETURN_IF_ERROR(need(write));
    return Issue(req, after("sign/"), "", true);
  }
  if (p == "sign-verbatim" || StartsWith(p, "sign-verbatim/")) {
    RETURN_IF_ERROR(need(write));
    return SignVerbatim(req, p == "sign-verbatim" ? "" : after("sign-verbatim/"), "");
  }
  if (p == "revoke" || p == "revoke-with-key") {
    RETURN_IF_ERROR(need(write));
    return Revoke(req, p == "revoke-with-key");
  }
  if (p == "certs" || p == "certs/revoked") {
    RETURN_IF_ERROR(need(list));
    return ListCerts(req, p == "certs" ? "certs/" : "revoked/");
  }
  if (StartsWith(p, "cert/")) {
    RETURN_IF_ERROR(need(read));
    return ReadCert(req, after("cert/"));
  }
  if (p == "crl" || p == "crl/pem") {
    RETURN_IF_ERROR(need(read));
    return CrlPath(req, "default", p == "crl" ? "der" : "pem");
  }
  if (p == "crl/rotate") {
    RETURN_IF_ERROR(need(read));
    return RotateCrl(req);
  }
  if (p == "tidy") {
    RETURN_IF_ERROR(need(write));
    return Tidy(req);
  }
  if (p == "tidy-status") {
    RETURN_IF_ERROR(need(read));
    return TidyStatusPath(req);
  }
  return absl::NotFoundError(Cat("unsupported path \"", p, "\" on a pki mount"));
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return std::unique_ptr<core::Backend>(
      new PkiBackend(config.clock ? config.clock : RealClock::Get()));
}

}  // namespace coffer::engines::pki
