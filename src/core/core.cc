#include "core/core.h"

#include <openssl/crypto.h>

#include <charconv>
#include <chrono>

#include "absl/time/clock.h"
#include "boost/json.hpp"
#include "core/acl.h"
#include "crypto/crypto.h"
#include "crypto/keys.h"
#include "util/cidr.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::core {
namespace json = boost::json;

namespace {
constexpr char kClusterPath[] = "core/cluster";

absl::Status SealedError() {
  return absl::UnavailableError("Vault is sealed: unseal it with `coffer operator unseal`");
}

}  // namespace

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kRead:
      return "read";
    case Operation::kCreate:
      return "create";
    case Operation::kUpdate:
      return "update";
    case Operation::kPatch:
      return "patch";
    case Operation::kDelete:
      return "delete";
    case Operation::kList:
      return "list";
    case Operation::kHead:
      return "head";
  }
  return "unknown";
}

int HttpStatusFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 405;
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Core::Core(CoreOptions opts) : opts_(std::move(opts)) { standby_ = opts_.ha_enabled; }
Core::~Core() {
  {
    MutexLock l(&tidy_mu_);
    stopping_ = true;
  }
  tidy_cv_.notify_all();
  if (tidy_thread_.joinable()) tidy_thread_.join();
  MutexLock l(&state_mu_);
  SealLocked();
}

absl::Status Core::ReopenAudit() {
  ReaderMutexLock l(&state_mu_);
  if (sealed_) return absl::OkStatus();
  return audit_->Reopen();
}

absl::StatusOr<int> Core::TidyNow() {
  ReaderMutexLock l(&state_mu_);
  if (sealed_) return SealedError();
  if (standby_) return 0;  // the active server tidies
  ASSIGN_OR_RETURN(int tokens, tokens_->Tidy(100000));
  auto orphaned = RevokeLeasesOfRevokedTokens(100000);
  if (!orphaned.ok())
    log::Warn("leases of revoked tokens not revoked", {{"error", Msg(orphaned.status())}});
  auto leases = RevokeExpiredLeases(100000);
  if (!leases.ok()) log::Warn("expired leases not revoked", {{"error", Msg(leases.status())}});
  if (leases.ok() && *leases > 0)
    log::Info("expired leases revoked", {{"count", std::to_string(*leases)}});
  return tokens;
}

void Core::TidyLoop() {
  for (;;) {
    {
      MutexLock l(&tidy_mu_);
      if (stopping_) return;
      tidy_cv_.wait_for(tidy_mu_.native(), opts_.tidy_interval);
      if (stopping_) return;
    }
    // Tidy without tidy_mu_, so the destructor's stop is not held up by it.
    auto n = TidyNow();
    if (n.ok() && *n > 0) log::Info("expired tokens removed", {{"count", std::to_string(*n)}});
  }
}

absl::StatusOr<std::unique_ptr<Core>> Core::Create(CoreOptions opts) {
  if (!opts.physical) return absl::InvalidArgumentError("core needs a storage backend");
  std::unique_ptr<Core> c(new Core(std::move(opts)));
  c->timed_physical_ = std::make_unique<storage::TimedStorage>(c->opts_.physical);
  c->opts_.physical = c->timed_physical_.get();
  if (c->opts_.storage_cache_entries > 0) {
    c->cache_ =
        std::make_unique<storage::CacheStorage>(c->opts_.physical, c->opts_.storage_cache_entries);
    c->opts_.physical = c->cache_.get();
  }
  storage::Storage* physical = c->opts_.physical;
  if (c->opts_.seal_wrapper) {
    c->seal_ = std::make_unique<seal::AutoSeal>(physical, c->opts_.seal_wrapper.get());
  } else {
    c->seal_ = std::make_unique<seal::ShamirSeal>(physical);
  }
  if (c->opts_.disabled_seal_wrapper) {
    if (c->opts_.seal_wrapper &&
        c->opts_.seal_wrapper->Type() == c->opts_.disabled_seal_wrapper->Type())
      return absl::InvalidArgumentError(
          "the enabled and the disabled seal are of the same type: a migration needs two "
          "different seals");
    c->old_seal_ = std::make_unique<seal::AutoSeal>(physical, c->opts_.disabled_seal_wrapper.get());
  } else if (c->opts_.seal_wrapper) {
    c->old_seal_ = std::make_unique<seal::ShamirSeal>(physical);
  }
  c->guard_ = std::make_unique<storage::StandbyGuardStorage>(c->opts_.physical);
  c->barrier_ = std::make_unique<barrier::Barrier>(c->guard_.get());
  c->tokens_ = std::make_unique<TokenStore>(c->barrier_.get(), c->opts_.clock);
  c->policies_ = std::make_unique<PolicyStore>(c->barrier_.get());
  c->audit_ = std::make_unique<AuditBroker>(c->barrier_.get(), c->opts_.clock, &c->metrics_);
  if (!c->opts_.auth_factories.contains("token"))
    return absl::InvalidArgumentError("core needs the token auth method's factory");
  c->system_ = c->NewSystemBackend();
  Core* raw = c.get();
  if (c->opts_.tidy_interval.count() > 0) c->tidy_thread_ = std::thread([raw] { raw->TidyLoop(); });
  return c;
}

bool Core::Sealed() const {
  ReaderMutexLock l(&state_mu_);
  return sealed_;
}

bool Core::Standby() const {
  ReaderMutexLock l(&state_mu_);
  return standby_;
}

bool Core::StandbyReady() const {
  ReaderMutexLock l(&state_mu_);
  return standby_ && ha_key_.has_value();
}

absl::StatusOr<crypto::SecretBytes> Core::ForwardingKey() const {
  static constexpr std::string_view kLabel = "coffer ha request forwarding v1";
  {
    ReaderMutexLock l(&state_mu_);
    if (standby_) {
      if (!ha_key_) return absl::FailedPreconditionError("this standby is sealed");
      return barrier::DeriveFromRootKey(*ha_key_, kLabel);
    }
  }
  return barrier_->DeriveKey(kLabel);
}

int64_t Core::ActiveSince() const {
  ReaderMutexLock l(&state_mu_);
  return active_since_;
}

int64_t Core::SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {
constexpr char kStandbyWritePayload[] = "coffer.dev/standby-write";

absl::Status StandbyWriteError() {
  absl::Status s = absl::FailedPreconditionError(
      "this server is an HA standby and the request writes: it goes to the active server");
  s.SetPayload(kStandbyWritePayload, absl::Cord("1"));
  return s;
}

// What a standby that serves may try itself (Core::StandbyRedirect): what can be read-only.
// Never a login, a wrapped answer, a delete or patch, a long poll, or a sys/ path other than
// sys/metrics (this server's own figures): those always write, or belong to the active server.
bool MayTryOnStandby(const Request& req) {
  const std::string_view p = req.path;
  if (StartsWith(p, "sys/") || p == "sys") return p == "sys/metrics";
  if (req.wrap_ttl > 0) return false;
  if (req.op == Operation::kDelete || req.op == Operation::kPatch) return false;
  if (StartsWith(p, "auth/") &&
      (p.find("/login/") != std::string_view::npos || p.ends_with("/login")))
    return false;
  if (req.op == Operation::kRead && !req.query.empty() && req.QueryParam("wait")) return false;
  return true;
}
}  // namespace

bool Core::IsStandbyWrite(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kStandbyWritePayload).has_value();
}

bool Core::StandbyServing() const {
  ReaderMutexLock l(&state_mu_);
  return standby_ && !sealed_;
}

std::optional<std::string> Core::StandbyRedirect(const Request& req, bool try_local) const {
  {
    ReaderMutexLock l(&state_mu_);
    if (!standby_) return std::nullopt;
    if (try_local && !sealed_ &&
        SteadyMillis() - standby_current_at_.load() < kStandbyStaleAfterMs &&
        MayTryOnStandby(req)) {
      if (req.path == "sys/metrics") return std::nullopt;
      std::string rest;
      std::shared_ptr<Mount> m = Route(req.path, &rest);
      if (m && m->backend && m->backend->ServesOnStandby(rest, req.op)) return std::nullopt;
    }
  }
  const std::string& p = req.path;
  for (const char* local :
       {"sys/seal-status", "sys/health", "sys/leader", "sys/unseal", "sys/seal"})
    if (p == local) return std::nullopt;
  std::string leader = opts_.ha_leader ? opts_.ha_leader() : std::string();
  // Its own address as the leader's: a lock left by this server before a restart, until its
  // lease lapses. Not a place to send clients.
  if (!opts_.ha_api_addr.empty() && leader == opts_.ha_api_addr) return std::string();
  return leader;
}

absl::Status Core::Activate() {
  MutexLock l(&state_mu_);
  if (!standby_) return absl::OkStatus();
  standby_ = false;
  active_since_ = absl::ToUnixSeconds(absl::Now());
  log::Info("this server is now the active one");
  guard_->SetReadOnly(false);
  if (!ha_key_) return absl::OkStatus();  // sealed or not initialized: the operator goes on here
  crypto::SecretBytes key = std::move(*ha_key_);
  ha_key_.reset();
  // What a serving standby loaded read-only is loaded again, writable and current.
  if (!sealed_) SealLocked();
  return UnsealWithRootKey(key);
}

absl::Status Core::LoadStandbyState() {
  MutexLock l(&state_mu_);
  if (!standby_ || !ha_key_) return absl::FailedPreconditionError("not a standby holding the key");
  if (!sealed_) SealLocked();
  guard_->SetReadOnly(true);
  SetStandbyStale();  // current again once the watch has delivered what follows the load
  crypto::SecretBytes key = ha_key_->Clone();
  auto st = LoadStateLocked(key);
  if (!st.ok()) {
    SealLocked();
    return st;
  }
  sealed_ = false;
  log::Info("HA standby: state loaded; serving what needs no write");
  return absl::OkStatus();
}

void Core::StepDown() {
  // Requests in flight finish first, as for a seal.
  if (seals_waiting_.fetch_add(1) == 0) seal_requested_.store(true);
  {
    MutexLock l(&state_mu_);
    if (!standby_) {
      log::Info("stepping down: this server is a standby now");
      std::optional<crypto::SecretBytes> key = std::move(ha_key_);
      // Already sealed (after a Shamir init, or an operator's seal): nothing to drop, and an
      // unseal in progress keeps the shares it has (SealLocked would reset them).
      if (!sealed_) SealLocked();
      guard_->SetReadOnly(true);
      ha_key_ = std::move(key);
      standby_ = true;
      active_since_ = 0;
    }
  }
  if (seals_waiting_.fetch_sub(1) == 1) seal_requested_.store(false);
  watches_.WakeAll();  // parked long polls are answered now (307 to the active server)
}

absl::StatusOr<bool> Core::Initialized() {
  ASSIGN_OR_RETURN(auto cfg, seal_->Config());
  return cfg.has_value();
}

absl::StatusOr<Core::StoredSeal> Core::FindStoredSeal() {
  StoredSeal out;
  ASSIGN_OR_RETURN(out.config, seal_->Config());
  out.seal = seal_.get();
  if (!out.config || out.config->type == seal_->Type()) return out;
  if (old_seal_ && out.config->type == old_seal_->Type()) {
    out.seal = old_seal_.get();
    out.migration = true;
    return out;
  }
  return absl::FailedPreconditionError(
      out.config->type == "shamir"
          ? Cat("this server is sealed with the Shamir seal, which the configuration does not "
                "name: a migration from Shamir to the \"",
                seal_->Type(), "\" seal needs only that seal's block (remove the disabled one)")
          : Cat("this server's root key is sealed by a \"", out.config->type,
                "\" seal, which the configuration does not name: add its seal \"", out.config->type,
                "\" stanza (with disabled = \"true\" to migrate away from it)"));
}

void Core::SealLocked() {
  std::map<std::string, std::shared_ptr<Mount>, std::less<>> mounts;
  {
    MutexLock l(&mounts_mu_);
    mounts.swap(mounts_);
  }
  // No request runs: sealing holds state_mu_ exclusively.
  for (auto& [path, m] : mounts)
    if (m->backend) m->backend->Cleanup();
  mounts.clear();
  tokens_->Clear();
  policies_->Clear();
  audit_->Clear();
  barrier_->Seal();
  seal_->Reset();
  if (old_seal_) old_seal_->Reset();
  {
    // A rekey or root generation in progress ends with the seal (it holds shares, a pending
    // root key or an OTP).
    MutexLock l(&rekey_mu_);
    rekey_.reset();
    generate_root_.reset();
  }
  sealed_ = true;
  cluster_id_.clear();
  cluster_name_.clear();
}

absl::Status Core::Seal() {
  // Requests in flight finish first (they hold state_mu_ shared); a key generation among them
  // sees the flag and stops within milliseconds rather than after its seconds of work.
  if (seals_waiting_.fetch_add(1) == 0) seal_requested_.store(true);
  {
    MutexLock l(&state_mu_);
    if (!sealed_) log::Info("sealing server");
    SealLocked();
    ha_key_.reset();  // an operator's seal: this server does not take over by itself
  }
  if (seals_waiting_.fetch_sub(1) == 1) seal_requested_.store(false);
  watches_.WakeAll();  // parked long polls are answered now (503: sealed)
  return absl::OkStatus();
}

absl::StatusOr<InitResult> Core::Initialize(int shares, int threshold,
                                            std::string_view root_token_id) {
  if (auto st = seal::ValidateShares(shares, threshold); !st.ok()) {
    if (!seal_->IsAuto()) return st;
    std::string m(st.message());
    for (size_t at = 0; (at = m.find("secret_", at)) != std::string::npos;)
      m.replace(at, 7, "recovery_");
    return absl::InvalidArgumentError(m);
  }
  MutexLock l(&state_mu_);
  ASSIGN_OR_RETURN(bool initialized, Initialized());
  if (initialized) return absl::InvalidArgumentError("Vault is already initialized");
  // Nothing was ever handed out for a store without a seal config (it is written last), so any
  // leftovers of an interrupted init are removed before starting again.
  for (const char* p : {"core/", "sys/", "logical/", "auth/"})
    RETURN_IF_ERROR(opts_.physical->DeletePrefix(p));

  ASSIGN_OR_RETURN(auto root_key, crypto::SecretBytes::Random(crypto::kAesKeySize));
  RETURN_IF_ERROR(barrier_->Initialize(root_key));
  InitResult out;
  auto setup = [&]() -> absl::Status {
    RETURN_IF_ERROR(tokens_->Setup());
    RETURN_IF_ERROR(policies_->WriteDefaults());
    ASSIGN_OR_RETURN(out.root_token, tokens_->CreateRootToken(root_token_id));
    std::string id = crypto::RandomUuid();
    RETURN_IF_ERROR(barrier_->Put(
        kClusterPath,
        json::serialize(json::object{{"cluster_name", "coffer-cluster-" + id.substr(0, 8)},
                                     {"cluster_id", id}})));
    MountEntry sys;
    sys.path = "sys/";
    sys.type = "system";
    sys.description = "system endpoints used for control, policy and debugging";
    sys.uuid = crypto::RandomUuid();
    sys.accessor = "system_" + sys.uuid.substr(0, 8);
    MountEntry tok;
    tok.path = "auth/token/";
    tok.type = "token";
    tok.description = "token based credentials";
    tok.uuid = crypto::RandomUuid();
    tok.accessor = "auth_token_" + tok.uuid.substr(0, 8);
    json::array entries{sys.ToStorage(), tok.ToStorage(), CubbyholeEntry().ToStorage()};
    RETURN_IF_ERROR(
        barrier_->Put("core/mounts", json::serialize(json::object{{"entries", entries}})));
    ASSIGN_OR_RETURN(out.keys, seal_->Initialize(shares, threshold, root_key));
    return absl::OkStatus();
  };
  absl::Status st = setup();
  // Vault stays sealed after init under Shamir: the operator unseals with the keys just handed
  // out. An auto seal unseals at once with the root key it just wrapped.
  SealLocked();
  if (!st.ok()) return st;
  if (seal_->IsAuto()) out.recovery_keys = std::move(out.keys);
  log::Info(
      "server initialized",
      {{"seal", std::string(seal_->Type())},
       {seal_->IsAuto() ? "recovery_shares" : "secret_shares", std::to_string(shares)},
       {seal_->IsAuto() ? "recovery_threshold" : "secret_threshold", std::to_string(threshold)}});
  if (seal_->IsAuto()) {
    auto un = UnsealWithRootKey(root_key);
    if (!un.ok()) {
      SealLocked();
      log::Error("unseal after init failed", {{"error", Msg(un)}});
    }
  }
  return out;
}

absl::StatusOr<json::object> Core::SealStatus() {
  ASSIGN_OR_RETURN(auto cfg, seal_->Config());
  // While a migration is pending, progress is the stored (old) seal's.
  seal::Seal* stored = seal_.get();
  bool migration = false;
  if (cfg && cfg->type != seal_->Type() && old_seal_ && cfg->type == old_seal_->Type()) {
    stored = old_seal_.get();
    migration = true;
  }
  auto progress = stored->CurrentProgress();
  std::string type = cfg ? cfg->type : std::string(seal_->Type());
  json::object o{{"type", type},
                 {"initialized", cfg.has_value()},
                 {"sealed", true},
                 {"t", cfg ? cfg->threshold() : 0},
                 {"n", cfg ? cfg->shares() : 0},
                 {"progress", progress.progress},
                 {"nonce", progress.nonce},
                 {"version", COFFER_VERSION},
                 {"build_date", ""},
                 {"migration", migration},
                 {"recovery_seal", type != "shamir"},
                 {"storage_type", opts_.storage_type}};
  {
    MutexLock l(&auto_unseal_mu_);
    // Coffer's own field: why an auto seal has not unsealed the server (Vault only logs it).
    if (!auto_unseal_error_.empty()) o["seal_error"] = auto_unseal_error_;
  }
  ReaderMutexLock l(&state_mu_);
  o["sealed"] = sealed_ && !(standby_ && ha_key_);
  if (!sealed_) {
    o["cluster_name"] = cluster_name_;
    o["cluster_id"] = cluster_id_;
    o.erase("seal_error");
  }
  return o;
}

absl::Status Core::UnsealWithRootKey(const crypto::SecretBytes& root_key) {
  if (standby_) {
    // A standby checks the key against the keyring and keeps it: it unseals for real when it
    // becomes active (state loaded then is current). One that serves holds it already.
    if (!sealed_) return absl::OkStatus();
    RETURN_IF_ERROR(barrier_->Unseal(root_key));
    barrier_->Seal();
    ha_key_.emplace(root_key.Clone());
    log::Info("standby holds the root key: it takes over when the active server goes away");
    return absl::OkStatus();
  }
  if (!sealed_) return absl::OkStatus();
  if (opts_.ha_enabled) ha_key_.emplace(root_key.Clone());
  auto st = LoadStateLocked(root_key);
  if (!st.ok()) {
    SealLocked();
    return st;
  }
  sealed_ = false;
  {
    MutexLock l(&auto_unseal_mu_);
    auto_unseal_error_.clear();
  }
  log::Info("server unsealed", {{"seal", std::string(seal_->Type())}});
  return absl::OkStatus();
}

absl::Status Core::LoadStateLocked(const crypto::SecretBytes& root_key) {
  auto st = barrier_->Unseal(root_key);
  if (st.ok()) st = tokens_->Setup();
  if (st.ok()) st = LoadMounts();
  if (st.ok()) st = audit_->Load();
  if (st.ok()) {
    auto cluster = barrier_->Get(kClusterPath);
    if (cluster.ok() && cluster->has_value()) {
      boost::system::error_code ec;
      auto v = json::parse(**cluster, ec);
      if (!ec && v.is_object()) {
        cluster_name_ = std::string(v.as_object()["cluster_name"].as_string());
        cluster_id_ = std::string(v.as_object()["cluster_id"].as_string());
      }
    }
  }
  return st;
}

absl::Status Core::AutoUnseal() {
  auto* auto_seal = dynamic_cast<seal::AutoSeal*>(seal_.get());
  if (!auto_seal) return absl::FailedPreconditionError("the server has no auto seal");
  if (!Sealed()) return absl::OkStatus();
  auto record = [&](const absl::Status& st) {
    MutexLock l(&auto_unseal_mu_);
    auto_unseal_error_ = st.ok() ? "" : std::string(st.message());
    return st;
  };
  auto found = FindStoredSeal();
  if (!found.ok()) return record(found.status());
  if (!found->config)
    return absl::FailedPreconditionError("not initialized: run `coffer operator init` first");
  if (found->migration)
    return record(absl::FailedPreconditionError(
        Cat("a seal migration from \"", found->config->type, "\" to \"", seal_->Type(),
            "\" is pending: unseal with -migrate and the ",
            found->config->recovery() ? "recovery" : "unseal", " keys")));
  auto root = auto_seal->UnwrapRootKey();
  if (!root.ok())
    return record(
        absl::Status(root.status().code(), Cat("auto unseal failed: ", Msg(root.status()))));
  MutexLock l(&state_mu_);
  return record(UnsealWithRootKey(*root));
}

absl::StatusOr<json::object> Core::Unseal(std::string_view key, bool reset, bool migrate) {
  if (reset) {
    seal_->Reset();
    if (old_seal_) old_seal_->Reset();
    return SealStatus();
  }
  ASSIGN_OR_RETURN(bool initialized, Initialized());
  if (!initialized)
    return absl::InvalidArgumentError("Vault is not initialized: run `coffer operator init` first");
  if (!Sealed())
    return absl::InvalidArgumentError("Vault is already unsealed; the key was not used");
  if (key.empty())
    return absl::InvalidArgumentError(
        "'key' must be specified in request body as JSON, or 'reset' set to true");
  ASSIGN_OR_RETURN(auto stored, FindStoredSeal());
  if (stored.migration && !migrate)
    return absl::InvalidArgumentError(
        Cat("a seal migration from \"", stored.config->type, "\" to \"", seal_->Type(),
            "\" is pending: submit the ", stored.config->recovery() ? "recovery" : "unseal",
            " keys with migrate=true (coffer operator unseal -migrate)"));
  if (!stored.migration && migrate)
    return absl::InvalidArgumentError(
        "migrate was set but no seal migration is pending: the configured seal is the one the "
        "server was sealed with");
  ASSIGN_OR_RETURN(crypto::SecretBytes share, DecodeKeyShare(key));
  ASSIGN_OR_RETURN(auto step, stored.seal->Submit(share.view()));
  if (step.root_key) {
    // The threshold hands the root key to one request only (the shares are cleared), so the
    // migration's seal calls run without the state lock: seal-status and health keep answering
    // while a slow seal server is asked.
    {
      if (stored.migration) {
        // The operators' key carries over: unseal keys become recovery keys and back, with the
        // same shares and threshold. One atomic write switches the stored seal.
        const int shares = stored.config->shares(), threshold = stored.config->threshold();
        auto st = seal_->Commit(*step.share_key, shares, threshold, *step.root_key);
        if (!st.ok())
          return absl::Status(st.code(), Cat("seal migration to \"", seal_->Type(),
                                             "\" failed, nothing changed: ", Msg(st)));
        log::Info("seal migrated",
                  {{"from", stored.config->type}, {"to", std::string(seal_->Type())}});
      }
    }
    MutexLock l(&state_mu_);
    RETURN_IF_ERROR(UnsealWithRootKey(*step.root_key));
  }
  return SealStatus();
}

absl::StatusOr<Response> Core::HandleInitRequest(Request& req) {
  if (req.op == Operation::kRead) {
    ASSIGN_OR_RETURN(bool initialized, Initialized());
    return Response::Raw(json::object{{"initialized", initialized}});
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
    return UnsupportedOperation("sys/init takes GET or PUT");
  for (const char* unsupported : {"pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"}) {
    const auto* v = req.data.if_contains(unsupported);
    if (v && !v->is_null() && !(v->is_string() && v->as_string().empty()) &&
        !(v->is_array() && v->as_array().empty()))
      return absl::InvalidArgumentError(Cat(unsupported, " is not supported by Coffer yet"));
  }
  // Under an auto seal the operators' shares are the recovery key's (recovery_shares and
  // recovery_threshold, 5 and 3 when absent as the vault CLI's defaults) and secret_shares is
  // ignored (the root key is stored, wrapped by the seal); under Shamir recovery_* is ignored.
  // vault's CLI sends both sets whatever the seal.
  const bool recovery = seal_->IsAuto();
  const char* shares_key = recovery ? "recovery_shares" : "secret_shares";
  const char* threshold_key = recovery ? "recovery_threshold" : "secret_threshold";
  ASSIGN_OR_RETURN(auto shares, JsonInt(req.data, shares_key));
  ASSIGN_OR_RETURN(auto threshold, JsonInt(req.data, threshold_key));
  if (recovery && !shares) shares = 5;
  if (recovery && !threshold) threshold = 3;
  if (!shares) return absl::InvalidArgumentError("secret_shares is required (for example 5)");
  if (!threshold) return absl::InvalidArgumentError("secret_threshold is required (for example 3)");
  if (*shares > 255 || *shares < 0 || *threshold > 255 || *threshold < 0)
    return absl::InvalidArgumentError(*shares > 255 ? Cat(shares_key, " must be at most 255")
                                      : *shares < 0
                                          ? Cat(shares_key, " must be between 1 and 255")
                                          : Cat(threshold_key, " must be between 1 and 255"));
  ASSIGN_OR_RETURN(InitResult res,
                   Initialize(static_cast<int>(*shares), static_cast<int>(*threshold)));
  auto encode = [](const std::vector<crypto::SecretBytes>& in, json::array& hex, json::array& b64) {
    for (const auto& k : in) {
      hex.emplace_back(HexEncode(k.view()));
      b64.emplace_back(Base64Encode(k.view()));
    }
  };
  json::array keys, keys_b64;
  encode(res.keys, keys, keys_b64);
  json::object body{{"keys", keys}, {"keys_base64", keys_b64}, {"root_token", res.root_token}};
  if (seal_->IsAuto()) {
    json::array rec, rec_b64;
    encode(res.recovery_keys, rec, rec_b64);
    body["recovery_keys"] = std::move(rec);
    body["recovery_keys_base64"] = std::move(rec_b64);
  }
  return Response::Raw(body);
}

absl::StatusOr<Response> Core::HandleUnsealRequest(Request& req) {
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
    return UnsupportedOperation("sys/unseal takes PUT");
  ASSIGN_OR_RETURN(auto reset, JsonBool(req.data, "reset"));
  ASSIGN_OR_RETURN(auto key, JsonString(req.data, "key"));
  ASSIGN_OR_RETURN(auto migrate, JsonBool(req.data, "migrate"));
  // Vault answers a share sent to an unsealed server with the seal status (200): clients that
  // unseal every node of a list, or retry, see "sealed": false rather than an error.
  absl::StatusOr<json::object> status;
  if (!Sealed()) {
    status = SealStatus();
  } else {
    status = Unseal(key.value_or(""), reset.value_or(false), migrate.value_or(false));
    if (!status.ok() && !Sealed()) status = SealStatus();  // another request finished it
  }
  RETURN_IF_ERROR(status.status());
  return Response::Raw(*status);
}

absl::StatusOr<Response> Core::HandleHealth(const Request& req) {
  auto code_param = [&](std::string_view name, int def) -> absl::StatusOr<int> {
    auto v = req.QueryParam(name);
    if (!v) return def;
    int out = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || p != v->data() + v->size() || out < 100 || out > 599)
      return absl::InvalidArgumentError(
          Cat("invalid value for ", name, ": \"", *v, "\" is not an HTTP status code"));
    return out;
  };
  ASSIGN_OR_RETURN(int active, code_param("activecode", 200));
  ASSIGN_OR_RETURN(int standby, code_param("standbycode", 429));
  ASSIGN_OR_RETURN(int sealedcode, code_param("sealedcode", 503));
  ASSIGN_OR_RETURN(int uninit, code_param("uninitcode", 501));
  RETURN_IF_ERROR(code_param("drsecondarycode", 472).status());
  RETURN_IF_ERROR(code_param("performancestandbycode", 473).status());
  const auto standbyok = req.QueryParam("standbyok");
  if (standbyok && (*standbyok == "true" || *standbyok == "1" || standbyok->empty()))
    standby = active;
  ASSIGN_OR_RETURN(bool initialized, Initialized());
  bool sealed = Sealed();
  bool is_standby = false;
  {
    ReaderMutexLock l(&state_mu_);
    is_standby = standby_ && ha_key_.has_value();
  }
  if (is_standby) sealed = false;
  json::object body{{"initialized", initialized},
                    {"sealed", sealed},
                    {"standby", is_standby},
                    {"performance_standby", false},
                    {"replication_performance_mode", "disabled"},
                    {"replication_dr_mode", "disabled"},
                    {"server_time_utc", absl::ToUnixSeconds(absl::Now())},
                    {"version", COFFER_VERSION}};
  if (!sealed) {
    ReaderMutexLock l(&state_mu_);
    body["cluster_name"] = cluster_name_;
    body["cluster_id"] = cluster_id_;
  }
  Response r;
  r.raw = true;
  r.http_status = !initialized ? uninit : sealed ? sealedcode : is_standby ? standby : active;
  if (req.op != Operation::kHead) r.raw_body = json::serialize(body);
  return r;
}

namespace {

// Sets req.secret_path_from when the path, relative to its backend, starts with one of the
// backend's secret prefixes (a token in the URL) and has something after it.
void MarkSecretPath(Request& req, const Backend* backend, std::string_view rest) {
  req.secret_path_from = std::string::npos;
  if (!backend) return;
  for (const auto& prefix : backend->Special().secret_path_prefixes)
    if (rest.size() > prefix.size() && StartsWith(rest, prefix)) {
      req.secret_path_from = req.path.size() - rest.size() + prefix.size();
      return;
    }
}

// A token with bound CIDRs is usable only from inside one of them (Admit and HandleLocked).
bool UsableFrom(const TokenEntry& token, std::string_view remote) {
  if (token.bound_cidrs.empty()) return true;
  for (const auto& c : token.bound_cidrs)
    if (CidrContains(c, remote)) return true;
  return false;
}

}  // namespace

std::string Core::LogPath(const Request& req) {
  std::string_view p = req.path;
  if (req.secret_path_from < p.size()) return Cat(p.substr(0, req.secret_path_from), "<redacted>");
  if (!req.mount_point.empty()) return req.path;
  size_t first = p.find('/');
  size_t second = first == std::string_view::npos ? first : p.find('/', first + 1);
  if (second == std::string_view::npos || second + 1 >= p.size()) return req.path;
  return Cat(p.substr(0, second + 1), "...");
}

absl::StatusOr<Core::Admission> Core::Admit(Request& req, bool check_token) {
  Admission out;
  const std::string& p = req.path;
  if (StartsWith(p, "sys/") && PreUnsealPaths().Matches(std::string_view(p).substr(4))) return out;
  ReaderMutexLock l(&state_mu_);
  if (sealed_) {
    if (check_token) return SealedError();
    return out;
  }
  std::string rest;
  std::shared_ptr<Mount> mount;
  const Backend* backend = nullptr;
  if (StartsWith(p, "sys/") || p == "sys") {
    rest = p.size() > 4 ? p.substr(4) : "";
    backend = system_.get();
  } else if ((mount = Route(p, &rest))) {
    backend = mount->backend.get();
  }
  MarkSecretPath(req, backend, rest);
  if (backend) {
    out.expensive = backend->Expensive(rest);
    out.may_wait = backend->MayWait(rest, req.op);
    // Audit devices make the response entry final when the engine returns (HandleLocked):
    // then the write is not deferred, and the request must not wait on its loop.
    if (out.may_wait && backend->DefersWrites(rest, req.op) && barrier_->WritesAsync() &&
        !audit_->Enabled()) {
      out.may_wait = false;
      out.defer_write = true;
    }
  } else {
    out.may_wait = req.op != Operation::kRead && req.op != Operation::kHead;
  }
  if (!check_token) return out;
  if (backend && backend->Special().unauthenticated.Matches(rest)) return out;
  ASSIGN_OR_RETURN(auto token, tokens_->Lookup(req.client_token));
  const bool ok = token && UsableFrom(*token, req.remote_address);
  out.authenticated = ok;
  if (ok) return out;
  const absl::Status denied = absl::PermissionDeniedError("permission denied");
  if (mount) {
    req.mount_point = mount->entry.path;
    req.mount_type = mount->entry.type;
  }
  RETURN_IF_ERROR(audit_->LogRequest(req, token, denied));
  return denied;
}

absl::StatusOr<Response> Core::Handle(Request& req) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Response> result;
  const std::string& p = req.path;
  if (p == "sys/seal" && Standby())
    return absl::FailedPreconditionError(
        "this server is an HA standby: sys/seal seals the active server, so send it there; to "
        "make this standby forget its key, restart it");
  // The PreUnsealPaths handlers take state_mu_ themselves, so they must never run under it from
  // HandleLocked(): the system backend's router matches exactly the paths this check does.
  if (StartsWith(p, "sys/") && PreUnsealPaths().Matches(std::string_view(p).substr(4))) {
    // Served while sealed and without a token (Vault answers these in its HTTP layer).
    req.mount_point = "sys/";
    req.mount_type = "system";
    const std::string full_path = req.path;
    req.path = full_path.substr(4);
    result = system_->Handle(req);
    req.path = full_path;
    req.mount_point.clear();
  } else {
    bool seal_after = false;
    {
      crypto::CancelScope cancel(&seal_requested_);
      storage::StandbyGuardStorage::Scope writes;
      ReaderMutexLock l(&state_mu_);
      result = sealed_ ? absl::StatusOr<Response>(SealedError()) : HandleLocked(req);
      // A standby's request that tried to write (refused before reaching the store) goes to
      // the active server whole, whatever the engine made of the refusal.
      if (writes.write_refused()) result = StandbyWriteError();
      seal_after = result.ok() && result->seal_after;
    }
    if (seal_after) {
      auto st = Seal();
      if (!st.ok()) result = st;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int code = result.ok() ? (result->http_status ? result->http_status
                                                : (result->data || result->raw ? 200 : 204))
                         : HttpStatusFor(result.status());
  std::string_view mount = req.mount_point.empty()
                               ? std::string_view(StartsWith(p, "sys/") ? "sys/" : "")
                               : std::string_view(req.mount_point);
  metrics_.Record(mount, OperationName(req.op), code, secs);
  return result;
}

absl::StatusOr<Response> Core::HandleLocked(Request& req) {
  // A deferred write is answered after the engine returns: not where the answer must be final
  // then (the audit log's response entry; a wrapped response stores the answer itself).
  if (req.defer_write && (req.wrap_ttl > 0 || audit_->Enabled())) req.defer_write = false;
  // Route first: sys/ to the system backend, anything else to the longest-prefix mount. The
  // backend's declared special paths decide what needs no token and what needs sudo.
  std::string rest;
  MountUse use;
  std::shared_ptr<Mount> mount;
  Backend* backend = nullptr;
  storage::Storage* view = nullptr;
  const bool system = StartsWith(req.path, "sys/") || req.path == "sys";
  if (system) {
    rest = req.path.size() > 4 ? req.path.substr(4) : "";
    backend = system_.get();
    req.mount_point = "sys/";
    req.mount_type = "system";
  } else {
    use = RouteAndEnter(req.path, &rest);
    mount = use.get();
    if (mount) {
      backend = mount->backend.get();
      view = mount->view.get();
      req.mount_point = mount->entry.path;
      req.mount_type = mount->entry.type;
      req.mount_default_ttl = EffectiveDefaultTtl(mount->entry);
      req.mount_max_ttl = EffectiveMaxTtl(mount->entry);
    }
  }
  MarkSecretPath(req, backend, rest);
  // A standby runs only what may run there, while current (StandbyRedirect checked it; checked
  // again here, as the request may have waited while the standby's role or watch changed).
  if (standby_) {
    const bool allowed =
        SteadyMillis() - standby_current_at_.load() < kStandbyStaleAfterMs &&
        MayTryOnStandby(req) &&
        (system ? rest == "metrics" : backend && backend->ServesOnStandby(rest, req.op));
    if (!allowed) return StandbyWriteError();
  }
  auto run = [&]() -> absl::StatusOr<Response> {
    const std::string full_path = req.path;
    // A long poll (watch.h): the path's generation is taken before the engine reads.
    const bool poll = req.op == Operation::kRead && !req.query.empty() && req.QueryParam("wait");
    if (poll) req.watch_generation = watches_.Generation(full_path);
    req.storage = view;
    req.path = rest;
    absl::StatusOr<Response> result = backend->Handle(req);
    req.path = full_path;
    // A write the engine left in flight travels with its answer (an error answer does not
    // wait for it: the client learns nothing from it).
    if (req.pending_write && result.ok()) result->durable = std::move(req.pending_write);
    // An engine that failed after starting its write: the error goes out now, but the write
    // is waited for here, so that none runs on untracked (it calls back into the storage
    // wrappers, which must still exist). Engines check what can fail before they write.
    if (req.pending_write) (void)req.pending_write->Wait();
    req.pending_write.reset();
    if (result.ok() && !poll) result->park_ms = 0;
    if (result.ok() && req.op != Operation::kRead && req.op != Operation::kList &&
        req.op != Operation::kHead)
      watches_.Notify(full_path);
    return result;
  };

  // Unauthenticated paths (auth methods' logins, a PKI mount's CA and CRL) need no token:
  // audited and run; the token a login grants is issued here.
  if (backend && backend->Special().unauthenticated.Matches(rest)) {
    // sys/rekey and sys/generate-root change the unseal keys or make a root token: they take
    // key shares and an OTP (never written to the audit log, even with log_raw), answer with
    // new shares or an encoded token (raw bodies are not audited), and once done they must
    // reach the caller: a wrap refused after the fact or a failed response entry would lose
    // keys that are already in force.
    const bool key_ceremony = backend == system_.get() &&
                              (StartsWith(rest, "rekey/") || StartsWith(rest, "generate-root/"));
    if (key_ceremony && req.wrap_ttl > 0)
      return absl::InvalidArgumentError(
          "X-Vault-Wrap-TTL without a token wraps only logins: send a token to wrap this path");
    if (key_ceremony) {
      Request audited = req;
      audited.data.erase("key");
      audited.data.erase("otp");
      RETURN_IF_ERROR(audit_->LogRequest(audited, std::nullopt, absl::OkStatus()));
    } else {
      RETURN_IF_ERROR(audit_->LogRequest(req, std::nullopt, absl::OkStatus()));
    }
    absl::StatusOr<Response> result = run();
    if (result.ok() && result->login && mount) {
      auto st = IssueLoginToken(req, mount->entry, *result);
      if (!st.ok()) result = st;
    }
    // Without a token only a login is wrapped: anything else would let anyone store data (a
    // wrapping token and its cubbyhole) with no token at all.
    if (result.ok() && req.wrap_ttl > 0 && !result->auth)
      result = absl::InvalidArgumentError(
          "X-Vault-Wrap-TTL without a token wraps only logins: send a token to wrap this path");
    if (result.ok() && req.wrap_ttl > 0) {
      auto st = WrapResponse(req, *result, req.wrap_ttl);
      if (!st.ok()) result = st;
    }
    if (key_ceremony) {
      Request audited = req;
      audited.data.erase("key");
      audited.data.erase("otp");
      auto st = audit_->LogResponse(audited, std::nullopt, result);
      if (!st.ok())
        log::Warn("audit of a rekey/generate-root response failed; answered anyway",
                  {{"error", Msg(st)}});
      return result;
    }
    RETURN_IF_ERROR(audit_->LogResponse(req, std::nullopt, result));
    return result;
  }
  // Authentication, then authorization, then the audit request entry, before any engine runs.
  ASSIGN_OR_RETURN(auto token, tokens_->Lookup(req.client_token));
  const absl::Status denied = absl::PermissionDeniedError("permission denied");
  if (!token) {
    RETURN_IF_ERROR(audit_->LogRequest(req, std::nullopt, denied));
    return denied;
  }
  if (!UsableFrom(*token, req.remote_address)) {
    RETURN_IF_ERROR(audit_->LogRequest(req, token, denied));
    return denied;
  }
  // Vault's existence check: a write to something that does not exist needs "create".
  if (mount && req.op == Operation::kUpdate) {
    const std::string full_path = req.path;
    req.path = rest;
    req.storage = view;
    auto exists = backend->Exists(req);
    req.path = full_path;
    // An error here would reach a caller the ACL has not admitted yet, unaudited: treat it as
    // "no opinion" (update capability); the handler meets the same error after the ACL.
    if (exists.ok() && exists->has_value() && !**exists) req.op = Operation::kCreate;
  }
  const bool needs_sudo = backend && backend->Special().root.Matches(rest);
  ASSIGN_OR_RETURN(auto acl, policies_->AclFor(token->policies));
  const bool allowed = acl->Allows(req.path, req.op, needs_sudo);
  RETURN_IF_ERROR(audit_->LogRequest(req, token, allowed ? absl::OkStatus() : denied));
  if (!allowed) return denied;
  req.sudo = acl->root() || (acl->Capabilities(req.path, false) & kCapSudo);
  // A long poll's use of a limited-use token is counted once, on the pass that answers.
  const bool may_park = req.op == Operation::kRead && !req.no_park && !req.query.empty() &&
                        req.QueryParam("wait").has_value();
  if (!may_park) RETURN_IF_ERROR(tokens_->Use(*token));
  req.token = token;

  absl::StatusOr<Response> result;
  if (!backend) {
    result = absl::NotFoundError(
        Cat("no handler for route \"", req.path,
            "\": no secrets engine is mounted there (see `coffer secrets list`)"));
  } else {
    result = run();
    if (may_park) {
      // Parked: the pass that answers counts the token's use and audits the response.
      if (result.ok() && result->park_ms > 0) return result;
      if (auto st = tokens_->Use(*token); !st.ok()) result = st;
    }
    // An engine's secret with a lease: recorded before anyone sees the response.
    if (result.ok() && result->secret) {
      if (mount) {
        auto st = RegisterLease(req, mount->entry, rest, *result);
        if (!st.ok()) result = st;
      } else {
        result->secret.reset();
      }
    }
  }
  // Wrapped before the audit entry, as Vault: the log records what the client got, with the
  // wrapping token HMAC'd.
  if (result.ok() && req.wrap_ttl > 0) {
    auto st = WrapResponse(req, *result, req.wrap_ttl);
    if (!st.ok()) result = st;
  }
  // A standby's request that tried to write is answered by the active server, which audits
  // the response (the request entry written here stays: docs/ha.md).
  if (storage::StandbyGuardStorage::RefusedInScope()) return StandbyWriteError();
  // An audit device enabled while the engine ran: the response entry must record the final
  // answer, so the deferred write is waited for here (rare: Admit and HandleLocked checked).
  if (result.ok() && result->durable && audit_->Enabled()) {
    const absl::Status st = result->durable->Wait();
    if (!st.ok())
      result = st;
    else
      result->durable.reset();
  }
  RETURN_IF_ERROR(audit_->LogResponse(req, token, result));
  return result;
}

absl::Status Core::InvalidateAll() {
  {
    ReaderMutexLock l(&state_mu_);
    if (sealed_ || !standby_) return absl::OkStatus();
  }
  return LoadStandbyState();
}

absl::Status Core::InvalidateKey(std::string_view storage_key) {
  constexpr std::string_view kTokenIds = "sys/token/id/";
  {
    ReaderMutexLock l(&state_mu_);
    if (sealed_) return absl::OkStatus();  // nothing is cached while sealed
    if (storage_key == barrier::kKeyringPath) return barrier_->ReloadKeyring();
    if (StartsWith(storage_key, "sys/policy/")) {
      policies_->Clear();
      return absl::OkStatus();
    }
    if (StartsWith(storage_key, kTokenIds)) {
      tokens_->Invalidate(storage_key.substr(kTokenIds.size()));
      return absl::OkStatus();
    }
    const bool table =
        storage_key == "core/mounts" || storage_key == "core/audit" || storage_key == kClusterPath;
    if (!table) return InvalidateMountKeyLocked(storage_key);
    if (!standby_) return absl::OkStatus();  // the active server wrote it itself
  }
  return LoadStandbyState();
}

absl::Status Core::InvalidateMountKeyLocked(std::string_view storage_key) {
  std::vector<std::shared_ptr<Mount>> mounts;
  {
    ReaderMutexLock ml(&mounts_mu_);
    for (const auto& [path, m] : mounts_)
      if (m->view && StartsWith(storage_key, m->view->prefix())) mounts.push_back(m);
  }
  for (const auto& m : mounts)
    m->backend->InvalidateKey(storage_key.substr(m->view->prefix().size()));
  return absl::OkStatus();
}

storage::Storage* Core::MountStorage(std::string_view path) {
  ReaderMutexLock lock(&state_mu_);
  std::string rest;
  auto m = Route(path, &rest);
  return m ? m->view.get() : nullptr;
}

std::optional<int64_t> Core::MountMaxTtl(std::string_view path) const {
  std::string rest;
  auto m = Route(path, &rest);
  if (!m) return std::nullopt;
  return EffectiveMaxTtl(m->entry);
}

absl::Status Core::IssueLoginToken(const Request& req, const MountEntry& mount, Response& resp) {
  const LoginGrant& g = *resp.login;
  TokenEntry e;
  e.policies = g.policies;
  if (!g.no_default_policy) e.policies.emplace_back("default");
  std::sort(e.policies.begin(), e.policies.end());
  e.policies.erase(std::unique(e.policies.begin(), e.policies.end()), e.policies.end());
  if (std::find(e.policies.begin(), e.policies.end(), "root") != e.policies.end())
    return absl::PermissionDeniedError("an auth method cannot grant the root policy");
  if (std::string_view reserved = ReservedPolicyIn(e.policies); !reserved.empty())
    return absl::InvalidArgumentError(
        Cat("cannot assign policy \"", reserved, "\": fix the auth method's role that grants it"));
  if (e.policies.empty()) return absl::InvalidArgumentError("the login grants no policy");
  e.path = mount.path + "login";
  e.display_name = mount.path.substr(5, mount.path.size() - 6) +
                   (g.display_name.empty() ? "" : "-" + g.display_name);
  e.meta = g.metadata;
  e.renewable = g.renewable;
  e.num_uses = g.num_uses;
  e.bound_cidrs = g.bound_cidrs;
  e.explicit_max_ttl = g.max_ttl;
  const int64_t mount_max = EffectiveMaxTtl(mount);
  if (g.period > 0) {
    // A period is capped by the mount's max TTL, as Vault's CalculateTTL does: a role's period of
    // a year on a mount tuned to an hour gives hour-long tokens (each renewal an hour again).
    e.ttl = std::min(g.period, mount_max);
    e.period = e.ttl;  // renewals are capped again by this mount's max TTL as tuned then
    if (e.ttl < g.period)
      resp.warnings.push_back(Cat("period of \"", g.period,
                                  "s\" exceeded the effective max_ttl of \"", mount_max,
                                  "s\"; period value is capped accordingly"));
  } else {
    e.ttl = g.ttl > 0 ? g.ttl : EffectiveDefaultTtl(mount);
    e.ttl = std::min(e.ttl, mount_max);
  }
  if (e.explicit_max_ttl > 0 && e.ttl > e.explicit_max_ttl) e.ttl = e.explicit_max_ttl;
  ASSIGN_OR_RETURN(auto created, tokens_->Create(std::move(e)));
  resp.auth = AuthBlock(created.entry, created.token);
  resp.login.reset();
  log::Info("login", {{"mount", mount.path}, {"accessor", created.entry.accessor}});
  return absl::OkStatus();
}

absl::StatusOr<Response> Core::HandleAudit(Request& req, std::string_view p) {
  auto unsupported = [] { return UnsupportedOperation(); };
  if (p == "audit") {
    if (req.op != Operation::kRead) return unsupported();
    auto r = Response::Data(audit_->List());
    r.duplicate_data_at_top = true;
    return r;
  }
  // audit-hash/<path> hashes with a device's key; audit/<path> enables or disables a device (and
  // needs sudo). Either needs the device's path: "audit-hash" alone must never reach Enable.
  if (p == "audit-hash" || StartsWith(p, "audit-hash/")) {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return unsupported();
    if (p.size() <= 11)
      return absl::InvalidArgumentError(
          "the audit device's path is required: sys/audit-hash/<path>");
    ASSIGN_OR_RETURN(auto input, JsonString(req.data, "input"));
    if (!input) return absl::InvalidArgumentError("'input' is required");
    ASSIGN_OR_RETURN(std::string h, audit_->Hash(p.substr(11), *input));
    return Response::Data(json::object{{"hash", h}});
  }
  if (!StartsWith(p, "audit/")) return unsupported();
  std::string_view path = std::string_view(p).substr(6);
  if (path.empty() || path == "/")
    return absl::InvalidArgumentError("the audit device's path is required: sys/audit/<path>");
  switch (req.op) {
    case Operation::kCreate:
    case Operation::kUpdate: {
      ASSIGN_OR_RETURN(auto type, JsonString(req.data, "type"));
      ASSIGN_OR_RETURN(auto desc, JsonString(req.data, "description"));
      ASSIGN_OR_RETURN(auto local, JsonBool(req.data, "local"));
      json::object options;
      if (const auto* o = req.data.if_contains("options"); o && !o->is_null()) {
        if (!o->is_object()) return absl::InvalidArgumentError("options must be an object");
        options = o->as_object();
      }
      RETURN_IF_ERROR(audit_->Enable(path, type.value_or(""), desc.value_or(""), options,
                                     local.value_or(false)));
      log::Info("audit device enabled", {{"path", std::string(path)}});
      return Response::Empty();
    }
    case Operation::kDelete:
      RETURN_IF_ERROR(audit_->Disable(path));
      log::Info("audit device disabled", {{"path", std::string(path)}});
      return Response::Empty();
    default:
      return unsupported();
  }
}

}  // namespace coffer::core
