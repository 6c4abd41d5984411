#include "core/core.h"

#include <openssl/crypto.h>

#include <charconv>
#include <chrono>

#include "absl/time/clock.h"
#include "auth/approle/approle_backend.h"
#include "auth/token/token_backend.h"
#include "boost/json.hpp"
#include "core/acl.h"
#include "crypto/crypto.h"
#include "util/cidr.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;

namespace {
constexpr char kClusterPath[] = "core/cluster";

absl::Status SealedError() {
  return absl::UnavailableError("Vault is sealed: unseal it with `coffer operator unseal`");
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

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

Core::Core(CoreOptions opts) : opts_(std::move(opts)) {}
Core::~Core() {
  {
    std::lock_guard<std::mutex> l(tidy_mu_);
    stopping_ = true;
  }
  tidy_cv_.notify_all();
  if (tidy_thread_.joinable()) tidy_thread_.join();
  absl::MutexLock l(&state_mu_);
  SealLocked();
}

absl::Status Core::ReopenAudit() {
  absl::ReaderMutexLock l(&state_mu_);
  if (sealed_) return absl::OkStatus();
  return audit_->Reopen();
}

absl::StatusOr<int> Core::TidyNow() {
  absl::ReaderMutexLock l(&state_mu_);
  if (sealed_) return SealedError();
  return tokens_->Tidy(100000);
}

void Core::TidyLoop() {
  std::unique_lock<std::mutex> l(tidy_mu_);
  while (!stopping_) {
    tidy_cv_.wait_for(l, opts_.tidy_interval);
    if (stopping_) break;
    l.unlock();
    auto n = TidyNow();
    if (n.ok() && *n > 0) log::Info("expired tokens removed", {{"count", std::to_string(*n)}});
    l.lock();
  }
}

absl::StatusOr<std::unique_ptr<Core>> Core::Create(CoreOptions opts) {
  if (!opts.physical) return absl::InvalidArgumentError("core needs a storage backend");
  std::unique_ptr<Core> c(new Core(std::move(opts)));
  c->seal_ = std::make_unique<seal::ShamirSeal>(c->opts_.physical);
  c->barrier_ = std::make_unique<barrier::Barrier>(c->opts_.physical);
  c->tokens_ = std::make_unique<TokenStore>(c->barrier_.get(), c->opts_.clock);
  c->policies_ = std::make_unique<PolicyStore>(c->barrier_.get());
  c->audit_ = std::make_unique<AuditBroker>(c->barrier_.get(), c->opts_.clock);
  Core* raw = c.get();
  c->auth_factories_["token"] =
      [raw](const MountEntry&) -> absl::StatusOr<std::unique_ptr<Backend>> {
    return auth::token::NewBackend(raw->tokens_.get(), raw->opts_.clock);
  };
  c->auth_factories_["approle"] = [raw](const MountEntry& e) {
    return auth::approle::Factory(e, raw->opts_.clock);
  };
  if (c->opts_.tidy_interval.count() > 0) c->tidy_thread_ = std::thread([raw] { raw->TidyLoop(); });
  return c;
}

bool Core::Sealed() const {
  absl::ReaderMutexLock l(&state_mu_);
  return sealed_;
}

absl::StatusOr<bool> Core::Initialized() {
  ASSIGN_OR_RETURN(auto cfg, seal_->Config());
  return cfg.has_value();
}

void Core::SealLocked() {
  {
    absl::MutexLock l(&mounts_mu_);
    mounts_.clear();
  }
  tokens_->Clear();
  policies_->Clear();
  audit_->Clear();
  barrier_->Seal();
  seal_->Reset();
  sealed_ = true;
  cluster_id_.clear();
  cluster_name_.clear();
}

absl::Status Core::Seal() {
  absl::MutexLock l(&state_mu_);
  if (!sealed_) log::Info("sealing server");
  SealLocked();
  return absl::OkStatus();
}

absl::StatusOr<InitResult> Core::Initialize(int shares, int threshold) {
  RETURN_IF_ERROR(seal::ValidateShares(shares, threshold));
  absl::MutexLock l(&state_mu_);
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
    ASSIGN_OR_RETURN(out.root_token, tokens_->CreateRootToken());
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
    json::array entries{sys.ToStorage(), tok.ToStorage()};
    RETURN_IF_ERROR(
        barrier_->Put("core/mounts", json::serialize(json::object{{"entries", entries}})));
    ASSIGN_OR_RETURN(out.keys, seal_->Initialize(shares, threshold, root_key));
    return absl::OkStatus();
  };
  absl::Status st = setup();
  // Vault stays sealed after init: the operator unseals with the keys just handed out.
  SealLocked();
  if (!st.ok()) return st;
  log::Info("server initialized", {{"secret_shares", std::to_string(shares)},
                                   {"secret_threshold", std::to_string(threshold)}});
  return out;
}

absl::StatusOr<json::object> Core::SealStatus() {
  ASSIGN_OR_RETURN(auto cfg, seal_->Config());
  auto progress = seal_->CurrentProgress();
  json::object o{{"type", "shamir"},
                 {"initialized", cfg.has_value()},
                 {"sealed", true},
                 {"t", cfg ? cfg->secret_threshold : 0},
                 {"n", cfg ? cfg->secret_shares : 0},
                 {"progress", progress.progress},
                 {"nonce", progress.nonce},
                 {"version", COFFER_VERSION},
                 {"build_date", ""},
                 {"migration", false},
                 {"recovery_seal", false},
                 {"storage_type", opts_.storage_type}};
  absl::ReaderMutexLock l(&state_mu_);
  o["sealed"] = sealed_;
  if (!sealed_) {
    o["cluster_name"] = cluster_name_;
    o["cluster_id"] = cluster_id_;
  }
  return o;
}

absl::StatusOr<json::object> Core::Unseal(std::string_view key, bool reset) {
  if (reset) {
    seal_->Reset();
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
  std::optional<std::string> raw = HexDecode(key);
  if (!raw) raw = Base64Decode(key);
  if (!raw) return absl::InvalidArgumentError("'key' must be a valid hex or base64 string");
  crypto::SecretBytes share(*raw);
  OPENSSL_cleanse(raw->data(), raw->size());
  ASSIGN_OR_RETURN(auto step, seal_->Submit(share.view()));
  if (step.root_key) {
    absl::MutexLock l(&state_mu_);
    if (sealed_) {
      auto st = barrier_->Unseal(*step.root_key);
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
      if (!st.ok()) {
        SealLocked();
        return st;
      }
      sealed_ = false;
      log::Info("server unsealed");
    }
  }
  return SealStatus();
}

absl::StatusOr<Response> Core::HandleInitRequest(Request& req) {
  if (req.op == Operation::kRead) {
    ASSIGN_OR_RETURN(bool initialized, Initialized());
    Response r;
    r.raw = true;
    r.raw_body = json::serialize(json::object{{"initialized", initialized}});
    return r;
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
    return UnsupportedOperation("sys/init takes GET or PUT");
  for (const char* unsupported : {"pgp_keys", "root_token_pgp_key"}) {
    const auto* v = req.data.if_contains(unsupported);
    if (v && !v->is_null() && !(v->is_string() && v->as_string().empty()) &&
        !(v->is_array() && v->as_array().empty()))
      return absl::InvalidArgumentError(Cat(unsupported, " is not supported by Coffer yet"));
  }
  ASSIGN_OR_RETURN(auto shares, JsonInt(req.data, "secret_shares"));
  ASSIGN_OR_RETURN(auto threshold, JsonInt(req.data, "secret_threshold"));
  if (!shares) return absl::InvalidArgumentError("secret_shares is required (for example 5)");
  if (!threshold) return absl::InvalidArgumentError("secret_threshold is required (for example 3)");
  if (*shares > 255 || *shares < 0 || *threshold > 255 || *threshold < 0)
    return absl::InvalidArgumentError(*shares > 255 ? "secret_shares must be at most 255"
                                                    : "secret_threshold must be between 1 and 255");
  ASSIGN_OR_RETURN(InitResult res,
                   Initialize(static_cast<int>(*shares), static_cast<int>(*threshold)));
  json::array keys, keys_b64;
  for (const auto& k : res.keys) {
    keys.emplace_back(HexEncode(k.view()));
    keys_b64.emplace_back(Base64Encode(k.view()));
  }
  Response r;
  r.raw = true;
  r.raw_body = json::serialize(
      json::object{{"keys", keys}, {"keys_base64", keys_b64}, {"root_token", res.root_token}});
  return r;
}

absl::StatusOr<Response> Core::HandleUnsealRequest(Request& req) {
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
    return UnsupportedOperation("sys/unseal takes PUT");
  ASSIGN_OR_RETURN(auto reset, JsonBool(req.data, "reset"));
  ASSIGN_OR_RETURN(auto key, JsonString(req.data, "key"));
  ASSIGN_OR_RETURN(auto status, Unseal(key.value_or(""), reset.value_or(false)));
  Response r;
  r.raw = true;
  r.raw_body = json::serialize(status);
  return r;
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
  (void)standby;  // a single node is always active; standbys arrive with the etcd backend.
  ASSIGN_OR_RETURN(bool initialized, Initialized());
  bool sealed = Sealed();
  json::object body{{"initialized", initialized},
                    {"sealed", sealed},
                    {"standby", false},
                    {"performance_standby", false},
                    {"replication_performance_mode", "disabled"},
                    {"replication_dr_mode", "disabled"},
                    {"server_time_utc", absl::ToUnixSeconds(absl::Now())},
                    {"version", COFFER_VERSION}};
  if (!sealed) {
    absl::ReaderMutexLock l(&state_mu_);
    body["cluster_name"] = cluster_name_;
    body["cluster_id"] = cluster_id_;
  }
  Response r;
  r.raw = true;
  r.http_status = !initialized ? uninit : sealed ? sealedcode : active;
  if (req.op != Operation::kHead) r.raw_body = json::serialize(body);
  return r;
}

absl::StatusOr<Response> Core::Handle(Request& req) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Response> result;
  const std::string& p = req.path;
  if (p == "sys/init") {
    result = HandleInitRequest(req);
  } else if (p == "sys/unseal") {
    result = HandleUnsealRequest(req);
  } else if (p == "sys/seal-status") {
    if (req.op != Operation::kRead) {
      result = UnsupportedOperation("sys/seal-status takes GET");
    } else {
      auto st = SealStatus();
      if (st.ok()) {
        Response r;
        r.raw = true;
        r.raw_body = json::serialize(*st);
        result = std::move(r);
      } else {
        result = st.status();
      }
    }
  } else if (p == "sys/health") {
    result = (req.op == Operation::kRead || req.op == Operation::kHead)
                 ? HandleHealth(req)
                 : absl::StatusOr<Response>(UnsupportedOperation("sys/health takes GET or HEAD"));
  } else if (p == "sys/leader") {
    Response r;
    r.raw = true;
    r.raw_body = json::serialize(json::object{{"ha_enabled", false},
                                              {"is_self", true},
                                              {"leader_address", ""},
                                              {"leader_cluster_address", ""},
                                              {"performance_standby", false}});
    result = std::move(r);
  } else {
    bool seal_after = false;
    {
      absl::ReaderMutexLock l(&state_mu_);
      result = sealed_ ? absl::StatusOr<Response>(SealedError()) : HandleLocked(req);
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

namespace {
// Paths that need "sudo" on top of the operation's capability (Vault's root-protected paths).
bool IsSudoPath(std::string_view p) {
  for (std::string_view exact :
       {"sys/rotate", "sys/seal", "sys/step-down", "sys/audit", "sys/audit/", "sys/raw",
        "auth/token/accessors", "auth/token/accessors/", "auth/token/revoke-orphan"})
    if (p == exact) return true;
  for (std::string_view prefix :
       {"sys/audit/", "sys/raw/", "sys/auth/", "sys/leases/revoke-prefix/",
        "sys/leases/revoke-force/", "auth/token/revoke-orphan/"})
    if (p.substr(0, prefix.size()) == prefix) return true;
  return false;
}
}  // namespace

absl::StatusOr<Response> Core::HandleLocked(Request& req) {
  // Unauthenticated paths (auth methods' logins, a PKI mount's CA and CRL) need no token:
  // audited and run; the token a login grants is issued here.
  if (!StartsWith(req.path, "sys/")) {
    std::string rest;
    auto mount = Route(req.path, &rest);
    if (mount && mount->backend->Unauthenticated(rest)) {
      req.mount_point = mount->entry.path;
      req.mount_type = mount->entry.type;
      RETURN_IF_ERROR(audit_->LogRequest(req, std::nullopt, absl::OkStatus()));
      const std::string full_path = req.path;
      req.mount_default_ttl = EffectiveDefaultTtl(mount->entry);
      req.mount_max_ttl = EffectiveMaxTtl(mount->entry);
      req.storage = mount->view.get();
      req.path = rest;
      absl::StatusOr<Response> result = mount->backend->Handle(req);
      req.path = full_path;
      if (result.ok() && result->login) {
        auto st = IssueLoginToken(req, mount->entry, *result);
        if (!st.ok()) result = st;
      }
      RETURN_IF_ERROR(audit_->LogResponse(req, std::nullopt, result));
      return result;
    }
  }
  // Authentication, then authorization, then the audit request entry, before any engine runs.
  ASSIGN_OR_RETURN(auto token, tokens_->Lookup(req.client_token));
  const absl::Status denied = absl::PermissionDeniedError("permission denied");
  if (!token) {
    RETURN_IF_ERROR(audit_->LogRequest(req, std::nullopt, denied));
    return denied;
  }
  if (!token->bound_cidrs.empty()) {
    bool inside = false;
    for (const auto& c : token->bound_cidrs) inside = inside || CidrContains(c, req.remote_address);
    if (!inside) {
      RETURN_IF_ERROR(audit_->LogRequest(req, token, denied));
      return denied;
    }
  }

  std::string rest;
  std::shared_ptr<Mount> mount;
  const bool system = StartsWith(req.path, "sys/") || req.path == "sys";
  if (system) {
    req.mount_point = "sys/";
    req.mount_type = "system";
  } else {
    mount = Route(req.path, &rest);
    if (mount) {
      req.mount_point = mount->entry.path;
      req.mount_type = mount->entry.type;
    }
    // Vault's existence check: a write to something that does not exist needs "create".
    if (mount && req.op == Operation::kUpdate) {
      Request probe;
      probe.op = req.op;
      probe.path = rest;
      probe.storage = mount->view.get();
      probe.mount_point = mount->entry.path;
      ASSIGN_OR_RETURN(auto exists, mount->backend->Exists(probe));
      if (exists.has_value() && !*exists) req.op = Operation::kCreate;
    }
  }
  ASSIGN_OR_RETURN(auto acl, policies_->AclFor(token->policies));
  const bool allowed = acl->Allows(req.path, req.op, IsSudoPath(req.path));
  RETURN_IF_ERROR(audit_->LogRequest(req, token, allowed ? absl::OkStatus() : denied));
  if (!allowed) return denied;
  req.sudo = acl->root() || (acl->Capabilities(req.path, false) & kCapSudo);
  RETURN_IF_ERROR(tokens_->Use(*token));
  req.token = token;

  const std::string full_path = req.path;
  absl::StatusOr<Response> result;
  if (system) {
    result = HandleSystem(req);
  } else if (!mount) {
    result = absl::NotFoundError(
        Cat("no handler for route \"", req.path,
            "\": no secrets engine is mounted there (see `coffer secrets list`)"));
  } else {
    req.mount_default_ttl = EffectiveDefaultTtl(mount->entry);
    req.mount_max_ttl = EffectiveMaxTtl(mount->entry);
    req.storage = mount->view.get();
    req.path = rest;
    result = mount->backend->Handle(req);
  }
  req.path = full_path;
  RETURN_IF_ERROR(audit_->LogResponse(req, token, result));
  return result;
}

storage::Storage* Core::MountStorage(std::string_view path) {
  absl::ReaderMutexLock lock(&state_mu_);
  std::string rest;
  auto m = Route(path, &rest);
  return m ? m->view.get() : nullptr;
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
  if (e.policies.empty()) return absl::InvalidArgumentError("the login grants no policy");
  e.path = mount.path + "login";
  e.display_name = mount.path.substr(5, mount.path.size() - 6) +
                   (g.display_name.empty() ? "" : "-" + g.display_name);
  e.meta = g.metadata;
  e.renewable = g.renewable;
  e.num_uses = g.num_uses;
  e.bound_cidrs = g.bound_cidrs;
  e.period = g.period;
  e.explicit_max_ttl = g.max_ttl;
  const int64_t mount_max = EffectiveMaxTtl(mount);
  if (g.period > 0) {
    e.ttl = g.period;
  } else {
    e.ttl = g.ttl > 0 ? g.ttl : EffectiveDefaultTtl(mount);
    e.ttl = std::min(e.ttl, mount_max);
  }
  if (e.explicit_max_ttl > 0 && e.ttl > e.explicit_max_ttl) e.ttl = e.explicit_max_ttl;
  ASSIGN_OR_RETURN(auto created, tokens_->Create(std::move(e)));
  resp.auth = auth::token::AuthBlock(created.entry, created.token);
  resp.login.reset();
  log::Info("login", {{"mount", mount.path}, {"accessor", created.entry.accessor}});
  return absl::OkStatus();
}

absl::StatusOr<Response> Core::HandleSystem(Request& req) {
  std::string_view p = req.path;
  p.remove_prefix(std::min<size_t>(p.size(), 4));
  req.mount_point = "sys/";
  req.mount_type = "system";
  auto unsupported = [] { return UnsupportedOperation(); };
  if (p == "mounts") {
    if (req.op != Operation::kRead) return unsupported();
    return MountsList();
  }
  if (StartsWith(p, "mounts/")) {
    std::string_view mp = p.substr(7);
    if (mp.size() > 5 && mp.substr(mp.size() - 5) == "/tune")
      return MountTune(req, mp.substr(0, mp.size() - 5));
    switch (req.op) {
      case Operation::kRead:
        return MountRead(mp);
      case Operation::kCreate:
      case Operation::kUpdate:
        return MountEnableRequest(req, mp);
      case Operation::kDelete:
        RETURN_IF_ERROR(DisableMount(mp));
        return Response::Empty();
      default:
        return unsupported();
    }
  }
  if (p == "policy" || p.substr(0, 7) == "policy/" || p == "policies/acl" || p == "policies/acl/" ||
      p.substr(0, 13) == "policies/acl/")
    return HandlePolicies(req, p);
  if (p == "capabilities" || p == "capabilities-self" || p == "capabilities-accessor")
    return HandleCapabilities(req, p);
  if (p == "auth" || p == "auth/") {
    if (req.op != Operation::kRead) return unsupported();
    return AuthList();
  }
  if (StartsWith(p, "auth/")) {
    std::string mp = Cat("auth/", p.substr(5));
    if (mp.size() > 5 && mp.substr(mp.size() - 5) == "/tune")
      return MountTune(req, mp.substr(0, mp.size() - 5));
    switch (req.op) {
      case Operation::kRead:
        return MountRead(mp);
      case Operation::kCreate:
      case Operation::kUpdate:
        return MountEnableRequest(req, mp, true);
      case Operation::kDelete:
        RETURN_IF_ERROR(DisableMount(mp));
        return Response::Empty();
      default:
        return unsupported();
    }
  }
  if (p == "audit" || StartsWith(p, "audit/") || StartsWith(p, "audit-hash/"))
    return HandleAudit(req, p);
  if (p == "rotate") {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return unsupported();
    ASSIGN_OR_RETURN(auto ks, barrier_->Rotate());
    log::Info("barrier key rotated", {{"term", std::to_string(ks.term)}});
    return Response::Empty();
  }
  if (p == "key-status") {
    if (req.op != Operation::kRead) return unsupported();
    ASSIGN_OR_RETURN(auto ks, barrier_->Status());
    auto r = Response::Data(
        json::object{{"term", static_cast<int64_t>(ks.term)},
                     {"install_time",
                      absl::FormatTime(absl::RFC3339_full, ks.install_time, absl::UTCTimeZone())},
                     {"encryptions", static_cast<int64_t>(ks.encryptions)}});
    r.duplicate_data_at_top = true;
    return r;
  }
  if (p == "seal") {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return unsupported();
    Response r;
    r.seal_after = true;
    return r;
  }
  if (p == "metrics") {
    if (req.op != Operation::kRead) return unsupported();
    auto fmt = req.QueryParam("format");
    Response r;
    if (fmt && *fmt == "prometheus") {
      r.raw = true;
      r.content_type = "text/plain; version=0.0.4";
      r.raw_body = metrics_.Prometheus();
      return r;
    }
    if (fmt && !fmt->empty())
      return absl::InvalidArgumentError(
          Cat("unknown metrics format \"", *fmt, "\": use prometheus, or none for JSON"));
    r.raw = true;
    r.raw_body = json::serialize(metrics_.Json());
    return r;
  }
  if (StartsWith(p, "internal/ui/mounts/")) {
    if (req.op != Operation::kRead) return unsupported();
    std::string rest;
    auto m = Route(p.substr(19), &rest);
    if (!m) return absl::NotFoundError(Cat("no mount holds \"", p.substr(19), "\""));
    json::object d = m->entry.ToJson();
    d["path"] = m->entry.path;
    return Response::Data(std::move(d));
  }
  return absl::NotFoundError(Cat("no handler for route \"", req.path, "\""));
}

absl::StatusOr<Response> Core::HandleAudit(Request& req, std::string_view p) {
  auto unsupported = [] { return UnsupportedOperation(); };
  if (p == "audit") {
    if (req.op != Operation::kRead) return unsupported();
    auto r = Response::Data(audit_->List());
    r.duplicate_data_at_top = true;
    return r;
  }
  if (StartsWith(p, "audit-hash/")) {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return unsupported();
    ASSIGN_OR_RETURN(auto input, JsonString(req.data, "input"));
    if (!input) return absl::InvalidArgumentError("'input' is required");
    ASSIGN_OR_RETURN(std::string h, audit_->Hash(p.substr(11), *input));
    return Response::Data(json::object{{"hash", h}});
  }
  std::string_view path = p.substr(6);
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
