// EtcdStorage: Coffer's storage on an etcd v3 cluster (the store every Kubernetes control plane
// already runs), configured with the keys of Vault's etcd backend:
//
//   storage "etcd" {
//     address         = "https://127.0.0.1:2379,https://127.0.0.2:2379"
//     etcd_api        = "v3"            # v2 is refused: etcd 3.4+ has no v2 store by default
//     path            = "/coffer/"      # every key lives under this prefix
//     tls_ca_file     = "/etc/coffer/etcd-ca.crt"
//     tls_cert_file   = "/etc/coffer/etcd-client.crt"
//     tls_key_file    = "/etc/coffer/etcd-client.key"
//     tls_server_name = "etcd.example"  # when the certificate does not name the address
//     username = "coffer"  password = "..."   # etcd's own authentication, when enabled
//     request_timeout = "5s"
//   }
//
// It speaks etcd's v3 JSON gateway (`/v3/kv/...`, the same gRPC service etcd serves, transcoded
// by etcd itself) over Coffer's HTTP client with kept-alive connections; docs/ha.md says why not
// gRPC. Keys and values are base64 in the JSON, so any bytes are stored.
//
// - Get/Put/Delete are one range/put/deleterange each; a batch (`Write`) is one etcd transaction,
//   all or nothing. etcd refuses a transaction that names a key twice, so a batch keeps only the
//   last operation on each key (the outcome of applying them in order). A batch larger than
//   etcd's --max-txn-ops (128 by default; `max_txn_ops` here when the cluster allows more) is
//   refused rather than split, since a split batch would not be atomic.
// - List pages a prefix range with keys_only, and jumps over a sub-folder with one more range,
//   so its cost follows the page, not the folder's depth.
// - Several endpoints: a read that cannot reach one (connection refused, TLS failure, timeout,
//   5xx) moves to the next and stays there while it answers. A write moves on only when it
//   cannot have reached the first (no connection, or etcd has no leader): sent twice, a put
//   repeated late could undo a later write. Otherwise it fails as "may or may not have been
//   applied", as any storage timeout does.
// - etcd authentication: a token from /v3/auth/authenticate, fetched again when etcd says it
//   expired. The password is kept only for that, never logged, and refused over http://.
//
// - One server per path: Open takes `<path>core/lock` with a lease (TTL `lock_timeout`, 15 s),
//   kept alive by a thread, waiting up to twice the TTL for a previous holder's lease to lapse
//   (a server killed without closing), and refusing to start if another server keeps it. Every
//   write is a transaction that also checks the lock key is still the one this server created
//   (fencing): once the lease is lost, no write of this server reaches etcd, and writes fail
//   saying so until the keeper takes the lock again, which it does only if nobody held it in
//   between (an epoch key every acquisition moves is still at our acquisition's revision): then
//   nobody else can have written. Reads are not fenced (see docs/ha.md). Closing gives the lock
//   back. The lock and epoch keys are never listed, cannot be written through this interface,
//   and DeletePrefix (init clears core/) leaves them.
//
// All methods are safe to call from several threads. A write that returned OK was committed by
// a quorum of the etcd cluster (etcd's own durability: fsynced on a majority).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json.hpp"
#include "http/client.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::etcd {

struct EtcdOptions {
  std::vector<std::string> endpoints;  // http:// or https:// URLs
  std::string prefix = "/coffer/";
  std::string tls_ca_file, tls_cert_file, tls_key_file, tls_server_name;
  std::string username, password;
  std::chrono::seconds request_timeout{5};
  size_t max_txn_ops = 128;
  // How long a kept-alive connection may sit unused before it is closed (not a config key).
  std::chrono::milliseconds max_idle_time{2000};
  // The lock on the path (see the class comment): its lease's TTL (`lock_timeout`, as Vault's
  // key) and how long Open waits for another holder's lease to lapse.
  bool lock = true;
  // HA (`ha_enabled`): Open takes no lock; the server campaigns for it (Campaign) and writes
  // only while it holds it (a standby's writes are refused).
  bool ha = false;
  std::chrono::seconds lock_ttl{15};
  std::chrono::seconds lock_wait{35};
};

// Reads the `storage "etcd"` options (all strings, as the config parser gives them). Unknown
// values are errors with the key's name.
absl::StatusOr<EtcdOptions> ParseEtcdOptions(const std::map<std::string, std::string>& o);

class EtcdStorage final : public storage::Storage {
 public:
  // Checks the TLS files and that one endpoint answers (a range of the prefix), so a bad
  // address fails at start with the reason.
  static absl::StatusOr<std::unique_ptr<EtcdStorage>> Open(EtcdOptions opts);
  ~EtcdStorage() override;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::Status Write(std::vector<storage::WriteOp> ops) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override;
  absl::Status DeletePrefix(std::string_view prefix) override;
  std::string_view Type() const override { return "etcd"; }

  // One call of the v3 gateway ("kv/range", ...) with failover and authentication; the parsed
  // answer. etcd's own refusals keep etcd's message. For HA and tests.
  // A `write` is not sent again, nor to another endpoint, once it may have reached one.
  absl::StatusOr<boost::json::object> Call(std::string_view method, const boost::json::object& req,
                                           bool write = false);

  const std::string& prefix() const { return opts_.prefix; }

  // The store's current revision (etcd's, all keys).
  absl::StatusOr<int64_t> Revision();
  // What one message of a watch stream carried (WatchOnce).
  struct WatchBatch {
    std::vector<std::string> keys;  // changed or deleted, relative to the prefix
    // Every change under the prefix up to this revision has been delivered (etcd sends a
    // watch's events in revision order): the highest revision seen so far; 0 before any.
    int64_t through = 0;
  };
  // Watches the prefix from revision `*next` on the current endpoint (the next one after a
  // failure); each message's changes go to `on_batch` and *next moves past them. Returns
  // kUnavailable when the stream fails or nothing arrives for `idle` (a stalled member: the
  // caller starts again, elsewhere), OK when *stop is set. OutOfRange: *next was compacted
  // (what changed since is unknown; *next is set to the current revision + 1).
  absl::Status WatchOnce(int64_t* next, std::chrono::milliseconds idle,
                         const std::function<void(const WatchBatch&)>& on_batch,
                         const std::atomic<bool>* stop);
  // Puts this server's heartbeat key `<path>core/ha-heartbeat/<id>` (the backend's own, as the
  // lock: never listed, not fenced) and returns the put's revision. A standby's watch that has
  // delivered that revision has delivered everything committed before the put was sent.
  absl::StatusOr<int64_t> Heartbeat(std::string_view id);

  // HA. Blocks until this server holds the lock (value: what Leader() returns to others, the
  // server's api_addr) or *stop becomes true (then Cancelled).
  absl::Status Campaign(const std::string& value, const std::atomic<bool>* stop);
  // Whether this server holds the lock now (fenced writes go through).
  bool IsLeader() const { return lock_rev_.load() != 0 && !lost_.load(); }
  // The holder's value; empty when nobody holds the lock.
  absl::StatusOr<std::string> Leader();
  // Gives the lock up (step-down, seal): its writes are refused from now on.
  void Resign();
  bool ha() const { return opts_.ha; }

 private:
  explicit EtcdStorage(EtcdOptions opts) : opts_(std::move(opts)) {}
  absl::Status Authenticate(size_t endpoint) ABSL_LOCKS_EXCLUDED(auth_mu_);
  absl::Status AcquireLock();
  absl::StatusOr<int64_t> TryLock(int64_t lease, int64_t epoch_rev, std::string* holder);
  void KeepLease();
  bool IsOwnKey(std::string_view full_key) const;
  absl::Status RefuseOwn(std::string_view key) const;
  // Applies request ops as one transaction, fenced by the lock when held.
  absl::Status Txn(boost::json::array ops);

  EtcdOptions opts_;
  std::vector<std::unique_ptr<http::ConnectionPool>> pools_;
  std::atomic<size_t> current_{0};  // the endpoint calls go to first
  std::atomic<int64_t> lease_{0};
  std::atomic<int64_t> lock_rev_{0};  // the lock key's create_revision; 0: no lock
  std::string holder_;                // who holds it (host, pid, since): set once by Open
  int64_t epoch_rev_ = 0;             // the epoch's revision at our acquisition (keeper only)
  std::atomic<bool> lost_{false};
  std::atomic<bool> stopping_{false};
  std::thread keeper_;
  Mutex auth_flight_mu_ ABSL_ACQUIRED_BEFORE(auth_mu_);  // one Authenticate at a time
  Mutex auth_mu_;
  std::string auth_token_ ABSL_GUARDED_BY(auth_mu_);
};

}  // namespace coffer::etcd
