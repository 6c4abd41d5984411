#include "agent/agent.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "crypto/crypto.h"
#include "crypto/pem.h"
#include "crypto/x509.h"
#include "util/encoding.h"
#include "util/files.h"
#include "util/human_time.h"
#include "util/json.h"
#include "util/log.h"
#include "util/shell.h"
#include "util/status.h"

namespace coffer::agent {
namespace json = boost::json;
namespace {

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.remove_suffix(1);
  return s;
}

// A token file's token (its first line): read into memory wiped when it goes. Empty when the
// file does not exist; an error when it cannot be read.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  ASSIGN_OR_RETURN(auto f, crypto::ReadSecretFile(path, size_t{64} << 10));
  if (!f) return std::string();
  return std::string(TrimLine(f->view()));
}

// Writes `token` and a newline to `path` (0600, atomically) without leaving the line in freed
// memory.
absl::Status WriteTokenFile(const std::string& path, std::string_view token) {
  std::string line;
  line.reserve(token.size() + 1);
  line.append(token).push_back('\n');
  files::WriteOptions w;
  w.mode = 0600;
  absl::Status st = files::WriteAtomic(path, line, w);
  OPENSSL_cleanse(line.data(), line.size());
  return st;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string Field(const json::object& o, std::string_view k) {
  if (auto* v = o.if_contains(k); v && v->is_string()) return std::string(v->as_string());
  return {};
}

// The base64 value of a kubeconfig's `field` (as Coffer writes it: one line), or "".
std::string_view KubeconfigField(std::string_view text, std::string_view field) {
  const size_t p = text.find(field);
  if (p == std::string_view::npos) return {};
  const size_t from = p + field.size();
  const size_t e = text.find('\n', from);
  std::string_view v =
      text.substr(from, e == std::string_view::npos ? std::string_view::npos : e - from);
  if (!v.empty() && v.back() == '\r') v.remove_suffix(1);  // a kubeconfig saved with CRLF
  return v;
}

// The PEM of the certificate a kubeconfig embeds (client-certificate-data), or "".
std::string KubeconfigCert(std::string_view text) {
  return Base64Decode(KubeconfigField(text, "client-certificate-data: ")).value_or("");
}

// The PEM of the client key a kubeconfig embeds (client-key-data), in memory wiped when it goes.
crypto::SecretBytes KubeconfigKey(std::string_view text) {
  auto pem = Base64Decode(KubeconfigField(text, "client-key-data: "));
  if (!pem) return {};
  crypto::SecretBytes key(*pem);
  OPENSSL_cleanse(pem->data(), pem->size());
  return key;
}

// Whether `path` is a regular file this process can open for reading (opened, not read: a
// kubeconfig holds a key).
bool RegularFileReadable(const std::string& path) {
  auto f = files::RegularFile::Open(path);
  return f.ok() && f->has_value();
}

// The PEM of a certificate's private key as on disk: its key file or, without one, the client
// key of its kubeconfig. Read into memory that is wiped when it goes, so the agent leaves no copy
// of a key in freed memory. Empty when there is none or it cannot be read.
crypto::SecretBytes ReadKeyPem(const CertSpec& s) {
  const std::string& path = !s.key_file.empty() ? s.key_file : s.kubeconfig.path;
  if (path.empty()) return {};
  auto f = crypto::ReadSecretFile(path);
  if (!f.ok()) {
    // The renewal goes on with a new key, as for a key that is missing: say why.
    log::Warn("agent: the key cannot be read; a new key is made",
              {{"certificate", s.name}, {"error", std::string(f.status().message())}});
    return {};
  }
  if (!*f) return {};
  return !s.key_file.empty() ? std::move(**f) : KubeconfigKey((*f)->view());
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The certificate's DNS SANs, and its IP SANs as raw address bytes.
void Sans(X509* c, std::vector<std::string>* dns, std::vector<std::string>* ips) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      dns->emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                        ASN1_STRING_length(g->d.dNSName));
    } else if (g->type == GEN_IPADD) {
      ips->emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.iPAddress)),
                        ASN1_STRING_length(g->d.iPAddress));
    }
  }
  GENERAL_NAMES_free(names);
}

// A configured IP address as raw bytes ("" when it does not parse).
std::string IpBytes(const std::string& ip) {
  ASN1_OCTET_STRING* o = a2i_IPADDRESS(ip.c_str());
  if (!o) return {};
  std::string out(reinterpret_cast<const char*>(o->data), o->length);
  ASN1_OCTET_STRING_free(o);
  return out;
}

// A hook runs in its own process group, at most `timeout_ms` (then it is killed, and it counts
// as failed): the agent's one thread also renews every other certificate and its token.
absl::Status RunHook(const std::string& cmd, const std::string& name, int64_t timeout_ms) {
  std::string why;
  const int rc = RunShell(cmd, timeout_ms, &why);
  if (rc != 0) {
    log::Warn("agent: renewal hook failed",
              {{"certificate", name}, {"exit_status", std::to_string(rc)}, {"reason", why}});
    return absl::InternalError(
        Cat("hook for ", name, " exited with ", rc, why.empty() ? "" : ": ", why));
  }
  log::Info("agent: ran renewal hook", {{"certificate", name}});
  return absl::OkStatus();
}

// The SHA-256 fingerprints of the certificates in a CA file, in file order (a bundle during a CA
// rotation holds two).
json::array CaFingerprints(const std::string& path) {
  json::array fps;
  auto text = files::ReadIfExists(path);
  if (!text.ok() || !*text) return fps;
  const std::string& t = **text;
  for (size_t at = 0; (at = t.find("-----BEGIN CERTIFICATE-----", at)) != std::string::npos;) {
    const size_t end = t.find("-----END CERTIFICATE-----", at);
    if (end == std::string::npos) break;
    auto cert = crypto::ParseCertPem(t.substr(at, end + 25 - at));
    at = end;
    if (cert.ok()) fps.emplace_back(HexEncode(crypto::Sha256(crypto::CertDer(cert->get()))));
  }
  return fps;
}

// A PEM text ending in exactly one newline.
std::string Line(std::string pem) {
  while (!pem.empty() && (pem.back() == '\n' || pem.back() == '\r')) pem.pop_back();
  return pem + "\n";
}

// What a phase of the rotation document asks of a node (cluster/rotation.h): which issuer signs
// its renewals and what its CA files hold. None for a name that is not an acting phase.
//   trust          old issuer, old+new        abort-trust     new issuer, old+new
//   reissue        new issuer, old+new        abort-reissue   old issuer, old+new
//   finalize       new issuer, new            abort-finalize  old issuer, old
std::optional<RotationState> PhaseState(const json::object& doc, std::string_view phase) {
  const std::string old_pem = Line(JsonStringOr(doc, "old_pem")),
                    new_pem = Line(JsonStringOr(doc, "new_pem"));
  const bool old_issuer = phase == "trust" || phase == "abort-reissue" || phase == "abort-finalize";
  std::string ca;
  if (phase == "trust" || phase == "reissue" || phase == "abort-trust" || phase == "abort-reissue")
    ca = old_pem + new_pem;
  else if (phase == "finalize")
    ca = new_pem;
  else if (phase == "abort-finalize")
    ca = old_pem;
  else
    return std::nullopt;
  return RotationState{JsonStringOr(doc, "id"), JsonStringOr(doc, "mount"),
                       JsonStringOr(doc, old_issuer ? "old_issuer" : "new_issuer"), std::move(ca)};
}

// Whether `leaf_pem`'s issuer is the CA certificate `ca_pem` names (name and signature), and
// that certificate has not expired.
bool CertifiedBy(const std::string& leaf_pem, const std::string& ca_pem, int64_t now) {
  auto leaf = crypto::ParseCertPem(leaf_pem);
  auto ca = crypto::ParseCertPem(ca_pem);
  return leaf.ok() && ca.ok() && crypto::NotAfterUnix(ca->get()) > now &&
         crypto::IssuedBy(leaf->get(), ca->get());
}

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace

std::string RenderKubeconfig(const KubeconfigSpec& k, std::string_view ca_pem,
                             std::string_view cert_pem, std::string_view key_pem) {
  const std::string ctx = Cat(k.user, "@", k.cluster);
  std::string key_b64 = Base64Encode(key_pem);
  // absl::StrCat sizes the result once: no partial copy with the key is reallocated away.
  std::string out = absl::StrCat(
      "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: ",
      Base64Encode(ca_pem), "\n    server: ", k.server, "\n  name: ", k.cluster,
      "\ncontexts:\n- context:\n    cluster: ", k.cluster, "\n    user: ", k.user,
      "\n  name: ", ctx, "\ncurrent-context: ", ctx, "\npreferences: {}\nusers:\n- name: ", k.user,
      "\n  user:\n    client-certificate-data: ", Base64Encode(cert_pem),
      "\n    client-key-data: ", key_b64, "\n");
  OPENSSL_cleanse(key_b64.data(), key_b64.size());
  return out;
}

Agent::Agent(Config c, const Clock* clock)
    : api_([&] {
        http::ClientOptions o;
        o.address = c.address;
        o.ca_cert = c.ca_cert;
        o.timeout = std::chrono::seconds(30);
        return o;
      }()),
      c_(std::move(c)),
      clock_(clock) {}

int64_t Agent::RenewAt(int64_t not_before, int64_t not_after, std::string_view serial,
                       std::string_view node) {
  unsigned char h[SHA256_DIGEST_LENGTH];
  std::string in = Cat(serial, "/", node);
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), h);
  uint32_t x = (uint32_t(h[0]) << 24) | (uint32_t(h[1]) << 16) | (uint32_t(h[2]) << 8) | h[3];
  double frac = 0.60 + 0.15 * (static_cast<double>(x) / 4294967296.0);
  int64_t life = std::max<int64_t>(0, not_after - not_before);
  return not_before + static_cast<int64_t>(static_cast<double>(life) * frac);
}

int64_t Agent::BackoffMs(int attempt) const {
  double d = static_cast<double>(c_.retry_min_ms) * std::pow(2.0, std::min(attempt, 30));
  d = std::min(d, static_cast<double>(c_.retry_max_ms));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return static_cast<int64_t>(d * jitter(rng));
}

absl::Status Agent::EnsureToken() {
  if (c_.token_path.empty()) {
    if (c_.token.empty())
      return absl::FailedPreconditionError("no token: set COFFER_TOKEN or give -config");
    api_.set_token(c_.token);
    return absl::OkStatus();
  }
  files::WriteOptions w;
  w.mode = 0600;
  if (!unsaved_token_.empty()) {
    // The init token is spent: this token is the node's only one until it is on disk.
    if (WriteTokenFile(c_.token_path, unsaved_token_).ok()) {
      log::Info("agent: saved the node token", {{"path", c_.token_path}});
      (void)files::Wipe(c_.init_token_path);
      std::fill(unsaved_token_.begin(), unsaved_token_.end(), '\0');
      unsaved_token_.clear();
    }
    return absl::OkStatus();  // api_ holds it
  }
  ASSIGN_OR_RETURN(std::string have, ReadTokenFile(c_.token_path));
  if (!have.empty()) {
    api_.set_token(std::move(have));  // the buffer itself: no copy of it is freed
    return absl::OkStatus();
  }
  if (c_.init_token_path.empty())
    return absl::FailedPreconditionError(
        Cat("no token at ", c_.token_path, " and no init_token_path configured"));
  ASSIGN_OR_RETURN(std::string init_token, ReadTokenFile(c_.init_token_path));
  absl::Cleanup wipe_init = [&init_token] {
    OPENSSL_cleanse(init_token.data(), init_token.size());
  };
  if (init_token.empty())
    return absl::FailedPreconditionError(
        Cat("no token at ", c_.token_path, " and no init token at ", c_.init_token_path,
            ": ask the operator for one (coffer cluster init-token)"));
  // The init token can be used once: the token file must be writable before it is spent.
  {
    const std::string probe = c_.token_path + ".coffer-probe";
    auto st = files::WriteAtomic(probe, "", w);
    ::unlink(probe.c_str());
    if (!st.ok())
      return absl::FailedPreconditionError(Cat("the node token could not be saved at ",
                                               c_.token_path, " (", std::string(st.message()),
                                               "): fix that first; the init token was not used"));
  }
  http::Api with_init = api_;
  with_init.set_token(init_token);
  json::object body{{"display_name", Cat("node-", c_.node_name)}};
  if (!c_.node_name.empty()) body["meta"] = json::object{{"node", c_.node_name}};
  auto r = with_init.Write(Cat("auth/token/create/", c_.token_role), body);
  with_init.set_token("");
  if (!r.ok()) {
    if (absl::IsPermissionDenied(r.status()))
      return absl::PermissionDeniedError(
          Cat("the init token at ", c_.init_token_path,
              " was refused (used, expired or revoked): ask the operator for a new one "
              "(coffer cluster init-token); server said: ",
              std::string(r.status().message())));
    return r.status();
  }
  const json::value* a = r->if_contains("auth");
  if (!a || !a->is_object()) return absl::InternalError("token create returned no auth block");
  std::string token = Field(a->as_object(), "client_token");
  api_.set_token(token);
  if (auto st = WriteTokenFile(c_.token_path, token); !st.ok()) {
    // Kept in memory and saved as soon as the file can be written: losing it would leave the
    // node without a token (the init token is spent).
    log::Error("agent: the node token could not be saved; it is kept in memory until it can be",
               {{"path", c_.token_path}, {"error", std::string(st.message())}});
    unsaved_token_ = std::move(token);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(files::Wipe(c_.init_token_path));
  std::fill(token.begin(), token.end(), '\0');
  log::Info("agent: exchanged the init token for the node token; init token wiped",
            {{"token_role", c_.token_role}, {"accessor", Field(a->as_object(), "accessor")}});
  return absl::OkStatus();
}

Agent::~Agent() { OPENSSL_cleanse(unsaved_token_.data(), unsaved_token_.size()); }

absl::StatusOr<int64_t> Agent::RenewToken() {
  RETURN_IF_ERROR(EnsureToken());
  ASSIGN_OR_RETURN(auto r, api_.Write("auth/token/renew-self", json::object{}));
  const json::value* a = r.if_contains("auth");
  int64_t ttl = 0;
  if (a && a->is_object())
    if (auto* d = a->as_object().if_contains("lease_duration"); d && d->is_number())
      ttl = d->is_int64() ? d->as_int64() : 0;
  log::Info("agent: renewed the node token", {{"ttl", Cat(ttl, "s")}});
  return ttl;
}

absl::StatusOr<int64_t> Agent::TokenTtl() {
  RETURN_IF_ERROR(EnsureToken());
  ASSIGN_OR_RETURN(auto d, api_.Read("auth/token/lookup-self"));
  if (auto* t = d.if_contains("ttl"); t && t->is_int64()) return t->as_int64();
  return 0;
}

CertState Agent::Inspect(const CertSpec& s) const {
  CertState st;
  std::string cert_pem;
  crypto::SecretBytes key_pem;
  std::string key_error;            // why the key could not be read, when it exists
  bool kubeconfig_present = false;  // read whole below: opening it again would say nothing new
  if (!s.cert_file.empty()) {
    auto c = files::ReadIfExists(s.cert_file);
    if (c.ok() && *c) cert_pem = **c;
    if (auto k = crypto::ReadSecretFile(s.key_file); !k.ok())
      key_error = std::string(k.status().message());
    else if (*k)
      key_pem = std::move(**k);
  } else if (auto kc = crypto::ReadSecretFile(s.kubeconfig.path); !kc.ok()) {
    key_error = std::string(kc.status().message());
  } else if (*kc) {
    kubeconfig_present = true;
    cert_pem = KubeconfigCert((*kc)->view());
    key_pem = KubeconfigKey((*kc)->view());
  }
  if (cert_pem.empty()) {
    st.reason = "no certificate yet";
    st.new_key = key_pem.empty();
    return st;
  }
  auto cert = crypto::ParseCertPem(cert_pem);
  if (!cert.ok()) {
    st.reason = "the certificate file is unreadable";
    return st;
  }
  st.present = true;
  st.serial = crypto::SerialColon(cert->get());
  st.not_before = crypto::NotBeforeUnix(cert->get());
  st.not_after = crypto::NotAfterUnix(cert->get());
  st.renew_at = RenewAt(st.not_before, st.not_after, st.serial, c_.node_name);
  auto key = crypto::ParsePrivateKeyPem(key_pem.view());
  key_pem.Wipe();
  if (!key.ok()) {
    // The renewal logs this reason as it makes a new key.
    st.reason = key_error.empty() ? "the key file is missing or unreadable"
                                  : Cat("the key cannot be read (", key_error, ")");
    st.new_key = true;
    return st;
  }
  auto spec = crypto::DescribeKey(key->get());
  if (!spec.ok() || crypto::KeyTypeName(spec->type) != s.key_type ||
      (s.key_type != "ed25519" && spec->bits != s.key_bits)) {
    st.reason = "the key's type or size differs from the config";
    st.new_key = true;
    return st;
  }
  EVP_PKEY* cert_key = X509_get0_pubkey(cert->get());
  if (!cert_key || !crypto::SameKey(cert_key, key->get())) {
    st.reason = "the key does not match the certificate";
    return st;
  }
  if (crypto::CommonName(X509_get_subject_name(cert->get())) != s.common_name) {
    st.reason = "the common name changed";
    return st;
  }
  std::vector<std::string> dns, ips, want_ips;
  Sans(cert->get(), &dns, &ips);
  for (const auto& ip : s.ip_sans) want_ips.push_back(IpBytes(ip));
  if (Sorted(dns) != Sorted(s.dns_sans) || Sorted(ips) != Sorted(want_ips)) {
    st.reason = "the SANs changed";
    return st;
  }
  if (!s.cert_file.empty() && !s.ca_file.empty()) {
    auto ca = files::ReadIfExists(s.ca_file);
    if (!ca.ok() || !*ca) {
      st.reason = "the CA file is missing";
      return st;
    }
  }
  if (!s.kubeconfig.path.empty() && !kubeconfig_present) {
    if (!RegularFileReadable(s.kubeconfig.path)) {  // its content (with the key) not read
      st.reason = "the kubeconfig is missing";
      return st;
    }
  }
  const int64_t now = clock_->NowUnix();
  if (now >= st.not_after) {
    st.reason = "expired";
  } else if (now >= st.renew_at) {
    st.reason = "past its renewal point";
  }
  return st;
}

const RotationState* Agent::RotationFor(const CertSpec& s) const {
  if (!rotation_ || !s.role.starts_with(rotation_->mount + "/")) return nullptr;
  return &*rotation_;
}

std::string Agent::SignPath(const CertSpec& s) const {
  const RotationState* r = RotationFor(s);
  if (!r || r->issuer.empty()) return s.role;
  std::string_view rest = std::string_view(s.role).substr(r->mount.size() + 1);
  if (!rest.starts_with("sign/")) return s.role;  // the config names an issuer itself
  return Cat(r->mount, "/issuer/", r->issuer, "/", rest);
}

namespace {

// An exclusive flock on <token_path>.lock for as long as it lives (none without a token path):
// two agents of one node (the daemon, and `agent renew` run by hand or a timer unit) renew
// one at a time. Otherwise one could write a certificate for the key it read while the other
// writes a new key, leaving a pair that does not match.
class RenewLock {
 public:
  static absl::StatusOr<RenewLock> Take(const std::string& token_path) {
    RenewLock l;
    if (token_path.empty()) return l;
    const std::string path = token_path + ".lock";
    l.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l.fd_ < 0)
      return absl::FailedPreconditionError(Cat("cannot open ", path, ": ", std::strerror(errno)));
    while (::flock(l.fd_, LOCK_EX) != 0)
      if (errno != EINTR)
        return absl::FailedPreconditionError(Cat("cannot lock ", path, ": ", std::strerror(errno)));
    return l;
  }
  RenewLock(RenewLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RenewLock& operator=(RenewLock&&) = delete;
  RenewLock(const RenewLock&) = delete;
  RenewLock& operator=(const RenewLock&) = delete;
  ~RenewLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  RenewLock() = default;
  int fd_ = -1;
};

}  // namespace

absl::StatusOr<CertState> Agent::Renew(const CertSpec& s, bool rotate_key, bool run_hook) {
  RETURN_IF_ERROR(EnsureToken());
  // From reading the key to writing the set: one agent of this node at a time.
  ASSIGN_OR_RETURN(RenewLock lock, RenewLock::Take(c_.token_path));
  CertState before = Inspect(s);
  crypto::PKey key;
  bool new_key = rotate_key || before.new_key;
  if (!new_key) {
    auto parsed = crypto::ParsePrivateKeyPem(ReadKeyPem(s).view());
    if (parsed.ok()) {
      key = std::move(*parsed);
    } else {
      new_key = true;
    }
  }
  if (new_key) {
    ASSIGN_OR_RETURN(auto spec, crypto::ParseKeySpec(s.key_type, s.key_bits));
    ASSIGN_OR_RETURN(key, crypto::GenerateKey(spec));
  }
  crypto::CsrRequest req;
  req.common_name = s.common_name;
  req.dns_names = s.dns_sans;
  req.ip_sans = s.ip_sans;
  ASSIGN_OR_RETURN(std::string csr, crypto::MakeCsrPem(key.get(), req));
  json::object body{{"csr", csr},
                    {"common_name", s.common_name},
                    {"alt_names", Join(s.dns_sans)},
                    {"ip_sans", Join(s.ip_sans)},
                    {"exclude_cn_from_sans", true},
                    {"format", "pem"}};
  if (s.ttl > 0) body["ttl"] = Cat(s.ttl, "s");
  const std::string path = SignPath(s);
  ASSIGN_OR_RETURN(auto resp, api_.Write(path, body));
  const json::value* dv = resp.if_contains("data");
  if (!dv || !dv->is_object()) return absl::InternalError(Cat(path, " returned no data"));
  const auto& d = dv->as_object();
  // What comes back is checked before anything on disk is replaced: a certificate for this
  // key, valid now, and a CA to go with it (a role path that is not a PKI sign endpoint, or a
  // broken answer, must not overwrite working files).
  std::string cert_pem = Field(d, "certificate") + "\n";
  {
    auto cert = crypto::ParseCertPem(cert_pem);
    if (!cert.ok())
      return absl::InternalError(
          Cat(path, " returned no readable certificate: nothing was written (", s.name, ")"));
    EVP_PKEY* cert_key = X509_get0_pubkey(cert->get());
    if (!cert_key || !crypto::SameKey(cert_key, key.get()))
      return absl::InternalError(Cat(path, " returned a certificate for another key than the ",
                                     "request's: nothing was written (", s.name, ")"));
    if (crypto::NotAfterUnix(cert->get()) <= clock_->NowUnix())
      return absl::InternalError(
          Cat(path, " returned a certificate already expired: nothing was written (", s.name, ")"));
  }
  std::string ca_pem;
  if (auto* chain = d.if_contains("ca_chain");
      chain && chain->is_array() && !chain->as_array().empty()) {
    for (const auto& c : chain->as_array())
      if (c.is_string()) ca_pem += std::string(c.as_string()) + "\n";
  } else {
    ca_pem = Field(d, "issuing_ca") + "\n";
  }
  if (ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    return absl::InternalError(
        Cat(path, " returned no CA certificate: nothing was written (", s.name, ")"));
  // During a CA rotation the CA file holds what the phase says (the old and new CAs, or one).
  if (const RotationState* r = RotationFor(s); r && !r->ca_pem.empty()) ca_pem = r->ca_pem;
  // A leaf of a cross-signed new CA is sent with the cross-signed certificate: a client that
  // trusts only the old CA builds leaf -> new CA (certified by the old) -> old CA.
  for (const auto& cross : cross_pems_)
    if (CertifiedBy(cert_pem, cross, clock_->NowUnix())) {
      cert_pem += cross;
      break;
    }
  ASSIGN_OR_RETURN(auto key_pem, crypto::PrivateKeyPem(key.get(), "pkcs8"));
  files::WriteOptions kw{0600, s.owner, s.group};
  files::WriteOptions cw{static_cast<mode_t>(s.mode), s.owner, s.group};
  files::WriteOptions caw{0644, s.owner, s.group};
  if (!s.cert_file.empty()) {
    // Key (when it changed), certificate and CA change together: all three are written and
    // fsynced before the first rename, so a reader sees the new key with the old certificate for
    // the instant between two renames at most, and a failed write replaces nothing.
    std::vector<files::FileWrite> writes;
    if (new_key) writes.push_back({s.key_file, key_pem.view(), kw});
    writes.push_back({s.cert_file, cert_pem, cw});
    if (!s.ca_file.empty()) writes.push_back({s.ca_file, ca_pem, caw});
    RETURN_IF_ERROR(files::WriteAtomicTogether(writes));
  }
  if (!s.kubeconfig.path.empty()) {
    std::string kc = RenderKubeconfig(s.kubeconfig, ca_pem, cert_pem, key_pem.view());
    auto st = files::WriteAtomic(s.kubeconfig.path, kc, kw);
    std::fill(kc.begin(), kc.end(), '\0');
    RETURN_IF_ERROR(st);
  }
  CertState after = Inspect(s);
  log::Info("agent: renewed certificate",
            {{"certificate", s.name},
             {"serial", Field(d, "serial_number")},
             {"expiration", Rfc3339(after.not_after)},
             {"remaining", SpanText(after.not_after - clock_->NowUnix())},
             {"renew_at", Rfc3339(after.renew_at)},
             {"new_key", new_key ? "true" : "false"},
             {"reason", before.reason.empty() ? "forced" : before.reason}});
  if (run_hook && !s.exec.empty()) (void)RunHook(s.exec, s.name, c_.hook_timeout_ms);
  return after;
}

absl::Status Agent::FetchSecret(const SecretSpec& s) {
  RETURN_IF_ERROR(EnsureToken());
  ASSIGN_OR_RETURN(auto d, api_.Read(s.path));
  const json::value* v = d.if_contains(s.field);
  // kv v2 nests the fields under data.data.
  if (!v)
    if (auto* inner = d.if_contains("data"); inner && inner->is_object())
      v = inner->as_object().if_contains(s.field);
  if (!v) return absl::NotFoundError(Cat(s.path, " has no field \"", s.field, "\""));
  std::string text = v->is_string() ? std::string(v->as_string()) : json::serialize(*v);
  auto have = files::ReadIfExists(s.dest);
  const bool same = have.ok() && *have && **have == text;
  if (have.ok() && *have) std::fill((*have)->begin(), (*have)->end(), '\0');
  if (same) {
    // Unchanged, but a mode loosened by hand (a 0644 key) is put back as configured.
    struct stat sb {};
    if (::stat(s.dest.c_str(), &sb) == 0 && (sb.st_mode & 07777) == s.mode) {
      std::fill(text.begin(), text.end(), '\0');
      return absl::OkStatus();
    }
  }
  files::WriteOptions w{static_cast<mode_t>(s.mode), s.owner, s.group};
  auto st = files::WriteAtomic(s.dest, text, w);
  std::fill(text.begin(), text.end(), '\0');
  RETURN_IF_ERROR(st);
  log::Info("agent: wrote secret", {{"path", s.path}, {"field", s.field}, {"dest", s.dest}});
  return absl::OkStatus();
}

absl::Status Agent::Heartbeat() {
  if (c_.node_registry.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(LoadAck());  // the entry is written whole: keep the stored acknowledgement
  json::object certs, cas;
  for (const auto& spec : c_.certificates) {
    CertState st = Inspect(spec);
    certs[spec.name] =
        json::object{{"serial", st.serial}, {"not_after", st.not_after}, {"present", st.present}};
    if (spec.ca_file.empty() || cas.contains(spec.ca_file)) continue;
    cas[spec.ca_file] = CaFingerprints(spec.ca_file);
  }
  json::object entry{{"node", c_.node_name},
                     {"agent_version", COFFER_VERSION},
                     {"certificates", std::move(certs)},
                     {"ca_files", std::move(cas)}};
  if (!ack_.empty()) entry["rotation"] = ack_;
  RETURN_IF_ERROR(api_.Write(Cat(c_.node_registry, "/data/", c_.node_name),
                             json::object{{"data", std::move(entry)}})
                      .status());
  ack_dirty_ = false;
  return absl::OkStatus();
}

absl::Status Agent::LoadAck() {
  if (ack_loaded_ || c_.node_registry.empty()) return absl::OkStatus();
  // After a restart: what this node last acknowledged, from its own registry entry (written back
  // with every heartbeat, so it must be known before the first one).
  auto mine = api_.Read(Cat(c_.node_registry, "/data/", c_.node_name));
  if (!mine.ok() && !absl::IsNotFound(mine.status())) return mine.status();
  if (mine.ok())
    if (auto* d = mine->if_contains("data"); d && d->is_object())
      if (auto* r = d->as_object().if_contains("rotation"); r && r->is_object())
        ack_ = r->as_object();
  ack_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<json::object>> Agent::ReadRotation() {
  // The document's key: cluster/rotation.h kRotationKey (not a valid node name).
  auto r = api_.Read(Cat(c_.node_registry, "/data/_rotation"));
  if (!r.ok() && absl::IsNotFound(r.status())) return std::optional<json::object>();
  if (!r.ok() && absl::IsPermissionDenied(r.status())) {
    // A cluster set up before CA rotation existed: its node policies do not name the document
    // (`rotate-ca` updates them). Said once, not at every poll.
    if (!rotation_denied_logged_)
      log::Info("agent: this node may not read the cluster's CA rotation document yet",
                {{"path", Cat(c_.node_registry, "/data/_rotation")}});
    rotation_denied_logged_ = true;
    return std::optional<json::object>();
  }
  if (!r.ok()) return r.status();
  const json::value* dv = r->if_contains("data");
  if (!dv || !dv->is_object()) return std::optional<json::object>();
  const json::object& doc = dv->as_object();
  // A document this agent cannot act on safely is an error, not a reason to act.
  const std::string phase = JsonStringOr(doc, "phase");
  if (phase != "done" && phase != "aborted") {
    for (const char* k : {"id", "mount", "old_issuer", "new_issuer"})
      if (JsonStringOr(doc, k).empty())
        return absl::DataLossError(Cat("the CA rotation document has no \"", k, "\""));
    for (const char* k : {"old_pem", "new_pem"})
      if (!crypto::ParseCertPem(JsonStringOr(doc, k)).ok())
        return absl::DataLossError(Cat("the CA rotation document's ", k, " is not a certificate"));
  }
  if (const json::value* c = doc.if_contains("crosses"); c && c->is_object())
    for (const auto& [mount, pem] : c->as_object())
      if (!pem.is_string() || !crypto::ParseCertPem(pem.as_string()).ok())
        return absl::DataLossError(Cat("the CA rotation document's cross-signed certificate for ",
                                       std::string(mount), " is not a certificate"));
  return std::optional<json::object>(doc);
}

absl::Status Agent::Rotate(bool act) {
  if (c_.node_registry.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(EnsureToken());
  RETURN_IF_ERROR(LoadAck());
  if (ack_dirty_) RETURN_IF_ERROR(Heartbeat());
  ASSIGN_OR_RETURN(auto got, ReadRotation());
  cross_pems_.clear();
  if (!got) {
    rotation_.reset();
    return absl::OkStatus();
  }
  const json::object& doc = *got;
  const std::string id = JsonStringOr(doc, "id"), phase = JsonStringOr(doc, "phase");
  if (const json::value* c = doc.if_contains("crosses"); c && c->is_object())
    for (const auto& [mount, pem] : c->as_object())
      if (pem.is_string()) cross_pems_.push_back(Line(std::string(pem.as_string())));
  bool member = false;
  if (auto* n = doc.if_contains("nodes"); n && n->is_array())
    for (const auto& v : n->as_array())
      member = member || (v.is_string() && v.as_string() == c_.node_name);
  if (phase == "done" || phase == "aborted" || !member) {
    // Finished (the mount's default issuer is the right one again) or not this node's: a node
    // added to the cluster during a rotation follows the defaults and is brought onto the final
    // CA by `agent once --force` afterwards (docs/rotation.md).
    rotation_.reset();
    // Outside any phase (no batch to keep to): certificate files still without the
    // cross-signed certificate that belongs with them get it.
    return act ? RepairCrossChains() : absl::OkStatus();
  }
  const bool same = JsonStringOr(ack_, "id") == id;
  const std::string acked = same ? JsonStringOr(ack_, "phase") : std::string();
  const bool done = same && JsonStringOr(ack_, "state") == "done";
  // Renewals between phases follow the last phase this node finished (a failed phase keeps the
  // one before it).
  const std::string last_done = done   ? acked
                                : same ? JsonStringOr(ack_, "last_done")
                                       : std::string();
  rotation_ = last_done.empty() ? std::nullopt : PhaseState(doc, last_done);
  if (!act) return absl::OkStatus();
  if (acked == phase && done) return RepairCaFiles();
  if (acked == phase && JsonIntOr(ack_, "generation") == JsonIntOr(doc, "generation"))
    return absl::OkStatus();  // failed here: waits for `rotation resume`
  bool mine = false;
  if (auto* b = doc.if_contains("batch"); b && b->is_object())
    mine = b->as_object().contains(c_.node_name);
  if (!mine) return absl::OkStatus();  // waits for its turn (max_unavailable)
  return RotationPhase(doc, phase, last_done);
}

// A CA file of the rotated mount that no longer holds what the finished phase wrote (rewritten
// by hand, by a renewal of an older agent) is written again, and its certificates' hooks run.
absl::Status Agent::RepairCaFiles() {
  if (!rotation_) return absl::OkStatus();
  std::vector<std::string> hooks;
  for (const auto& s : c_.certificates) {
    if (!RotationFor(s) || s.ca_file.empty() || s.cert_file.empty()) continue;
    auto have = files::ReadIfExists(s.ca_file);
    if (have.ok() && *have && **have == rotation_->ca_pem) continue;
    log::Warn("agent: CA file differs from the rotation's; writing it again",
              {{"file", s.ca_file}, {"rotation", rotation_->id}});
    RETURN_IF_ERROR(files::WriteAtomic(s.ca_file, rotation_->ca_pem,
                                       files::WriteOptions{0644, s.owner, s.group}));
    if (!s.exec.empty() && std::find(hooks.begin(), hooks.end(), s.exec) == hooks.end())
      hooks.push_back(s.exec);
  }
  for (const auto& h : hooks) (void)RunHook(h, "CA file", c_.hook_timeout_ms);
  return absl::OkStatus();
}

absl::Status Agent::RepairCrossChains() {
  if (cross_pems_.empty()) return absl::OkStatus();
  std::vector<std::string> hooks;
  const int64_t now = clock_->NowUnix();
  for (const auto& s : c_.certificates) {
    if (s.cert_file.empty()) continue;
    auto have = files::ReadIfExists(s.cert_file);
    if (!have.ok() || !*have) continue;
    const std::string& text = **have;
    const size_t end = text.find("-----END CERTIFICATE-----");
    if (end == std::string::npos) continue;
    const std::string leaf = Line(text.substr(0, end + 25));
    for (const auto& cross : cross_pems_) {
      if (!CertifiedBy(leaf, cross, now)) continue;
      if (text == leaf + cross) break;
      log::Info("agent: adding the cross-signed CA certificate to a certificate file",
                {{"file", s.cert_file}, {"certificate", s.name}});
      RETURN_IF_ERROR(
          files::WriteAtomic(s.cert_file, leaf + cross,
                             files::WriteOptions{static_cast<mode_t>(s.mode), s.owner, s.group}));
      if (!s.exec.empty() && std::find(hooks.begin(), hooks.end(), s.exec) == hooks.end())
        hooks.push_back(s.exec);
      break;
    }
  }
  for (const auto& h : hooks) (void)RunHook(h, "cross-signed chain", c_.hook_timeout_ms);
  return absl::OkStatus();
}

absl::Status Agent::RotationPhase(const json::object& doc, const std::string& phase,
                                  const std::string& last_done) {
  const std::string id = JsonStringOr(doc, "id"), mount = JsonStringOr(doc, "mount");
  rotation_ = PhaseState(doc, phase);
  if (!rotation_) return absl::InvalidArgumentError(Cat("unknown rotation phase \"", phase, "\""));
  log::Info("agent: CA rotation", {{"id", id}, {"phase", phase}, {"mount", mount}});
  std::string error, output;
  std::vector<std::string> hooks;
  json::object fps;
  for (const auto& s : c_.certificates) {
    if (!RotationFor(s)) continue;
    if (!s.exec.empty() && std::find(hooks.begin(), hooks.end(), s.exec) == hooks.end())
      hooks.push_back(s.exec);
    absl::Status st;
    if (phase == "reissue") {
      st = Renew(s, /*rotate_key=*/true, /*run_hook=*/false).status();
    } else if (phase == "abort-reissue" || !s.kubeconfig.path.empty()) {
      // Back on the old issuer (the key stays); or a kubeconfig, whose CA is embedded next to
      // its certificate.
      st = Renew(s, false, false).status();
    } else if (!s.cert_file.empty() && !s.ca_file.empty()) {
      auto have = files::ReadIfExists(s.ca_file);
      if (!have.ok() || !*have || **have != rotation_->ca_pem)
        st = files::WriteAtomic(s.ca_file, rotation_->ca_pem,
                                files::WriteOptions{0644, s.owner, s.group});
    }
    if (!st.ok()) {
      error = PrintableText(Cat(s.name, ": ", std::string(st.message())), 1024);
      break;
    }
    if (!s.ca_file.empty()) fps[s.ca_file] = json::array();
  }
  // Hooks learn which phase they run for (a restart may only be needed once the new CA is
  // trusted). Set in the hook's own shell, not with setenv: the watcher thread reads this
  // process's environment (name lookups). The phase is one PhaseState knows; the id is checked
  // to be a plain name.
  std::string env;
  if (std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      }))
    env = Cat("COFFER_ROTATION_ID=", id, " COFFER_ROTATION_PHASE=", phase,
              "; export COFFER_ROTATION_ID COFFER_ROTATION_PHASE\n");
  for (size_t i = 0; error.empty() && i < hooks.size(); ++i) {
    const int rc = RunShellCaptured(Cat(env, hooks[i]), &output, 4096, c_.hook_timeout_ms);
    if (rc != 0) {
      error = PrintableText(Cat("hook \"", hooks[i], "\" exited with ", rc), 1024);
    } else {
      output.clear();
    }
  }
  for (auto& [file, list] : fps) list = CaFingerprints(std::string(file));
  ack_ = json::object{{"id", id},
                      {"phase", phase},
                      {"generation", JsonIntOr(doc, "generation")},
                      {"state", error.empty() ? "done" : "failed"},
                      {"last_done", error.empty() ? phase : last_done},
                      {"error", error},
                      {"output", output},
                      {"ca_fingerprints", std::move(fps)},
                      {"at", clock_->NowUnix()}};
  ack_dirty_ = true;
  if (error.empty()) {
    log::Info("agent: CA rotation phase done", {{"id", id}, {"phase", phase}});
  } else {
    log::Error("agent: CA rotation phase failed",
               {{"id", id}, {"phase", phase}, {"error", error}, {"output", output}});
  }
  RETURN_IF_ERROR(Heartbeat());
  if (!error.empty()) return absl::FailedPreconditionError(error);
  return absl::OkStatus();
}

void Agent::WatchRotation(const http::Api& api, const std::atomic<bool>* stop,
                          std::atomic<bool>* changed) const {
  // This node's turn key (cluster/rotation.h): written by the driver when the node is let into a
  // phase, so a rotation of a thousand nodes wakes each agent once per phase, not at every
  // change of the document.
  const std::string path = Cat(c_.node_registry, "/data/_turn/", c_.node_name);
  const int64_t wait_ms = c_.rotation_wait_ms;
  auto pause = [&](int64_t ms) {
    for (int64_t t = 0; t < ms && !stop->load(); t += 200)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  };
  int64_t have = -1;  // the version of the key seen last; -1: not read yet
  int attempt = 0;
  while (!stop->load()) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = have < 0 ? api.Read(path)
                      : api.Read(Cat(path, "?wait=", wait_ms / 1000, "s&after_version=", have));
    const int64_t took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    int64_t version = have;
    if (r.ok()) {
      version = 0;
      if (const json::value* m = r->if_contains("metadata"); m && m->is_object())
        version = JsonIntOr(m->as_object(), "version");
    } else if (absl::IsNotFound(r.status())) {
      version = std::max<int64_t>(have, 0);  // never written: wait for version 1
    }
    if (r.ok() || absl::IsNotFound(r.status())) {
      if (have >= 0 && version != have) changed->store(true);
      // An answer well before the wait with nothing new (a server without long polls, a deleted
      // key) must not become a busy loop.
      if (have >= 0 && version == have && took < wait_ms / 2) {
        pause(BackoffMs(attempt++));
      } else {
        attempt = 0;
      }
      have = version;
      continue;
    }
    // Not allowed (an older cluster's policy: `rotate-ca` updates it) or the server is away:
    // the loop's periodic read covers it; the watch tries again after a pause.
    changed->store(true);
    pause(absl::IsPermissionDenied(r.status()) ? c_.rotation_poll_ms : BackoffMs(attempt++));
  }
}

bool Agent::Once(bool force) {
  bool ok = true;
  if (auto st = EnsureToken(); !st.ok()) {
    log::Error("agent: no token", {{"error", std::string(st.message())}});
    return false;
  }
  // Renewals below follow a CA rotation in progress (issuer, CA file content).
  if (auto st = Rotate(/*act=*/false); !st.ok())
    log::Warn("agent: could not read the CA rotation", {{"error", std::string(st.message())}});
  for (const auto& s : c_.certificates) {
    CertState st = Inspect(s);
    if (!force && st.reason.empty()) continue;
    auto r = Renew(s);
    if (!r.ok()) {
      log::Error("agent: renewal failed",
                 {{"certificate", s.name}, {"error", std::string(r.status().message())}});
      // Still valid if the current one has not expired.
      if (!st.present || clock_->NowUnix() >= st.not_after) ok = false;
    }
  }
  for (const auto& s : c_.secrets) {
    if (auto st = FetchSecret(s); !st.ok()) {
      log::Error("agent: secret failed", {{"path", s.path}, {"error", std::string(st.message())}});
      ok = false;
    }
  }
  // A CA rotation's phase, when it is this node's turn; a failed phase is reported to the
  // rotation (and logged), not a failed pass.
  if (auto st = Rotate(); !st.ok())
    log::Warn("agent: CA rotation", {{"error", std::string(st.message())}});
  // The registry is informational: a failure to report is logged, not a failed pass.
  if (auto st = Heartbeat(); !st.ok())
    log::Warn("agent: could not update the node registry", {{"error", std::string(st.message())}});
  return ok;
}

void Agent::Run(const std::atomic<bool>* stop) {
  using Ms = int64_t;
  auto now_ms = [this] { return absl::ToUnixMillis(clock_->Now()); };
  struct Item {
    Ms next = 0;
    int attempt = 0;
  };
  std::vector<Item> certs(c_.certificates.size());
  std::vector<Item> secrets(c_.secrets.size());
  Item token;
  Item heartbeat;
  Item rotation;
  bool renewed = false;
  // The rotation document's long poll, on its own thread (its own Api: the loop's sets the
  // token); it only raises `rotation_changed`, the loop acts.
  std::atomic<bool> rotation_changed{false}, watch_stop{false};
  std::thread watcher;
  bool have_token_ttl = false;
  log::Info("agent: started", {{"node", c_.node_name},
                               {"certificates", Cat(c_.certificates.size())},
                               {"server", c_.address}});
  auto fail = [&](Item& it, std::string_view what, const absl::Status& st) {
    Ms d = BackoffMs(it.attempt++);
    it.next = now_ms() + d;
    log::Warn("agent: will retry", {{"what", std::string(what)},
                                    {"error", std::string(st.message())},
                                    {"retry_in", Cat(d, "ms")},
                                    {"attempt", Cat(it.attempt)}});
  };
  while (!stop->load()) {
    Ms now = now_ms();
    // Token: learn its TTL once, then renew at half of it.
    if (token.next <= now) {
      absl::StatusOr<int64_t> ttl = have_token_ttl ? RenewToken() : TokenTtl();
      if (!ttl.ok()) {
        fail(token, "token", ttl.status());
      } else {
        have_token_ttl = true;
        token.attempt = 0;
        // A token without TTL (root-like) is looked at again in an hour.
        token.next = now_ms() + (*ttl > 0 ? *ttl * 500 : int64_t{3600} * 1000);
      }
    }
    if (!c_.node_registry.empty() && have_token_ttl && !watcher.joinable()) {
      // Its own client, made here (the loop owns api_): the same token, and a timeout past the
      // long poll's wait.
      http::ClientOptions wo = api_.options();
      wo.timeout = std::chrono::seconds(c_.rotation_wait_ms / 1000 + 30);
      watcher = std::thread([this, wo, &watch_stop, &rotation_changed] {
        const http::Api api(wo);
        WatchRotation(api, &watch_stop, &rotation_changed);
      });
    }
    // A CA rotation: read when its document changed (or every rotation_poll), before any
    // renewal; the node acts when it is its turn.
    if (rotation_changed.exchange(false)) rotation.next = 0;
    if (!c_.node_registry.empty() && rotation.next <= now_ms()) {
      if (auto st = Rotate(); !st.ok() && !absl::IsFailedPrecondition(st))
        log::Warn("agent: could not follow the CA rotation",
                  {{"error", std::string(st.message())}});
      rotation.next = now_ms() + c_.rotation_poll_ms;
    }
    for (size_t i = 0; i < certs.size(); ++i) {
      if (certs[i].next > now_ms()) continue;
      const CertSpec& s = c_.certificates[i];
      CertState st = Inspect(s);
      // Looked at again every heartbeat even when renewal is weeks away: a file deleted or
      // damaged meanwhile (a `kubeadm reset`, a slip) is put back within one.
      if (st.reason.empty()) {
        certs[i].next = std::min(st.renew_at * 1000, now_ms() + c_.heartbeat_ms);
        continue;
      }
      auto r = Renew(s);
      if (!r.ok()) {
        fail(certs[i], Cat("certificate ", s.name), r.status());
        // Never past expiry without trying: the backoff is capped by retry_max.
        continue;
      }
      certs[i].attempt = 0;
      certs[i].next = std::min(r->renew_at * 1000, now_ms() + c_.heartbeat_ms);
      renewed = true;
    }
    for (size_t i = 0; i < secrets.size(); ++i) {
      if (secrets[i].next > now_ms()) continue;
      auto st = FetchSecret(c_.secrets[i]);
      if (!st.ok()) {
        fail(secrets[i], Cat("secret ", c_.secrets[i].path), st);
        continue;
      }
      secrets[i].attempt = 0;
      secrets[i].next = now_ms() + int64_t{3600} * 1000;  // picked up again hourly (rotations)
    }
    // The node registry: every heartbeat, and at once after a renewal changed what is on disk.
    if (!c_.node_registry.empty() && (heartbeat.next <= now_ms() || renewed)) {
      if (auto st = Heartbeat(); !st.ok()) {
        fail(heartbeat, "node registry", st);
        heartbeat.next = std::min(heartbeat.next, now_ms() + c_.heartbeat_ms);
      } else {
        heartbeat.attempt = 0;
        heartbeat.next = now_ms() + c_.heartbeat_ms;
      }
      renewed = false;
    }
    Ms wake = token.next;
    for (const auto& it : certs) wake = std::min(wake, it.next);
    for (const auto& it : secrets) wake = std::min(wake, it.next);
    if (!c_.node_registry.empty()) wake = std::min({wake, heartbeat.next, rotation.next});
    while (!stop->load() && !rotation_changed.load() && now_ms() < wake)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min<Ms>(200, wake - now_ms())));
  }
  watch_stop.store(true);
  if (watcher.joinable()) watcher.join();  // at most rotation_wait
  log::Info("agent: stopped", {{"node", c_.node_name}});
}

}  // namespace coffer::agent
