// PKI engine: the path table, how requests reach it, the lifecycle hooks, shared helpers and the
// caches of issuers, keys, roles and configuration.
#include "engines/pki/pki_backend.h"

#include <ctime>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "crypto/crypto.h"
#include "engines/pki/pki_internal.h"
#include "util/duration.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Path;

namespace {

constexpr char kHelp[] =
    "The PKI secrets engine issues X.509 certificates: it keeps certificate authorities "
    "(issuers) and their keys, roles that say which certificates may be issued, the issued "
    "certificates, revocations and CRLs.";

const core::SpecialPaths& PkiSpecialPaths() {
  // Vault's PKI PathsSpecial, for the paths Coffer serves.
  static const core::SpecialPaths kSpecial{
      // Replacing or destroying the mount's CA, or signing with it verbatim, needs sudo.
      // Coffer adds issuer/+/sign-self-issued, which Vault leaves without sudo although it
      // does what root/sign-self-issued does (docs/compatibility.md).
      .root = {"root", "root/sign-self-issued", "issuer/+/sign-self-issued"},
      // CA certificates, CRLs and single certificates are public.
      .unauthenticated = {"cert/*",
                          "ca/pem",
                          "ca_chain",
                          "ca",
                          "crl/delta",
                          "crl/delta/pem",
                          "crl/pem",
                          "crl",
                          "issuer/+/crl/der",
                          "issuer/+/crl/pem",
                          "issuer/+/crl",
                          "issuer/+/crl/delta/der",
                          "issuer/+/crl/delta/pem",
                          "issuer/+/crl/delta",
                          "issuer/+/pem",
                          "issuer/+/der",
                          "issuer/+/json",
                          "issuers",
                          "issuers/",
                          "ocsp",
                          "ocsp/*"},
      .seal_wrap_storage = {"key/*", "issuer/*", "config/ca_bundle"},
      // Key generation (an RSA-8192 key takes seconds), CRL rebuilds and tidy walks.
      .expensive = {"root/generate/*", "root/rotate/*", "intermediate/generate/*",
                    "issuers/generate/*", "keys/generate/*", "issue/*", "issuer/+/issue/*",
                    "revoke", "revoke-with-key", "issuer/+/revoke", "crl/rotate",
                    "crl/rotate-delta", "tidy"},
  };
  return kSpecial;
}

// Whether `p` has a handler for `op` (the framework serves create with the update handler).
bool Declares(const Path& p, Operation op) {
  return p.operations.contains(op) ||
         (op == Operation::kCreate && p.operations.contains(Operation::kUpdate));
}

FieldSchema Schema(FieldType type, std::string description, json::value default_value,
                   bool sensitive = false) {
  FieldSchema f;
  f.type = type;
  f.description = std::move(description);
  f.default_value = std::move(default_value);
  f.sensitive = sensitive;
  return f;
}

}  // namespace

// ---- string and field helpers ----

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

FieldSchema BoolField(std::string description, bool default_value) {
  return Schema(FieldType::kBool, std::move(description), default_value);
}
FieldSchema IntField(std::string description, int64_t default_value) {
  return Schema(FieldType::kInt, std::move(description), default_value);
}
FieldSchema DurationField(std::string description, json::value default_value) {
  return Schema(FieldType::kDuration, std::move(description), std::move(default_value));
}
FieldSchema StringField(const std::string& description, json::value default_value) {
  return Schema(FieldType::kAny, "(string) " + description, std::move(default_value));
}
FieldSchema ListField(const std::string& description, json::value default_value) {
  return Schema(FieldType::kAny, "(list of strings, or a comma-separated string) " + description,
                std::move(default_value));
}
FieldSchema SecretField(const std::string& description) {
  return Schema(FieldType::kAny, "(string) " + description, nullptr, true);
}

std::map<core::Operation, core::framework::OperationSpec> Ops(std::initializer_list<Op> ops) {
  std::map<core::Operation, core::framework::OperationSpec> out;
  for (const auto& o : ops) out[o.op] = core::framework::OperationSpec{o.handler, o.summary};
  return out;
}

std::map<std::string, FieldSchema> Fields(
    std::initializer_list<std::map<std::string, FieldSchema>> sets) {
  std::map<std::string, FieldSchema> out;
  for (const auto& s : sets) out.insert(s.begin(), s.end());
  return out;
}

std::string Str(const FieldData& d, std::string_view name) {
  const json::value& v = d.Get(name);
  return v.is_string() ? std::string(v.as_string()) : std::string();
}

absl::StatusOr<std::optional<std::string>> StrictStr(const FieldData& d, std::string_view name) {
  const json::value& v = d.Get(name);
  if (v.is_null()) return std::optional<std::string>();
  json::object one;
  one[name] = v;
  return JsonString(one, name);
}

absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::value& v,
                                                                   std::string_view key) {
  if (v.is_null()) return std::optional<std::vector<std::string>>();
  std::vector<std::string> out;
  if (v.is_string()) {
    for (std::string_view part : Split(std::string_view(v.as_string()), ',')) {
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      if (!part.empty()) out.emplace_back(part);
    }
    return std::optional(std::move(out));
  }
  if (v.is_array()) {
    for (const auto& e : v.as_array()) {
      if (!e.is_string())
        return absl::InvalidArgumentError(
            Cat(key, ": expected a list of strings, got an element of type ", JsonTypeName(e)));
      if (!e.as_string().empty()) out.emplace_back(e.as_string());
    }
    return std::optional(std::move(out));
  }
  return absl::InvalidArgumentError(
      Cat(key, ": expected a list of strings or a comma-separated string, got ", JsonTypeName(v)));
}

absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::object& o,
                                                                   std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return std::optional<std::vector<std::string>>();
  return StringList(*v, key);
}

absl::StatusOr<std::optional<std::vector<std::string>>> List(const FieldData& d,
                                                             std::string_view name) {
  return StringList(d.Get(name), name);
}

absl::StatusOr<std::optional<int64_t>> StoredDuration(const json::object& o, std::string_view key) {
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
  auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t GetInt(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

absl::StatusOr<crypto::Cert> CertFromRecord(const json::object& rec) {
  auto der = Base64Decode(GetString(rec, "der"));
  if (!der) return absl::DataLossError("stored certificate is not base64");
  return crypto::ParseCertDer(*der);
}

std::string IndexName(const std::string& hyphen, int64_t t) { return Cat(hyphen, "_", t); }

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
                 {"not_after", Rfc3339(not_after)},
                 {"revoked", revocation_time > 0}};
  if (revocation_time > 0) {
    o["revocation_time"] = revocation_time;
    o["revocation_time_rfc3339"] = Rfc3339(revocation_time);
  }
  return o;
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
  // Every certificate the mount signs passes here: a revoked issuer, or one whose usage no
  // longer has issuing-certificates, signs nothing (leaves, intermediates, cross-signs).
  if (issuer.revocation_time > 0)
    return absl::InvalidArgumentError(
        Cat("issuer ", issuer.id, " has been revoked and cannot ", action, " certificates"));
  if (issuer.usage.find("issuing-certificates") == std::string::npos)
    return absl::InvalidArgumentError(
        Cat("issuer ", issuer.id, " is not allowed to issue certificates (usage)"));
  if (issuer.key) return absl::OkStatus();
  return absl::InvalidArgumentError(
      Cat("issuer ", issuer.id, " has no private key in this mount and cannot ", action));
}

absl::StatusOr<crypto::CsrInfo> CsrField(const FieldData& d) {
  std::string pem = Str(d, "csr");
  if (pem.empty()) return absl::InvalidArgumentError("the csr field is required (PEM)");
  return crypto::ParseCsr(pem);
}

// ---- the table and the router ----

PkiBackend::PkiBackend(const core::BackendConfig& config) : PkiBackend(config, Table(this)) {}

PkiBackend::PkiBackend(const core::BackendConfig& config, std::vector<PkiPath> table)
    : FrameworkBackend(kHelp, PathsOf(table), PkiSpecialPaths()),
      clock_(config.clock ? config.clock : RealClock::Get()),
      config_(config),
      missing_op_(MissingOpsOf(table)) {}

PkiBackend::~PkiBackend() { StopTidy(); }

std::vector<PkiPath> PkiBackend::Table(PkiBackend* b) {
  // Order matters only where patterns overlap: a literal before the capture it would also
  // match ("roles" before "roles/{name*}", "cert/ca" before "cert/{serial*}").
  std::vector<PkiPath> table;
  for (auto* group :
       {&IssuerPaths, &RolePaths, &IssuePaths, &FetchPaths, &RevokePaths, &CrlPaths, &TidyPaths}) {
    for (auto& p : group(b)) table.push_back(std::move(p));
  }
  return table;
}

std::vector<Path> PkiBackend::PathsOf(std::vector<PkiPath>& table) {
  std::vector<Path> out;
  out.reserve(table.size());
  for (auto& p : table) out.push_back(std::move(p.path));
  return out;
}

std::vector<core::framework::Handler> PkiBackend::MissingOpsOf(std::vector<PkiPath>& table) {
  std::vector<core::framework::Handler> out;
  out.reserve(table.size());
  for (auto& p : table) out.push_back(std::move(p.missing_op));
  return out;
}

absl::Status PkiBackend::Unsupported(const Path& p, const Request& req) {
  if (!p.unsupported)
    return UnsupportedOperation(Cat(core::OperationName(req.op), " on \"", req.path,
                                    "\"; this path supports: ", OperationList(p)));
  std::string detail = *p.unsupported;
  for (auto [key, value] :
       {std::pair<std::string_view, std::string_view>{"{op}", core::OperationName(req.op)},
        {"{path}", req.path}}) {
    size_t at = detail.find(key);
    if (at != std::string::npos) detail.replace(at, key.size(), value);
  }
  return UnsupportedOperation(detail);
}

absl::Status PkiBackend::NotFound(const Request& req) const {
  return absl::NotFoundError(Cat("unsupported path \"", req.path, "\" on a pki mount"));
}

absl::StatusOr<Response> PkiBackend::Handle(Request& req) {
  // Paths match exactly, except that a LIST ends in the '/' the HTTP layer adds, which its
  // messages leave out ("list on pki path \"roles\""). "root/" is not "root": it must not
  // reach root's handler past the sudo check on "root", nor any handler past an exact ACL rule.
  // (The engine's own router used to strip every trailing '/', for every operation.)
  std::string original_path;
  if (!req.path.empty() && req.path.back() == '/') {
    if (req.op != Operation::kList) return NotFound(req);
    original_path = req.path;
    req.path.pop_back();
  }
  absl::Cleanup restore_path = [&] {
    if (!original_path.empty()) req.path = std::move(original_path);
  };

  std::vector<std::pair<std::string, std::string>> captures;
  const Path* p = Match(req.path, &captures);
  // A name that takes the rest of the path ({role*}) came out empty: "issue" is not
  // "issue/<role>". (Only a rest capture can be empty.)
  if (p && !captures.empty() && captures.back().second.empty()) p = nullptr;
  if (!p) {
    // issuer/<ref>/<a path the issuer does not serve>: the issuer is checked first.
    std::string_view path = req.path;
    if (path.starts_with("issuer/")) {
      std::string_view rest = path.substr(7);
      if (size_t slash = rest.find('/'); slash != std::string_view::npos)
        return IssuerSubpathNotFound(req, rest.substr(0, slash));
    }
    return NotFound(req);
  }
  const bool help = req.op == Operation::kRead && [&] {
    auto h = req.QueryParam("help");
    return h && (*h == "1" || *h == "true");
  }();
  // An operation the path does not declare: its hook, or the 405. HEAD is one: the engine has
  // never served it, where the framework would answer it with the read handler.
  if (!help && !Declares(*p, req.op)) {
    const auto& missing = missing_op_[static_cast<size_t>(p - paths().data())];
    if (missing) {
      ASSIGN_OR_RETURN(FieldData url, FieldData::Parse(p->fields, json::object(), captures));
      return missing(req, url);
    }
    return Unsupported(*p, req);
  }
  // Vault, and the engine before the framework, read an empty duration ("ttl": "") as 0; the
  // framework's kDuration refuses it. The request's data is handed over with 0 and restored.
  std::vector<std::string> blank_durations;
  for (const auto& [name, f] : p->fields) {
    if (f.type != FieldType::kDuration) continue;
    json::value* v = req.data.if_contains(name);
    if (v && v->is_string() && v->as_string().empty()) {
      *v = 0;
      blank_durations.push_back(name);
    }
  }
  absl::StatusOr<Response> result = FrameworkBackend::Handle(req);
  for (const auto& name : blank_durations) req.data[name] = "";
  return result;
}

absl::StatusOr<std::optional<bool>> PkiBackend::Exists(Request& req) {
  // The path as it came: roles/{name*} keeps a trailing slash in the name, as the check always
  // has ("roles/web/" is looked up as role/web/).
  std::vector<std::pair<std::string, std::string>> captures;
  const Path* p = Match(req.path, &captures);
  if (!p || !p->exists) return std::optional<bool>();
  ASSIGN_OR_RETURN(FieldData url, FieldData::Parse(p->fields, json::object(), captures));
  return p->exists(req, url);
}

// ---- lifecycle ----

absl::Status PkiBackend::Initialize() {
  storage::Storage* s = config_.storage;
  if (!s) return absl::OkStatus();
  auto warn = [&](std::string_view what, const absl::Status& st) {
    if (st.ok()) return;
    config_.LogWarn(
        Cat("pki: loading ", what, " failed; the requests that need it report it: ", Msg(st)));
  };
  absl::Status issuers;
  {
    MutexLock l(&mu_);
    issuers = LoadIssuersLocked(s);
  }
  warn("the issuers and keys", issuers);
  warn("config/urls", LoadUrls(s).status());
  warn("config/crl", LoadCrlConfig(s).status());
  return absl::OkStatus();
}

void PkiBackend::InvalidateKey(std::string_view key) {
  if (key.starts_with("issuer/") || key.starts_with("key/") || key == "config/issuers" ||
      key == "config/keys") {
    InvalidateIssuers();
  } else if (key.starts_with("role/")) {
    InvalidateRole(key.substr(5));
  } else if (key == "config/urls") {
    InvalidateUrls();
  } else if (key == "config/crl") {
    InvalidateCrlConfig();
  }
  // certs/, revoked/, crl-index/ and crls/ are read from storage by every request that needs
  // them: nothing is cached from them.
}

void PkiBackend::Cleanup() {
  StopTidy();
  InvalidateIssuers();
  InvalidateUrls();
  InvalidateCrlConfig();
  {
    MutexLock l(&counts_mu_);
    counts_ = {};
  }
  MutexLock l(&mu_);
  roles_.clear();
  ++roles_generation_;
}

// ---- the caches ----

// What a write on sign/:role or issue/:role (also under issuer/:ref/) will store, as far as
// the role cache knows; nullopt for any other path or operation.
std::optional<PkiBackend::RoleWrites> PkiBackend::SignOrIssueWrites(std::string_view path,
                                                                    core::Operation op) const {
  if (op != core::Operation::kUpdate && op != core::Operation::kCreate) return std::nullopt;
  std::string_view rest = path;
  if (rest.starts_with("issuer/")) {
    const size_t slash = rest.find('/', 7);
    if (slash == std::string_view::npos) return std::nullopt;
    rest = rest.substr(slash + 1);
  }
  std::string_view role;
  if (rest.starts_with("sign/"))
    role = rest.substr(5);
  else if (rest.starts_with("issue/"))
    role = rest.substr(6);
  else
    return std::nullopt;
  ReaderMutexLock l(&mu_);
  auto it = roles_.find(role);
  if (it == roles_.end()) return RoleWrites{};
  return RoleWrites{
      .cached = true, .certificate = !it->second->no_store, .lease = it->second->generate_lease};
}

// On a standby: reads (a CRL past its next update is rebuilt, a write: the request then goes to
// the active server), and signing or issuing on a role that stores nothing (MayWait knows).
bool PkiBackend::ServesOnStandby(std::string_view path, core::Operation op) const {
  if (Backend::ServesOnStandby(path, op)) return true;
  auto w = SignOrIssueWrites(path, op);
  // A role not cached yet is tried: if it stores, the write is refused and the request goes to
  // the active server; the role is cached from then on.
  return w && (!w->cached || (!w->certificate && !w->lease));
}

bool PkiBackend::MayWait(std::string_view path, core::Operation op) const {
  if (!Backend::MayWait(path, op)) return false;
  auto w = SignOrIssueWrites(path, op);
  // generate_lease: the lease is stored even when the certificate is not.
  return !w || !w->cached || w->certificate || w->lease;
}

// Signing or issuing on a cached role that stores its certificates and makes no lease: the
// certificate's record is the request's only write, made last (SignAndStore), deferred when
// the request allows it.
bool PkiBackend::DefersWrites(std::string_view path, core::Operation op) const {
  auto w = SignOrIssueWrites(path, op);
  return w && w->cached && w->certificate && !w->lease;
}

bool PkiBackend::Expensive(std::string_view path) const {
  if (!Special().expensive.Matches(path)) return false;
  std::string_view role;
  if (path.substr(0, 6) == "issue/") {
    role = path.substr(6);
  } else if (path.substr(0, 7) == "issuer/") {
    size_t at = path.find("/issue/");
    if (at == std::string_view::npos) return true;
    role = path.substr(at + 7);
  } else {
    return true;
  }
  ReaderMutexLock l(&mu_);  // never waits behind a request, only behind a cache reload
  auto it = roles_.find(role);
  return it == roles_.end() || it->second->key_type == "rsa" || it->second->key_type == "any";
}

int64_t PkiBackend::Now() const { return clock_->NowUnix(); }

void PkiBackend::InvalidateIssuers() {
  MutexLock l(&mu_);
  issuers_loaded_ = false;
  issuers_.clear();
  keys_.clear();
  default_issuer_.clear();
  default_key_.clear();
}

void PkiBackend::InvalidateRole(std::string_view name) {
  MutexLock l(&mu_);
  roles_.erase(std::string(name));
  ++roles_generation_;
}

void PkiBackend::InvalidateUrls() {
  MutexLock l(&mu_);
  urls_.reset();
  ++urls_generation_;
}

void PkiBackend::InvalidateCrlConfig() {
  MutexLock l(&mu_);
  crl_config_.reset();
  ++crl_config_generation_;
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
    is->revocation_time = GetInt(*o, "revocation_time");
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
    ReaderMutexLock lock(&mu_);
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
    MutexLock lock(&mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  return ResolveIssuer(s, ref);
}

absl::StatusOr<std::vector<std::shared_ptr<const Issuer>>> PkiBackend::AllIssuers(
    storage::Storage* s) {
  {
    MutexLock lock(&mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<const Issuer>> out;
  for (const auto& [id, is] : issuers_) out.push_back(is);
  return out;
}

absl::StatusOr<std::shared_ptr<const KeyEntry>> PkiBackend::ResolveKey(storage::Storage* s,
                                                                       std::string_view ref) {
  {
    MutexLock lock(&mu_);
    if (!issuers_loaded_) RETURN_IF_ERROR(LoadIssuersLocked(s));
  }
  ReaderMutexLock lock(&mu_);
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
  uint64_t generation = 0;
  {
    ReaderMutexLock lock(&mu_);
    if (urls_) return *urls_;
    generation = urls_generation_;
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
  MutexLock lock(&mu_);
  if (urls_generation_ == generation) urls_ = u;
  return u;
}

absl::StatusOr<CrlConfig> PkiBackend::LoadCrlConfig(storage::Storage* s) {
  uint64_t generation = 0;
  {
    ReaderMutexLock lock(&mu_);
    if (crl_config_) return *crl_config_;
    generation = crl_config_generation_;
  }
  CrlConfig c;
  ASSIGN_OR_RETURN(auto o, GetJson(s, "config/crl"));
  if (o) {
    ASSIGN_OR_RETURN(auto e, StoredDuration(*o, "expiry"));
    if (e) c.expiry = *e;
    ASSIGN_OR_RETURN(auto d, JsonBool(*o, "disable"));
    c.disable = d.value_or(false);
    ASSIGN_OR_RETURN(auto a, JsonBool(*o, "auto_rebuild"));
    c.auto_rebuild = a.value_or(false);
    ASSIGN_OR_RETURN(auto g, StoredDuration(*o, "auto_rebuild_grace_period"));
    if (g) c.auto_rebuild_grace_period = *g;
    ASSIGN_OR_RETURN(auto od, JsonBool(*o, "ocsp_disable"));
    c.ocsp_disable = od.value_or(false);
  }
  MutexLock lock(&mu_);
  if (crl_config_generation_ == generation) crl_config_ = c;
  return c;
}

absl::StatusOr<std::string> PkiBackend::SaveKey(storage::Storage* s, EVP_PKEY* key,
                                                const std::string& name) {
  // The same key imported twice is one key.
  {
    MutexLock lock(&mu_);
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
  InvalidateIssuers();
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
  InvalidateIssuers();
  return id;
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return std::unique_ptr<core::Backend>(new PkiBackend(config));
}

}  // namespace coffer::engines::pki
