// Core: owns the seal, the barrier, the token store, the mount table and the router.
//
// A request flows through Handle(): unauthenticated system endpoints (init, unseal, seal-status,
// health, leader) first; then, if sealed, 503; then the token is looked up and the Authorizer
// decides (the place ACL policies plug in); then the longest-prefix mount's backend runs with its
// own storage view. Requests hold a shared lock on the seal state while they run, so sealing
// waits for requests in flight and no request runs against a sealed barrier.
//
// All public methods are safe to call from several threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "barrier/barrier.h"
#include "core/audit.h"
#include "core/backend.h"
#include "core/metrics.h"
#include "core/policy_store.h"
#include "core/request.h"
#include "core/token_store.h"
#include "core/watch.h"
#include "seal/seal.h"
#include "storage/cache_storage.h"
#include "storage/standby_guard.h"
#include "storage/timed_storage.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::core {

// An unseal key share as operators type it: hex or base64 (sys/unseal, sys/rekey, ...).
absl::StatusOr<crypto::SecretBytes> DecodeKeyShare(std::string_view key);

inline constexpr int64_t kSystemDefaultTtl = 768 * 3600;  // Vault's 32 days

struct CoreOptions {
  storage::Storage* physical = nullptr;  // must outlive the core
  // Secrets engine type -> factory and auth method type -> factory ("token" is required);
  // the server fills both from the registry (registry/builtin.h).
  std::map<std::string, BackendFactory> factories;
  std::map<std::string, BackendFactory> auth_factories;
  int64_t default_lease_ttl = kSystemDefaultTtl;
  int64_t max_lease_ttl = kSystemDefaultTtl;
  std::string storage_type = "inmem";
  // Entries of the read cache in front of `physical` (storage/cache_storage.h; Vault's
  // cache_size); 0 for none. Only for a backend this server alone writes: never etcd.
  size_t storage_cache_entries = 0;
  const Clock* clock = RealClock::Get();
  // How often expired tokens are removed in the background (0: never; tests call TidyNow).
  std::chrono::milliseconds tidy_interval{1000};
  // The configured auto seal's wrapper (the `seal "transit"` / `seal "pkcs11"` stanza); null is
  // the Shamir seal. The core owns it.
  std::unique_ptr<seal::Wrapper> seal_wrapper;
  // The stanza marked `disabled = true`: the auto seal this server migrates away from.
  std::unique_ptr<seal::Wrapper> disabled_seal_wrapper;
  // HA (storage "etcd" with ha_enabled, docs/ha.md): the server starts as a standby; its HA loop
  // calls Activate when it holds the storage lock and StepDown when it loses it. ha_leader
  // gives the active server's api_addr ("" when none is known), for sys/leader and redirects.
  bool ha_enabled = false;
  std::function<std::string()> ha_leader;
  std::function<void()> ha_step_down;  // sys/step-down: resign, let a standby take over
  std::string ha_api_addr;             // this server's own api_addr
  // The telemetry stanza (docs/observability.md). Without prometheus_metrics
  // (prometheus_retention_time = 0) sys/metrics?format=prometheus answers 400 "prometheus is
  // not enabled", as Vault's does.
  bool prometheus_metrics = true;
  // Seconds a usage gauge (tokens by policy) is reused before a read of sys/metrics computes it
  // again (usage_gauge_period); 0 leaves the usage gauges out ("none").
  int64_t usage_gauge_period = 600;
  // At most this many label values per usage gauge: the policies with the most tokens.
  int64_t maximum_gauge_cardinality = 500;
};

struct InitResult {
  std::vector<crypto::SecretBytes> keys;           // unseal keys (Shamir)
  std::vector<crypto::SecretBytes> recovery_keys;  // recovery keys (auto seal)
  std::string root_token;                          // sensitive
};

// The cubbyhole engine (wrapping.cc), mounted by the core at "cubbyhole/".
std::unique_ptr<Backend> NewCubbyholeBackend();
// The mount table entry of "cubbyhole/" (a new uuid).
MountEntry CubbyholeEntry();

class Core final : private SystemView {
 public:
  static absl::StatusOr<std::unique_ptr<Core>> Create(CoreOptions opts);
  ~Core();

  // Runs one request end to end. Errors carry the code HttpStatusFor() maps.
  absl::StatusOr<Response> Handle(Request& req) ABSL_LOCKS_EXCLUDED(state_mu_);
  // Long polls parked by the HTTP layer (watch.h).
  WatchHub& watches() { return watches_; }

  // What the HTTP layer asks from the request line and headers alone, before it reads a body
  // or picks the thread a request runs on.
  struct Admission {
    bool expensive = false;      // the backend declared the path expensive (SpecialPaths)
    bool authenticated = false;  // a valid token was checked (check_token)
    bool may_wait = false;       // the backend says it may wait on a storage write (MayWait)
    // It would wait only on writes it can defer, and the store writes asynchronously: it runs
    // on its connection's loop with Request::defer_write, answered when durable (may_wait is
    // then false).
    bool defer_write = false;
  };
  // With check_token, decides as Handle() would before any body is read: sealed is 503, a path
  // that needs no token is admitted, anything else needs a valid token (403 otherwise, audited
  // as Handle() audits a denial). A body too large to read for nothing is thus never read
  // (nor parsed) for an unauthenticated caller. Without check_token it only classifies.
  absl::StatusOr<Admission> Admit(Request& req, bool check_token) ABSL_LOCKS_EXCLUDED(state_mu_);
  // The request's path for a log line: a secret in it (SpecialPaths::secret_path_prefixes)
  // replaced by "<redacted>"; a path never routed (sealed, no such mount), whose secrets are
  // unknown, cut after its second segment.
  static std::string LogPath(const Request& req);

  // Under an auto seal `shares`/`threshold` are the recovery key's, and the server unseals
  // itself once initialized (as Vault). `root_token_id`, when not empty, is the root token
  // itself rather than a random one (the dev server's -dev-root-token-id).
  absl::StatusOr<InitResult> Initialize(int shares, int threshold,
                                        std::string_view root_token_id = {})
      ABSL_LOCKS_EXCLUDED(state_mu_);
  // `key` is hex or base64 as Vault accepts it: an unseal key share, or under an auto seal a
  // recovery key share. With `migrate` the shares of the stored seal move the server to the
  // configured one (Shamir <-> auto seal); without it a pending migration is refused. Returns
  // the seal status after the step.
  absl::StatusOr<boost::json::object> Unseal(std::string_view key, bool reset, bool migrate = false)
      ABSL_LOCKS_EXCLUDED(state_mu_);
  // Under an auto seal: unwraps the stored root key with the seal and unseals. OK when already
  // unsealed; Unavailable while the seal cannot be reached (the reason is kept for
  // sys/seal-status); FailedPrecondition when not initialized or a migration is pending.
  absl::Status AutoUnseal() ABSL_LOCKS_EXCLUDED(state_mu_);
  bool HasAutoSeal() const { return seal_->IsAuto(); }
  // Whether a seal configuration is stored (sys/init has run).
  absl::StatusOr<bool> Initialized();
  absl::Status Seal() ABSL_LOCKS_EXCLUDED(state_mu_);
  absl::StatusOr<boost::json::object> SealStatus() ABSL_LOCKS_EXCLUDED(state_mu_);
  bool Sealed() const ABSL_LOCKS_EXCLUDED(state_mu_);

  // HA. A standby serves sys/seal-status, sys/health, sys/leader and sys/unseal itself (an
  // unseal checks the key and keeps it, so the standby can take over). A standby that holds the
  // root key and has loaded the state (LoadStandbyState: it serves) also runs here whatever may
  // be read-only: signing and issuing without storing, KV and token reads, Transit's encrypt and
  // decrypt. A request that tries to write is answered by Handle with a status for which
  // IsStandbyWrite holds, before anything of it is stored or answered: the server then sends it
  // to the active server. Everything else goes there directly: StandbyRedirect gives its
  // address (nullopt: serve here; "": none known); `try_local` false asks where to send a
  // request this standby tried.
  bool Standby() const ABSL_LOCKS_EXCLUDED(state_mu_);
  // A standby that holds the root key (unsealed by its operator or its auto seal).
  bool StandbyReady() const ABSL_LOCKS_EXCLUDED(state_mu_);
  std::optional<std::string> StandbyRedirect(const Request& req, bool try_local = true) const
      ABSL_LOCKS_EXCLUDED(state_mu_);
  static bool IsStandbyWrite(const absl::Status& s);
  // A ready standby loads mounts, policies, tokens and audit devices read-only and serves (see
  // above); again after a change to the mount or audit table. Called by the HA watch (the
  // server's), which keeps what it loaded current through InvalidateKey and says through
  // SetStandbyCurrent how current it is: every change committed before `as_of` (SteadyMillis)
  // has been applied. A standby not confirmed current as of kStandbyStaleAfterMs ago forwards
  // everything (its caches might hold a revoked token).
  absl::Status LoadStandbyState() ABSL_LOCKS_EXCLUDED(state_mu_);
  bool StandbyServing() const ABSL_LOCKS_EXCLUDED(state_mu_);
  void SetStandbyCurrent(int64_t as_of) {
    int64_t cur = standby_current_at_.load();
    while (cur < as_of && !standby_current_at_.compare_exchange_weak(cur, as_of)) {
    }
  }
  void SetStandbyStale() { standby_current_at_.store(kNeverCurrent); }
  static constexpr int64_t kStandbyStaleAfterMs = 2000;
  static int64_t SteadyMillis();
  // Counts of what a standby did with the requests it took (sys/metrics:
  // coffer.ha.standby_requests{outcome="local"|"forwarded"}: served here, or sent to the
  // active server, forwarded or redirected).
  void CountStandbyRequest(bool local) { (local ? standby_local_ : standby_forwarded_)++; }
  // The key HA request forwarding seals requests with (http/forward.h): derived from the root
  // key, so every server of the cluster holding it (a ready standby, the active server) has the
  // same one. FailedPrecondition without the root key.
  absl::StatusOr<crypto::SecretBytes> ForwardingKey() const ABSL_LOCKS_EXCLUDED(state_mu_);
  bool HaEnabled() const { return opts_.ha_enabled; }
  const std::string& HaApiAddr() const { return opts_.ha_api_addr; }
  // When this server last became the active one (unix seconds; 0 while a standby).
  int64_t ActiveSince() const ABSL_LOCKS_EXCLUDED(state_mu_);
  // Standby -> active: unseals fully with the key it holds (if any) before serving.
  absl::Status Activate() ABSL_LOCKS_EXCLUDED(state_mu_);
  // Active -> standby: drops all state (as a seal does) but keeps the key.
  void StepDown() ABSL_LOCKS_EXCLUDED(state_mu_);

  // Enables a mount directly (dev mode's secret/); same checks as POST sys/mounts/<path>.
  absl::Status EnableMount(MountEntry entry) ABSL_LOCKS_EXCLUDED(state_mu_);

  Metrics& metrics() { return metrics_; }
  // The token store, for tests that lay out tokens no request can make (as an older version
  // left them).
  TokenStore* token_store() { return tokens_.get(); }
  // Reopens audit files (SIGHUP).
  absl::Status ReopenAudit() ABSL_LOCKS_EXCLUDED(state_mu_);
  // The storage view of the mount at `path` (e.g. "pki/"), or null. For tools and benchmarks
  // that fill a mount directly (bench/pki_scale); the view is valid until the mount is
  // disabled or the server sealed.
  storage::Storage* MountStorage(std::string_view path) ABSL_LOCKS_EXCLUDED(state_mu_);
  // A key in storage was changed by someone else (another node on shared storage, a restore):
  // `storage_key` is the barrier path ("logical/<uuid>/role/web", "core/keyring"). The barrier
  // reloads its keyring, the token and policy stores drop the entry, or the owning mount's
  // backend drops what it cached (InvalidateKey); a changed mount or audit table reloads a
  // standby's state (LoadStandbyState).
  absl::Status InvalidateKey(std::string_view storage_key) ABSL_LOCKS_EXCLUDED(state_mu_);
  // Everything cached may be stale (the watch missed changes): a standby reloads its state.
  absl::Status InvalidateAll() ABSL_LOCKS_EXCLUDED(state_mu_);
  // Removes expired tokens now (the background tidy does the same periodically).
  absl::StatusOr<int> TidyNow() ABSL_LOCKS_EXCLUDED(state_mu_);

 private:
  // One backend instance's admission gate. Every request holds `mu` shared while it runs on the
  // backend; unmounting, remounting or re-creating the backend (a tuned option) takes it
  // exclusively, which waits for the requests in flight, and sets `retired`: a request that was
  // routed to the old instance and waited here routes again.
  struct Gate {
    Mutex mu;
    bool retired ABSL_GUARDED_BY(mu) = false;
  };
  struct Mount {
    MountEntry entry;
    // Shared by the Mount objects that tuning replaces the entry of.
    std::shared_ptr<barrier::PrefixView> view;
    std::shared_ptr<Backend> backend;
    std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  };
  // A routed mount whose gate is held shared until this goes out of scope.
  class MountUse {
   public:
    MountUse() = default;
    explicit MountUse(std::shared_ptr<Mount> m) : m_(std::move(m)) {}
    MountUse(MountUse&& o) noexcept : m_(std::move(o.m_)) {}
    MountUse& operator=(MountUse&& o) noexcept {
      Release();
      m_ = std::move(o.m_);
      return *this;
    }
    ~MountUse() { Release(); }
    const std::shared_ptr<Mount>& get() const { return m_; }

   private:
    void Release() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      if (m_) m_->gate->mu.ReaderUnlock();
      m_.reset();
    }
    std::shared_ptr<Mount> m_;
  };

  explicit Core(CoreOptions opts);

  absl::StatusOr<Response> HandleLocked(Request& req) ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  absl::StatusOr<Response> HandleAudit(Request& req, std::string_view p)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  // The system backend's path table (system_backend.cc) and the paths of it served while
  // sealed and without a token.
  std::unique_ptr<Backend> NewSystemBackend();
  static const PathList& PreUnsealPaths();
  absl::StatusOr<Response> OpenApiDocument() ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // Served while sealed, without the seal-state lock (PreUnsealPaths).
  absl::StatusOr<Response> HandleHealth(const Request& req) ABSL_LOCKS_EXCLUDED(state_mu_);
  boost::json::object LeaderStatus() ABSL_LOCKS_EXCLUDED(state_mu_);
  absl::StatusOr<Response> HandleInitRequest(Request& req) ABSL_LOCKS_EXCLUDED(state_mu_);
  absl::StatusOr<Response> HandleUnsealRequest(Request& req) ABSL_LOCKS_EXCLUDED(state_mu_);
  absl::StatusOr<Response> HandlePolicies(Request& req, std::string_view p)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  absl::StatusOr<Response> HandleCapabilities(Request& req, std::string_view p)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  absl::StatusOr<Response> AuthList() ABSL_LOCKS_EXCLUDED(mounts_mu_);
  void TidyLoop() ABSL_LOCKS_EXCLUDED(tidy_mu_, state_mu_);

  // Mount table (sys_mounts.cc).
  absl::Status LoadMounts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_)
      ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::Status PersistMountsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mounts_mu_);
  absl::StatusOr<std::shared_ptr<Mount>> Instantiate(MountEntry entry);
  std::shared_ptr<Mount> Route(std::string_view path, std::string* rest) const
      ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // Route, then enter the mount's gate (routing again if the instance was retired meanwhile).
  MountUse RouteAndEnter(std::string_view path, std::string* rest) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // Serializes changes of the mount table (enable, disable, tune, remount): each reads the
  // table, may wait for a mount's requests to drain, and persists it.
  Mutex table_change_mu_ ABSL_ACQUIRED_BEFORE(mounts_mu_);
  absl::StatusOr<Response> Remount(Request& req) ABSL_SHARED_LOCKS_REQUIRED(state_mu_)
      ABSL_LOCKS_EXCLUDED(mounts_mu_, table_change_mu_);
  absl::StatusOr<Response> RemountStatus(std::string_view id) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::Status EnableMountLocked(MountEntry entry, bool auth = false)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // `auth`: sys/auth/<path> (the path holds "auth/"); without it (sys/mounts/<path>) the
  // reserved prefixes (auth/, sys/, cubbyhole/, identity/) are refused, as Vault's unmount does:
  // an auth method is disabled at sys/auth/<path>, which needs sudo.
  absl::Status DisableMount(std::string_view path, bool auth) ABSL_SHARED_LOCKS_REQUIRED(state_mu_)
      ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::StatusOr<Response> MountsList() ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::StatusOr<Response> MountRead(std::string_view path) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::StatusOr<Response> MountTune(Request& req, std::string_view path)
      ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::StatusOr<Response> MountEnableRequest(Request& req, std::string_view path,
                                              bool auth = false)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  int64_t EffectiveDefaultTtl(const MountEntry& e) const;
  int64_t EffectiveMaxTtl(const MountEntry& e) const;

  void SealLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // Opens the barrier with the root key and loads mounts, tokens and audit devices.
  absl::Status UnsealWithRootKey(const crypto::SecretBytes& root_key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  // The seal that opens what is stored (seal_, or old_seal_ while a migration is pending) and
  // the stored config; FailedPrecondition when the stored seal is not configured.
  struct StoredSeal {
    seal::Seal* seal = nullptr;
    std::optional<seal::SealConfig> config;
    bool migration = false;
  };
  absl::StatusOr<StoredSeal> FindStoredSeal();

  // Response wrapping (wrapping.cc): replaces `resp` by the wrap_info of a new single-use token
  // whose cubbyhole holds it; responses without data or auth are left alone.
  absl::Status WrapResponse(const Request& req, Response& resp, int64_t ttl);
  // sys/wrapping/{wrap,unwrap,lookup,rewrap}.
  absl::StatusOr<Response> HandleWrapping(Request& req, std::string_view what);
  absl::StatusOr<std::string> WrappingTokenOf(const Request& req);
  absl::StatusOr<std::pair<TokenEntry, boost::json::object>> WrappedBy(std::string_view token);

  // Leases (leases.cc).
  absl::Status RegisterLease(const Request& req, const MountEntry& mount, std::string_view rest,
                             Response& resp) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::Status RevokeLeaseById(std::string_view id, bool force) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  absl::StatusOr<int> RevokeExpiredLeases(int max) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // The leases of tokens revoked since the last tidy (kRevokedTokenLeasesPrefix markers).
  absl::StatusOr<int> RevokeLeasesOfRevokedTokens(int max) ABSL_LOCKS_EXCLUDED(mounts_mu_);
  // Drops the lease records under `prefix` without asking the engine (its mount is going away).
  absl::Status ForgetLeasesUnder(std::string_view prefix);
  // sys/remount: the leases issued under `from` get ids under `to` (Vault renames them too).
  absl::Status MoveLeases(std::string_view from, std::string_view to);
  // sys/leases/<what>[/<arg>].
  absl::StatusOr<Response> HandleLeases(Request& req, std::string_view what, std::string_view arg)
      ABSL_LOCKS_EXCLUDED(mounts_mu_);

  // sys/rekey/{init,update,verify,backup} and sys/generate-root/{attempt,update} (sys_rekey.cc):
  // the unseal key shares authorize them, not a token (as Vault). State lives in memory only.
  absl::StatusOr<Response> HandleRekey(Request& req, std::string_view what)
      ABSL_LOCKS_EXCLUDED(rekey_mu_);
  absl::StatusOr<Response> HandleGenerateRoot(Request& req, std::string_view what)
      ABSL_LOCKS_EXCLUDED(rekey_mu_);
  boost::json::object RekeyStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rekey_mu_);
  boost::json::object RekeyVerifyStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rekey_mu_);
  boost::json::object GenerateRootStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rekey_mu_);

  // What a read of sys/metrics adds to the recorded metrics (sys_metrics.cc): seal and HA
  // state, storage latencies, tokens by policy, the mounts' own gauges.
  Scrape ScrapeMetrics() ABSL_SHARED_LOCKS_REQUIRED(state_mu_) ABSL_LOCKS_EXCLUDED(mounts_mu_);

  // Issues the token an auth method's login asked for; fills resp.auth.
  absl::Status IssueLoginToken(const Request& req, const MountEntry& mount, Response& resp);

  // SystemView, for backends.
  int64_t DefaultLeaseTtl() const override { return opts_.default_lease_ttl; }
  int64_t MaxLeaseTtl() const override { return opts_.max_lease_ttl; }
  std::optional<int64_t> MountMaxTtl(std::string_view path) const override
      ABSL_LOCKS_EXCLUDED(mounts_mu_);
  TokenStore* Tokens() const override { return tokens_.get(); }

  CoreOptions opts_;
  // Wraps opts_.physical, which then points to it: every storage call is timed
  // (coffer_storage_operation_seconds). Declared before everything that holds the pointer.
  std::unique_ptr<storage::TimedStorage> timed_physical_;
  // Over timed_physical_ when opts_.storage_cache_entries > 0 (opts_.physical then points to it):
  // the seal, the barrier and everything else read through it.
  std::unique_ptr<storage::CacheStorage> cache_;
  // Under the barrier: refuses the writes of a standby that serves.
  std::unique_ptr<storage::StandbyGuardStorage> guard_;
  static constexpr int64_t kNeverCurrent = std::numeric_limits<int64_t>::min() / 2;
  std::atomic<int64_t> standby_current_at_{kNeverCurrent};
  std::atomic<uint64_t> standby_local_{0};
  std::atomic<uint64_t> standby_forwarded_{0};
  // Unseals the barrier with the key and loads the state (tokens, mounts, audit, cluster name).
  absl::Status LoadStateLocked(const crypto::SecretBytes& root_key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  absl::Status InvalidateMountKeyLocked(std::string_view storage_key)
      ABSL_SHARED_LOCKS_REQUIRED(state_mu_);
  Metrics metrics_;  // before audit_, which reports into it
  std::unique_ptr<seal::Seal> seal_;
  // The seal a migration starts from: the disabled auto seal, or Shamir when the configured
  // seal is an auto seal. Null when no migration is possible.
  std::unique_ptr<seal::Seal> old_seal_;
  // Why the last auto unseal failed ("" when it did not); shown by sys/seal-status.
  Mutex auto_unseal_mu_;
  std::string auto_unseal_error_ ABSL_GUARDED_BY(auto_unseal_mu_);
  std::unique_ptr<barrier::Barrier> barrier_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<PolicyStore> policies_;
  WatchHub watches_;
  std::unique_ptr<AuditBroker> audit_;
  std::unique_ptr<Backend> system_;

  // Set while Seal() waits for the requests in flight: a long key generation among them stops
  // early (crypto::CancelScope) instead of holding the seal, and every request, for seconds.
  std::atomic<bool> seal_requested_{false};
  std::atomic<int> seals_waiting_{0};  // Seal() calls in progress; the flag is up while > 0
  // Lock order: state_mu_, then mounts_mu_; tidy_mu_ is never held with either.
  mutable Mutex state_mu_;
  bool sealed_ ABSL_GUARDED_BY(state_mu_) = true;
  bool standby_ ABSL_GUARDED_BY(state_mu_) = false;  // HA: not the active server
  // HA: the root key, kept to unseal on becoming active (a standby's) or again after a
  // step-down (the active's). Dropped by an operator's seal.
  std::optional<crypto::SecretBytes> ha_key_ ABSL_GUARDED_BY(state_mu_);
  int64_t active_since_ ABSL_GUARDED_BY(state_mu_) = 0;
  std::string cluster_name_ ABSL_GUARDED_BY(state_mu_);
  std::string cluster_id_ ABSL_GUARDED_BY(state_mu_);

  mutable Mutex mounts_mu_ ABSL_ACQUIRED_AFTER(state_mu_);
  std::map<std::string, std::shared_ptr<Mount>, std::less<>> mounts_ ABSL_GUARDED_BY(mounts_mu_);
  // sys/remount's answers for sys/remount/status/<migration_id>, kept until the server stops.
  std::map<std::string, boost::json::object, std::less<>> remounts_ ABSL_GUARDED_BY(mounts_mu_);

  // Rekey and root generation in progress (sys_rekey.cc). Wiped when they end or are cancelled.
  struct RekeyOp {
    std::string nonce;
    int shares = 0;
    int threshold = 0;
    bool verify = false;
    std::vector<crypto::SecretBytes> submitted;  // current shares
    // With verification: the new key, waiting for its own shares before it replaces the old.
    std::optional<crypto::SecretBytes> pending_key;
    crypto::SecretBytes pending_root;
    std::string verify_nonce;
    std::vector<crypto::SecretBytes> verify_submitted;
  };
  struct GenerateRootOp {
    std::string nonce;
    crypto::SecretBytes otp;
    bool otp_generated = false;
    std::vector<crypto::SecretBytes> submitted;
  };
  Mutex rekey_mu_ ABSL_ACQUIRED_AFTER(state_mu_);
  std::optional<RekeyOp> rekey_ ABSL_GUARDED_BY(rekey_mu_);
  std::optional<GenerateRootOp> generate_root_ ABSL_GUARDED_BY(rekey_mu_);

  Mutex tidy_mu_;
  // Waits on tidy_mu_.native(): condition_variable_any, as Mutex is no std::mutex.
  std::condition_variable_any tidy_cv_;
  bool stopping_ ABSL_GUARDED_BY(tidy_mu_) = false;
  std::thread tidy_thread_;
};

}  // namespace coffer::core
