// `coffer server`: from a config file, or -dev (in-memory, initialized, unsealed, plain HTTP).
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX sigwait, sigset_t
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "autoseal/autoseal.h"
#include "boost/json.hpp"
#include "cli/cli.h"
#include "cli/client_util.h"
#include "config/server_config.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "etcd/etcd_storage.h"
#include "http/server.h"
#include "registry/builtin.h"
#include "storage/cache_storage.h"
#include "storage/memory_storage.h"
#include "storage/sqlite_storage.h"
#include "util/encoding.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::cli {
namespace {

struct ServerFlags {
  std::string config;
  bool dev = false;
  std::string dev_root_token_id;
  std::string dev_listen_address = "127.0.0.1:8200";
  std::string log_level;
  std::string log_format;
};

// config::ListenerConfig is what the file says; http::ListenerOptions is what the server takes.
// They are separate types because config sits below http (see docs/architecture.md, "Layers
// enforced by the build").
http::ListenerOptions ToListenerOptions(const config::ListenerConfig& c) {
  http::ListenerOptions o;
  o.address = c.address;
  o.tls_disable = c.tls_disable;
  o.tls_cert_file = c.tls_cert_file;
  o.tls_key_file = c.tls_key_file;
  o.tls_min_version = c.tls_min_version;
  o.tls_client_ca_file = c.tls_client_ca_file;
  o.require_client_cert = c.tls_require_and_verify_client_cert;
  o.disable_client_certs = c.tls_disable_client_certs;
  o.read_header_timeout = c.read_header_timeout;
  o.read_timeout = c.read_timeout;
  o.idle_timeout = c.idle_timeout;
  o.unauthenticated_idle_timeout = c.unauthenticated_idle_timeout;
  auto set = [](int64_t v, size_t* field) {
    if (v > 0) *field = static_cast<size_t>(v);
  };
  set(c.max_request_size, &o.limits.max_request_size);
  set(c.max_json_depth, &o.limits.json.max_depth);
  set(c.max_json_string_value_length, &o.limits.json.max_string_bytes);
  set(c.max_json_object_entry_count, &o.limits.json.max_object_entries);
  set(c.max_json_array_element_count, &o.limits.json.max_array_elements);
  set(c.max_json_token, &o.limits.json.max_tokens);
  set(c.max_connections, &o.max_connections);
  set(c.max_connections_per_client, &o.max_connections_per_client);
  o.custom_response_headers = c.custom_response_headers;
  return o;
}

core::CoreOptions BaseOptions() {
  core::CoreOptions o;
  registry::AddBackends(o);
  return o;
}

// As Go programs (Vault) do at start: the soft descriptor limit is raised to the hard one, so
// the listeners' default connection limit follows what the administrator allowed.
void RaiseDescriptorLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Blocks the signals we handle in every thread (threads inherit the mask); the main thread then
// waits for them with sigwait.
sigset_t BlockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForSignals(const sigset_t& set, http::HttpServer* server, core::Core* core) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      auto st = server->ReloadTls();
      if (st.ok())
        log::Info("SIGHUP: TLS certificates reloaded");
      else
        log::Error("SIGHUP: TLS reload failed, keeping the current certificates",
                   {{"error", Msg(st)}});
      auto au = core->ReopenAudit();
      if (!au.ok())
        log::Error("SIGHUP: an audit file could not be reopened; requests fail closed until it can",
                   {{"error", Msg(au)}});
      continue;
    }
    log::Info("shutting down", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    server->Stop();
    return kExitOk;
  }
}

// Under an auto seal the server unseals itself at start: a thread asks the seal for the root
// key, retrying with backoff while it cannot (0.25 s doubling to 1 s while the seal is
// unreachable, so a seal server that comes back is used within a second or two; 10 s for a
// refusal that needs an operator, such as a revoked token or a wrong PIN, so the seal's audit log
// is not flooded), and saying why in the log (once per distinct reason) and in sys/seal-status.
// A store not initialized yet costs a local read per second until init (which unseals by itself,
// or leaves the retry to this thread). It ends once the server is unsealed.
class AutoUnsealer {
 public:
  explicit AutoUnsealer(core::Core* core) : core_(core) {
    if (core_->HasAutoSeal()) thread_ = std::thread([this] { Run(); });
  }
  ~AutoUnsealer() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::chrono::milliseconds wait{250};
    std::string last_error;
    for (;;) {
      auto initialized = core_->Initialized();
      absl::Status st = initialized.ok() && !*initialized ? absl::OkStatus() : core_->AutoUnseal();
      if (st.ok() && initialized.ok() && *initialized) return;
      std::chrono::milliseconds next = wait;
      if (st.ok()) {
        next = std::chrono::milliseconds(1000);  // not initialized yet
      } else if (st.code() != absl::StatusCode::kUnavailable) {
        next = std::chrono::milliseconds(10000);
      } else {
        wait = std::min(wait * 2, std::chrono::milliseconds(1000));
      }
      if (!st.ok() && std::string(st.message()) != last_error) {
        last_error = std::string(st.message());
        log::Warn("auto unseal failed; the server stays sealed and retries",
                  {{"error", last_error}});
      }
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, next, [&] { return stopping_; })) return;
    }
  }

  core::Core* core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// HA on etcd (docs/ha.md): campaigns for the storage lock whenever this server could serve (it
// holds the root key as a standby, or the store is not initialized yet), becomes active when it
// wins, and steps down when it loses the lock or an operator seals it.
class HaLoop {
 public:
  HaLoop(core::Core* core, etcd::EtcdStorage* etcd, std::string api_addr)
      : core_(core), etcd_(etcd), api_addr_(std::move(api_addr)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~HaLoop() { Stop(); }
  // sys/step-down: give the lock up, and leave the standbys a head start before campaigning.
  void StepDown() { step_down_.store(true); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Sleep(std::chrono::milliseconds d) {
    for (auto t = std::chrono::milliseconds(0); t < d && !stop_.load();
         t += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  void Run() {
    while (!stop_.load()) {
      auto initialized = core_->Initialized();
      if (!core_->StandbyReady() && !(initialized.ok() && !*initialized)) {
        Sleep(std::chrono::milliseconds(200));
        continue;
      }
      if (!etcd_->Campaign(api_addr_, &stop_).ok()) return;
      if (absl::Status st = core_->Activate(); !st.ok()) {
        log::Error("HA: could not become active", {{"error", Msg(st)}});
        core_->StepDown();
        etcd_->Resign();
        Sleep(std::chrono::milliseconds(1000));
        continue;
      }
      log::Info("HA: this server is active", {{"api_addr", api_addr_}});
      step_down_.store(false);  // a request from before this term does not end it
      bool stepped_down = false;
      while (!stop_.load()) {
        if (step_down_.exchange(false)) {
          log::Info("HA: stepping down on request");
          stepped_down = true;
          break;
        }
        if (!etcd_->IsLeader()) {
          log::Warn("HA: this server lost the lock; stepping down");
          break;
        }
        auto i = core_->Initialized();
        if (core_->Sealed() && i.ok() && *i) {
          log::Info("HA: sealed; giving the lock to a standby that can serve");
          break;
        }
        Sleep(std::chrono::milliseconds(100));
      }
      core_->StepDown();
      etcd_->Resign();
      if (stepped_down) Sleep(std::chrono::milliseconds(3000));
    }
  }

  core::Core* core_;
  etcd::EtcdStorage* etcd_;
  std::string api_addr_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> step_down_{false};
  std::thread thread_;
};

// HA standbys that serve (docs/ha.md): on a standby holding the root key, loads the state
// read-only and watches the storage prefix in etcd, dropping what changed from the caches
// (Core::InvalidateKey) within milliseconds of the active server's write. Freshness is proved,
// not assumed: a second thread puts this server's heartbeat key every kBeat; once the watch has
// delivered that put's revision, every change committed before the put was sent has been
// applied (etcd delivers a watch's events in revision order), and the core serves what needs no
// write as of that moment (Core::SetStandbyCurrent). A stalled or failed watch, a failed
// invalidation or a missed stretch of history makes it stale at once (everything forwarded)
// until it has caught up again; a failed invalidation or a compacted history reloads it all.
class HaWatch {
 public:
  HaWatch(core::Core* core, etcd::EtcdStorage* etcd, const std::string& api_addr)
      : core_(core), etcd_(etcd), id_(HexEncode(crypto::Sha256(api_addr)).substr(0, 16)) {
    watch_ = std::thread([this] { Run(); });
    beat_ = std::thread([this] { Beat(); });
  }
  ~HaWatch() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (watch_.joinable()) watch_.join();
    if (beat_.joinable()) beat_.join();
  }

 private:
  static constexpr std::chrono::milliseconds kBeat{250};
  void Sleep(std::chrono::milliseconds d) {
    for (auto t = std::chrono::milliseconds(0); t < d && !stop_.load();
         t += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::min(d - t, std::chrono::milliseconds(50)));
  }
  // Logs a failure once until it changes or things work again.
  void Report(const std::string& what, const absl::Status& st) {
    const std::string m = Cat(what, ": ", Msg(st));
    MutexLock l(&report_mu_);
    if (m == last_error_) return;
    last_error_ = m;
    log::Warn("HA standby", {{"error", m}});
  }
  void Beat() {
    while (!stop_.load()) {
      if (core_->StandbyServing()) {
        const int64_t sent = core::Core::SteadyMillis();
        auto rev = etcd_->Heartbeat(id_);
        if (rev.ok()) {
          MutexLock l(&beat_mu_);
          if (beats_.empty() || *rev > beats_.back().first) beats_.emplace_back(*rev, sent);
          while (beats_.size() > 16) beats_.pop_front();
        } else {
          Report("writing the heartbeat", rev.status());
        }
      }
      Sleep(kBeat);
    }
  }
  void Run() {
    int64_t next = 0;
    bool loaded = false;
    while (!stop_.load()) {
      if (!core_->StandbyReady()) {  // active, or a standby without the key
        loaded = false;
        Sleep(std::chrono::milliseconds(200));
        continue;
      }
      if (!loaded || !core_->StandbyServing()) {
        auto rev = etcd_->Revision();
        absl::Status st = rev.ok() ? core_->LoadStandbyState() : rev.status();
        if (!st.ok()) {
          Report("could not load the state to serve from (every request is forwarded)", st);
          Sleep(std::chrono::milliseconds(2000));
          continue;
        }
        next = *rev + 1;
        loaded = true;
        MutexLock l(&report_mu_);
        last_error_.clear();
      }
      bool failed = false;
      std::atomic<bool> halt{false};  // stopping, or no longer a standby that serves
      absl::Status st = etcd_->WatchOnce(
          &next, std::chrono::milliseconds(2000),
          [&](const etcd::EtcdStorage::WatchBatch& b) {
            if (stop_.load() || !core_->StandbyServing()) halt.store(true);
            if (failed || halt.load()) return;
            for (const auto& key : b.keys) {
              if (absl::Status s = core_->InvalidateKey(key); !s.ok()) {
                // What it caches from that key may be stale: everything is loaded again.
                core_->SetStandbyStale();
                Report(Cat("dropping the cached ", key, " (reloading everything)"), s);
                failed = true;
                halt.store(true);
                return;
              }
            }
            // The newest heartbeat the watch has delivered: current as of when it was sent (a
            // watch a little behind still proves the beats before the last).
            MutexLock l(&beat_mu_);
            std::optional<int64_t> as_of;
            while (!beats_.empty() && beats_.front().first <= b.through) {
              as_of = beats_.front().second;
              beats_.pop_front();
            }
            if (as_of) core_->SetStandbyCurrent(*as_of);
          },
          &halt);
      if (stop_.load()) break;
      if (halt.load()) continue;  // the role changed: loaded again, or not watched while active
      if (failed) {
        loaded = false;
        continue;
      }
      core_->SetStandbyStale();
      if (absl::IsOutOfRange(st)) {
        Report("the watch missed changes; reloading", st);
        loaded = false;
        continue;
      }
      Report("the watch failed (requests are forwarded until it is back)", st);
      (void)etcd_->Revision();  // fetches a new etcd auth token when the old one expired
      Sleep(std::chrono::milliseconds(250));
    }
  }

  core::Core* core_;
  etcd::EtcdStorage* etcd_;
  const std::string id_;  // the heartbeat key's name: from api_addr, stable across restarts
  std::atomic<bool> stop_{false};
  Mutex report_mu_;
  std::string last_error_ ABSL_GUARDED_BY(report_mu_);
  Mutex beat_mu_;
  // The heartbeats put and not yet seen through the watch: (revision, when sent: SteadyMillis).
  std::deque<std::pair<int64_t, int64_t>> beats_ ABSL_GUARDED_BY(beat_mu_);
  std::thread watch_;
  std::thread beat_;
};

int RunDev(const ServerFlags& f) {
  auto st = log::Configure(f.log_level.empty() ? "info" : f.log_level,
                           f.log_format.empty() ? "text" : f.log_format);
  if (!st.ok()) {
    std::cerr << "Error: " << st.message() << "\n";
    return kExitLocal;
  }
  RaiseDescriptorLimit();
  sigset_t set = BlockSignals();
  auto physical = std::make_unique<storage::MemoryStorage>();
  auto opts = BaseOptions();
  opts.physical = physical.get();
  opts.storage_type = "inmem";
  auto core = core::Core::Create(std::move(opts));
  if (!core.ok()) {
    std::cerr << "Error: " << core.status().message() << "\n";
    return kExitLocal;
  }
  auto init = (*core)->Initialize(1, 1, f.dev_root_token_id);
  if (!init.ok()) {
    std::cerr << "Error: " << init.status().message() << "\n";
    return kExitLocal;
  }
  std::string unseal_key = Base64Encode(init->keys[0].view());
  auto un = (*core)->Unseal(unseal_key, false);
  if (!un.ok()) {
    std::cerr << "Error: " << un.status().message() << "\n";
    return kExitLocal;
  }
  core::MountEntry secret;
  secret.path = "secret/";
  secret.type = "kv";
  secret.options["version"] = "2";  // as Vault's dev server: secret/ is versioned
  secret.description = "key/value secret storage";
  (void)(*core)->EnableMount(secret);
  http::ServerOptions so;
  http::ListenerOptions lo;
  lo.address = f.dev_listen_address;
  lo.tls_disable = true;
  so.listeners.push_back(lo);
  auto server = http::HttpServer::Start(core->get(), so);
  if (!server.ok()) {
    std::cerr << "Error: " << server.status().message() << "\n";
    return kExitLocal;
  }
  std::string addr = "http://" + (*server)->Addresses()[0];
  // As vault's dev server, which hands the root token to its token helper: the CLI on this
  // machine is logged in. Not without a HOME (a service account): no file is written then.
  const char* home = std::getenv("HOME");
  const bool stored = home && *home && StoreToken(init->root_token);
  if (home && *home && !stored)
    log::Warn("could not store the root token", {{"path", TokenFilePath()}});
  std::cout << "==> Coffer server configuration:\n\n"
            << "             Api Address: " << addr << "\n"
            << "                 Storage: inmem\n"
            << "                 Version: Coffer v" << COFFER_VERSION << "\n\n"
            << "WARNING! dev mode is enabled! The server runs in memory, unsealed and over plain\n"
            << "HTTP: never use it for real secrets.\n\n"
            << "    $ export COFFER_ADDR='" << addr << "'\n\n"
            << "Unseal Key: " << unseal_key << "\n"
            << "Root Token: " << init->root_token << "\n\n"
            << (stored ? "The root token is stored in " + TokenFilePath() + ".\n\n" : "")
            << "==> Coffer server started!\n"
            << std::flush;
  log::Info("dev server started", {{"address", addr}});
  return WaitForSignals(set, server->get(), core->get());
}

int RunFromConfig(const ServerFlags& f) {
  auto cfg = config::LoadServerConfig(f.config);
  if (!cfg.ok()) {
    std::cerr << "Error loading configuration: " << cfg.status().message() << "\n";
    return kExitLocal;
  }
  auto st = log::Configure(f.log_level.empty() ? cfg->log_level : f.log_level,
                           f.log_format.empty() ? cfg->log_format : f.log_format);
  if (!st.ok()) {
    std::cerr << "Error: " << st.message() << "\n";
    return kExitLocal;
  }
  for (const std::string& w : cfg->warnings) log::Warn(w);
  RaiseDescriptorLimit();
  sigset_t set = BlockSignals();
  auto opened = registry::OpenStorage(cfg->storage_type, cfg->storage_options);
  if (!opened.ok()) {
    std::cerr << "Error opening storage: " << opened.status().message() << "\n";
    return kExitLocal;
  }
  std::unique_ptr<storage::Storage> physical = std::move(*opened);
  auto opts = BaseOptions();
  opts.physical = physical.get();
  opts.storage_type = cfg->storage_type;
  // The read cache only where this server is the storage's one writer: SQLite (one server per
  // database file, its lock). Over etcd other servers write, and a cache would go stale.
  auto* sqlite = dynamic_cast<storage::SqliteStorage*>(physical.get());
  if (sqlite && sqlite->exclusive() && !cfg->disable_cache)
    opts.storage_cache_entries = cfg->cache_size > 0 ? static_cast<size_t>(cfg->cache_size)
                                                     : storage::CacheStorage::kDefaultEntries;
  if (cfg->default_lease_ttl > 0) opts.default_lease_ttl = cfg->default_lease_ttl;
  if (cfg->max_lease_ttl > 0) opts.max_lease_ttl = cfg->max_lease_ttl;
  opts.prometheus_metrics = cfg->telemetry.prometheus_enabled;
  opts.usage_gauge_period = cfg->telemetry.usage_gauge_period;
  opts.maximum_gauge_cardinality = cfg->telemetry.maximum_gauge_cardinality;
  std::string seal_type = "shamir";
  for (const config::SealStanza& sc : cfg->seals) {
    auto w = autoseal::NewWrapper(sc);
    if (!w.ok()) {
      std::cerr << "Error configuring the seal: " << w.status().message() << "\n";
      return kExitLocal;
    }
    if (!sc.disabled) seal_type = sc.type;
    (sc.disabled ? opts.disabled_seal_wrapper : opts.seal_wrapper) = std::move(*w);
  }
  auto* etcd_storage = dynamic_cast<etcd::EtcdStorage*>(physical.get());
  std::optional<HaLoop> ha_loop;  // started once the listeners are up
  std::optional<HaWatch> ha_watch;
  std::atomic<HaLoop*> ha_loop_ptr{nullptr};  // what sys/step-down reaches, once started
  const bool ha = etcd_storage && etcd_storage->ha();
  std::string api_addr = cfg->api_addr;
  // Redirects append the request's /v1/... path to it.
  while (!api_addr.empty() && api_addr.back() == '/') api_addr.pop_back();
  if (ha) {
    // Clients are sent to this address: it must be one they can reach this server at.
    const bool unspecified = api_addr.find("://0.0.0.0") != std::string::npos ||
                             api_addr.find("://[::]") != std::string::npos;
    if (api_addr.empty() || unspecified ||
        (api_addr.rfind("https://", 0) != 0 && api_addr.rfind("http://", 0) != 0)) {
      std::cerr << "Error: ha_enabled needs api_addr, the address clients reach this server at "
                   "(api_addr = \"https://10.0.0.1:8200\"), not a listener's 0.0.0.0"
                << (api_addr.empty() ? "" : Cat(" (got \"", api_addr, "\")")) << "\n";
      return kExitLocal;
    }
    opts.ha_api_addr = api_addr;
    opts.ha_enabled = true;
    opts.ha_step_down = [&ha_loop_ptr] {
      if (HaLoop* l = ha_loop_ptr.load()) l->StepDown();
    };
    // Every request a standby forwards needs the active server's address: read from etcd at
    // most every half second (a failover takes seconds; a stale address gets a 421 there, and
    // the client a 307).
    struct LeaderCache {
      std::mutex mu;
      std::string value;
      std::chrono::steady_clock::time_point at;
    };
    auto cache = std::make_shared<LeaderCache>();
    opts.ha_leader = [etcd_storage, cache, api_addr]() -> std::string {
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard<std::mutex> l(cache->mu);
        if (!cache->value.empty() && now - cache->at < std::chrono::milliseconds(500))
          return cache->value;
      }
      auto l = etcd_storage->Leader();
      std::string v = l.ok() ? *l : std::string();
      // Its own address (a lock it held before stepping down or restarting, until the lease
      // lapses) is never kept: the next request reads again.
      if (v == api_addr) return v;
      std::lock_guard<std::mutex> g(cache->mu);
      cache->value = v;
      cache->at = now;
      return v;
    };
  }
  auto core = core::Core::Create(std::move(opts));
  if (!core.ok()) {
    std::cerr << "Error: " << core.status().message() << "\n";
    return kExitLocal;
  }
  http::ServerOptions so;
  for (const config::ListenerConfig& l : cfg->listeners)
    so.listeners.push_back(ToListenerOptions(l));
  // etcd's reads wait on the network: no request may hold an event loop for a round trip.
  so.offload_reads = cfg->storage_type == "etcd";
  so.forward_requests = !cfg->disable_forwarding;
  auto server = http::HttpServer::Start(core->get(), so);
  if (!server.ok()) {
    std::cerr << "Error starting listeners: " << server.status().message() << "\n";
    return kExitLocal;
  }
  std::cout << "==> Coffer server configuration:\n\n";
  for (size_t i = 0; i < cfg->listeners.size(); ++i)
    std::cout << "                Listener " << i + 1 << ": tcp (addr: \""
              << (*server)->Addresses()[i] << "\", tls: \""
              << (cfg->listeners[i].tls_disable ? "disabled" : "enabled") << "\")\n";
  std::cout << "                 Storage: " << cfg->storage_type << "\n"
            << "                    Seal: " << seal_type << "\n"
            << "                 Version: Coffer v" << COFFER_VERSION
            << "\n\n==> Coffer server started!\n"
            << std::flush;
  std::string addrs;
  for (const auto& a : (*server)->Addresses()) addrs += (addrs.empty() ? "" : ",") + a;
  log::Info("server started",
            {{"listeners", addrs}, {"storage", cfg->storage_type}, {"seal", seal_type}});
  AutoUnsealer unsealer(core->get());
  if (ha) {
    log::Info("HA enabled: this server starts as a standby", {{"api_addr", api_addr}});
    ha_loop.emplace(core->get(), etcd_storage, api_addr);
    ha_loop_ptr.store(&*ha_loop);
    if (!cfg->disable_performance_standby) ha_watch.emplace(core->get(), etcd_storage, api_addr);
  }
  int rc = WaitForSignals(set, server->get(), core->get());
  ha_loop_ptr.store(nullptr);
  if (ha_watch) ha_watch->Stop();
  if (ha_loop) ha_loop->Stop();
  unsealer.Stop();
  return rc;
}

}  // namespace

void RegisterServerCommand(CLI::App& app, int* exit_code) {
  auto f = std::make_shared<ServerFlags>();
  auto* s = app.add_subcommand("server", "Run the Coffer server");
  s->add_option("--config", f->config, "Configuration file (HCL or JSON)");
  s->add_flag("--dev", f->dev, "Development mode: in memory, initialized, unsealed, plain HTTP");
  s->add_option("--dev-root-token-id", f->dev_root_token_id,
                "Dev mode: the root token's ID (default: random; env COFFER_DEV_ROOT_TOKEN_ID, "
                "VAULT_DEV_ROOT_TOKEN_ID)");
  s->add_option("--dev-listen-address", f->dev_listen_address,
                "Dev mode listen address (env COFFER_DEV_LISTEN_ADDRESS, VAULT_DEV_LISTEN_ADDRESS)")
      ->capture_default_str();
  s->add_option("--log-level", f->log_level, "trace, debug, info, warn or error");
  s->add_option("--log-format", f->log_format, "text or json");
  s->callback([f, s, exit_code] {
    if (f->dev) {
      // The flags win over the environment, as vault's.
      if (f->dev_root_token_id.empty())
        f->dev_root_token_id = Env("COFFER_DEV_ROOT_TOKEN_ID", "VAULT_DEV_ROOT_TOKEN_ID");
      if (s->count("--dev-listen-address") == 0)
        if (std::string a = Env("COFFER_DEV_LISTEN_ADDRESS", "VAULT_DEV_LISTEN_ADDRESS");
            !a.empty())
          f->dev_listen_address = a;
      *exit_code = RunDev(*f);
      return;
    }
    if (f->config.empty()) {
      std::cerr << "Error: a configuration file is required (-config=FILE), or -dev for a "
                   "development server\n";
      *exit_code = kExitLocal;
      return;
    }
    *exit_code = RunFromConfig(*f);
  });
}

}  // namespace coffer::cli
