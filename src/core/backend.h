// Backend: a logical engine or auth method mounted at a path (kv, pki, token, approle ...), and
// the system backend at sys/. The core hands each request to the backend of the longest matching
// mount, with req.path relative to the mount and req.storage set to the mount's own view
// ("logical/<uuid>/" or "auth/<uuid>/" through the barrier).
//
// A backend declares its special paths (SpecialPaths): the core reads them to decide which
// paths need "sudo", which need no token, and which values are seal-wrapped. The core never
// names an engine's path itself.
//
// Lifecycle (the core calls these, never concurrently with each other for one backend):
//   Initialize()        after the mount is created or loaded at unseal, before any request;
//   InvalidateKey(key)  a key under the backend's view was changed by someone else (another
//                       node, a restore): drop whatever is cached from it;
//   Cleanup()           at unmount or seal; no request runs after it.
// Handle / Exists may run on several threads at once: backends must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/object.hpp"
#include "core/metrics.h"
#include "core/request.h"
#include "util/clock.h"

namespace coffer::core {

class TokenStore;

struct MountEntry {
  std::string path;  // with trailing '/'
  std::string type;
  std::string description;
  std::string uuid;
  std::string accessor;
  int64_t default_lease_ttl = 0;  // 0: the system default
  int64_t max_lease_ttl = 0;
  boost::json::object options;
  bool local = false;
  bool seal_wrap = false;

  boost::json::object ToJson() const;  // Vault's sys/mounts layout
  boost::json::object ToStorage() const;
  static absl::StatusOr<MountEntry> FromStorage(const boost::json::object& o);
};

// A list of paths relative to a mount, in Vault's PathsSpecial syntax: an entry matches exactly,
// or, ending in '*', every path it prefixes; a '+' segment matches any one segment
// ("issuer/+/pem"). Immutable after construction; safe to share between threads.
class PathList {
 public:
  PathList() = default;
  PathList(std::initializer_list<std::string_view> entries);
  explicit PathList(const std::vector<std::string>& entries);
  bool Matches(std::string_view path) const;
  const std::vector<std::string>& entries() const { return entries_; }

 private:
  std::vector<std::string> entries_;
};

// Vault's logical.Paths.
struct SpecialPaths {
  PathList root;               // need "sudo" on top of the operation's capability
  PathList unauthenticated;    // callable without a token (logins, CA certificates, CRLs)
  PathList seal_wrap_storage;  // storage keys whose values the seal wraps as well (Vault's
                               // SealWrapStorage); recorded now, honoured by auto-unseal seals
  // Coffer's own: paths whose work is CPU-heavy (key generation, CRL builds, tidy). The HTTP
  // server runs them on a small bounded pool instead of the connection's event loop, so one
  // of them never stalls the light requests sharing that loop.
  PathList expensive;
  // Coffer's own: path prefixes after which the rest of the path is a secret (a token in the
  // URL, as auth/token/lookup/<token>). The audit log writes that part HMAC'd, as it does a
  // body's token, and the server log never shows it.
  std::vector<std::string> secret_path_prefixes;
};

// What the system knows that a backend may ask (Vault's logical.SystemView).
class SystemView {
 public:
  virtual ~SystemView() = default;
  virtual int64_t DefaultLeaseTtl() const = 0;  // system-wide defaults, seconds
  virtual int64_t MaxLeaseTtl() const = 0;
  // The effective max lease TTL of the mount that `path` (e.g. a token's "auth/approle/login")
  // is under, as tuned now; nullopt when nothing is mounted there.
  virtual std::optional<int64_t> MountMaxTtl(std::string_view path) const { return std::nullopt; }
  // The core's token store; only the token auth method uses it.
  virtual TokenStore* Tokens() const = 0;
};

// Everything a backend factory is given. Pointers outlive the backend.
struct BackendConfig {
  MountEntry entry;
  storage::Storage* storage = nullptr;  // the mount's view through the barrier
  const Clock* clock = nullptr;         // never null
  const SystemView* system = nullptr;   // never null
  // Structured logging with the mount's path attached to every line.
  void LogInfo(std::string_view msg) const;
  void LogWarn(std::string_view msg) const;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<Response> Handle(Request& req) = 0;
  // Whether the target of a write exists, so the core can ask for "create" rather than
  // "update" capability (Vault's existence check). nullopt: the backend does not tell.
  virtual absl::StatusOr<std::optional<bool>> Exists(Request& req) { return std::optional<bool>(); }
  virtual const SpecialPaths& Special() const;
  // Whether a request to `path` (relative to the mount) is CPU-heavy work to run off the
  // connection's event loop. Thread-safe, cheap, no storage access: asked for every request
  // before it runs. Default: `path` is in Special().expensive.
  virtual bool Expensive(std::string_view path) const { return Special().expensive.Matches(path); }
  // Whether a request may wait on storage for long: a durable write (a group commit's fsync), or
  // a listing (it may walk many keys). Such requests leave the event loop for the blocking pool,
  // so the loop's other connections are served meanwhile. Same rules as Expensive (thread-safe,
  // cheap, no storage access). Default: every operation but a read.
  virtual bool MayWait(std::string_view path, Operation op) const {
    return op != Operation::kRead && op != Operation::kHead;
  }

  // Whether a request that MayWait waits only on writes it can defer (Request::defer_write:
  // its writes are its last steps, and it starts them with WriteAsync when allowed). On a store
  // whose writes are asynchronous it then runs on its connection's loop, which answers once the
  // writes are durable. Same rules as Expensive. Default: none.
  virtual bool DefersWrites(std::string_view path, Operation op) const { return false; }

  // Whether a request may run on an HA standby that serves (docs/ha.md): it writes nothing in
  // storage, on this thread or any other, when it succeeds. Same rules as Expensive. Should a
  // request so declared try to write after all, the standby's storage refuses it and the request
  // goes to the active server whole; what is not declared goes there without being tried.
  // Default: reads and lists.
  virtual bool ServesOnStandby(std::string_view path, Operation op) const {
    return op == Operation::kRead || op == Operation::kList || op == Operation::kHead;
  }

  virtual absl::Status Initialize() { return absl::OkStatus(); }
  virtual void InvalidateKey(std::string_view key) {}
  virtual void Cleanup() {}
  // A lease this backend granted (Response::secret) expired or was revoked: undo what it gave
  // (a certificate is revoked). `req` carries the mount's storage and the path the secret was
  // issued on; an error keeps the lease, to be tried again (unless the revocation is forced).
  virtual absl::Status RevokeLease(Request& req, const boost::json::object& internal) {
    return absl::OkStatus();
  }

  // OpenAPI path items for this backend's paths, keys prefixed with `mount_path` ("/pki/").
  virtual void OpenApi(std::string_view mount_path, boost::json::object& paths) const {}

  // Gauges for sys/metrics, computed when the metrics are read (PKI: each issuer's expiry, the
  // stored and revoked certificates). The core adds the mount's path as the first label,
  // `mount`. Called under the mount's gate, so never after Cleanup(), but concurrently with
  // requests and with other reads of the metrics; it must stay cheap however large the mount
  // (cache, bound or rate-limit what costs storage reads). Errors are the backend's to log: a
  // sample it cannot compute is left out. Default: none.
  virtual void AppendMetrics(std::vector<MetricSample>& out) {}
};

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const BackendConfig& config)>;

}  // namespace coffer::core
