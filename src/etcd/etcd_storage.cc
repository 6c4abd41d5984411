#include "etcd/etcd_storage.h"

#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "absl/strings/numbers.h"
#include "util/duration.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::etcd {
namespace {

namespace json = boost::json;

std::string B64(std::string_view s) { return Base64Encode(s); }

void SecureWipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// etcd's JSON writes int64 fields as strings.
int64_t Int(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_string()) {
    int64_t n = 0;
    const auto& str = v->as_string();
    if (!absl::SimpleAtoi(absl::string_view(str.data(), str.size()), &n)) return 0;
    return n;
  }
  return 0;
}

// etcd's gateway refuses, with etcd authentication on, a client certificate that has a CommonName
// (etcd would take the CN for the user, which the gateway cannot pass on).
constexpr std::string_view kCommonNameHint =
    " (with etcd authentication on, Coffer's client certificate must have no CommonName: give it "
    "its names as subjectAltNames only, and the user as username/password)";

// The lock every server takes on its path; with HA, the leader election.
constexpr std::string_view kLockKey = "core/lock";
// Changed by every acquisition (not leased): a server that lost the lock takes it again only if
// this is still at the revision of its own acquisition, i.e. nobody held the lock in between.
constexpr std::string_view kEpochKey = "core/lock-epoch";
// Standbys' heartbeats (Heartbeat): one key per server.
constexpr std::string_view kHeartbeatFolder = "core/ha-heartbeat/";

// Before the lease can have lapsed in etcd, the holder already counts it as lost: a fifth of
// the TTL, at least a second.
std::chrono::seconds LeaseMargin(std::chrono::seconds ttl) {
  return std::max<std::chrono::seconds>(std::chrono::seconds(1), ttl / 5);
}

bool Flag(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

absl::StatusOr<std::string> Decoded(const json::object& kv, std::string_view field) {
  const json::value* v = kv.if_contains(field);
  if (!v) return std::string();  // proto3 JSON omits empty bytes
  if (!v->is_string()) return absl::InternalError(Cat("etcd answered a non-string ", field));
  auto d = Base64Decode(v->as_string());
  if (!d) return absl::InternalError(Cat("etcd answered bad base64 in ", field));
  return std::move(*d);
}

}  // namespace

absl::StatusOr<EtcdOptions> ParseEtcdOptions(const std::map<std::string, std::string>& o) {
  EtcdOptions e;
  auto get = [&](const char* k) -> std::string {
    auto it = o.find(k);
    return it == o.end() ? std::string() : it->second;
  };
  const std::string address = get("address").empty() ? "http://127.0.0.1:2379" : get("address");
  for (size_t pos = 0; pos <= address.size();) {
    size_t comma = address.find(',', pos);
    if (comma == std::string::npos) comma = address.size();
    std::string url = address.substr(pos, comma - pos);
    pos = comma + 1;
    url.erase(0, url.find_first_not_of(" \t"));
    url.erase(url.find_last_not_of(" \t") + 1);
    if (url.empty()) continue;
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      return absl::InvalidArgumentError(
          Cat("storage \"etcd\": address \"", url, "\" must start with https:// or http://"));
    e.endpoints.push_back(std::move(url));
  }
  if (e.endpoints.empty())
    return absl::InvalidArgumentError("storage \"etcd\": address lists no endpoint");
  const std::string api = get("etcd_api");
  if (!api.empty() && api != "v3")
    return absl::InvalidArgumentError(
        Cat("storage \"etcd\": etcd_api \"", api,
            "\" is not supported: Coffer speaks etcd's v3 API only (etcd_api = \"v3\")"));
  if (!get("path").empty()) e.prefix = get("path");
  if (e.prefix.back() != '/') e.prefix += '/';
  e.tls_ca_file = get("tls_ca_file");
  e.tls_cert_file = get("tls_cert_file");
  e.tls_key_file = get("tls_key_file");
  e.tls_server_name = get("tls_server_name");
  if (e.tls_cert_file.empty() != e.tls_key_file.empty())
    return absl::InvalidArgumentError(
        "storage \"etcd\": a client certificate needs both tls_cert_file and tls_key_file");
  e.username = get("username");
  e.password = get("password");
  if (e.username.empty() != e.password.empty())
    return absl::InvalidArgumentError(
        "storage \"etcd\": etcd authentication needs both username and password");
  if (!e.password.empty())
    for (const auto& url : e.endpoints)
      if (url.rfind("http://", 0) == 0)
        return absl::InvalidArgumentError(
            Cat("storage \"etcd\": a password would cross the network in clear to ", url,
                ": use https:// endpoints with etcd authentication"));
  if (!get("request_timeout").empty()) {
    auto t = ParseDurationSeconds(get("request_timeout"));
    if (!t.ok() || *t < 1)
      return absl::InvalidArgumentError(Cat("storage \"etcd\": request_timeout \"",
                                            get("request_timeout"),
                                            "\" is not a duration of at least 1s"));
    e.request_timeout = std::chrono::seconds(*t);
  }
  if (!get("lock_timeout").empty()) {
    auto t = ParseDurationSeconds(get("lock_timeout"));
    if (!t.ok() || *t < 2)
      return absl::InvalidArgumentError(Cat("storage \"etcd\": lock_timeout \"",
                                            get("lock_timeout"),
                                            "\" is not a duration of at least 2s"));
    e.lock_ttl = std::chrono::seconds(*t);
  }
  // One keepalive may wait a request_timeout per step: the lease must outlast a couple of them.
  if (e.lock_ttl < e.request_timeout * 2)
    return absl::InvalidArgumentError(Cat("storage \"etcd\": lock_timeout (", e.lock_ttl.count(),
                                          "s) must be at least twice request_timeout (",
                                          e.request_timeout.count(), "s)"));
  e.lock_wait = e.lock_ttl * 2 + std::chrono::seconds(5);
  const std::string ha = get("ha_enabled");
  e.ha = ha == "true" || ha == "1";
  if (!get("max_txn_ops").empty()) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(get("max_txn_ops"), &n) || n < 1)
      return absl::InvalidArgumentError(
          Cat("storage \"etcd\": max_txn_ops \"", get("max_txn_ops"), "\" is not a count"));
    e.max_txn_ops = static_cast<size_t>(n);
  }
  return e;
}

absl::StatusOr<std::unique_ptr<EtcdStorage>> EtcdStorage::Open(EtcdOptions opts) {
  std::unique_ptr<EtcdStorage> s(new EtcdStorage(std::move(opts)));
  for (const auto& url : s->opts_.endpoints) {
    http::ClientOptions c;
    c.address = url;
    c.ca_cert = s->opts_.tls_ca_file;
    c.client_cert_file = s->opts_.tls_cert_file;
    c.client_key_file = s->opts_.tls_key_file;
    c.server_name = s->opts_.tls_server_name;
    c.timeout = s->opts_.request_timeout;
    auto pool = http::ConnectionPool::Create(std::move(c), 8, s->opts_.max_idle_time);
    if (!pool.ok())
      return absl::InvalidArgumentError(Cat("storage \"etcd\" (", url, "): ", Msg(pool.status())));
    s->pools_.push_back(std::move(*pool));
  }
  // One answer from the cluster before the server starts.
  auto probe = s->Call("kv/range", json::object{{"key", B64(s->opts_.prefix)}, {"limit", 1}});
  if (!probe.ok())
    return absl::Status(probe.status().code(),
                        Cat("storage \"etcd\": no endpoint of ", s->opts_.endpoints.size(),
                            " answered: ", Msg(probe.status())));
  if (s->opts_.lock && !s->opts_.ha) {
    if (absl::Status l = s->AcquireLock(); !l.ok())
      return absl::Status(l.code(), Cat("storage \"etcd\": ", Msg(l)));
    s->keeper_ = std::thread([p = s.get()] { p->KeepLease(); });
  }
  return s;
}

EtcdStorage::~EtcdStorage() {
  stopping_.store(true);
  if (keeper_.joinable()) keeper_.join();
  // The lock is given back at once, so a restarted server need not wait for the lease to lapse.
  if (lease_.load() != 0)
    (void)Call("lease/revoke", json::object{{"ID", Cat(lease_.load())}}, true);
  MutexLock l(&auth_mu_);
  SecureWipe(auth_token_);
  SecureWipe(opts_.password);
}

absl::Status EtcdStorage::Authenticate(size_t endpoint) {
  json::object req{{"name", opts_.username}, {"password", opts_.password}};
  std::string body = json::serialize(req);
  auto r = pools_[endpoint]->Call("POST", "/v3/auth/authenticate", body);
  SecureWipe(body);
  if (!r.ok()) return r.status();
  std::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object())
    return absl::FailedPreconditionError(
        Cat("etcd's authentication answered HTTP ", r->status, ": ", r->body.substr(0, 200),
            r->body.find("CommonName") != std::string::npos ? kCommonNameHint : ""));
  const json::value* t = v.as_object().if_contains("token");
  if (r->status != 200 || !t || !t->is_string()) {
    const json::value* m = v.as_object().if_contains("message");
    const int64_t code = Int(v.as_object(), "code");
    // A leader election or an overloaded member is not a refusal: another endpoint may answer.
    if (code == 14 || code == 4 || code == 10 || r->status >= 500)
      return absl::UnavailableError(
          Cat(pools_[endpoint]->address(), ": authentication: ",
              m && m->is_string() ? std::string(m->as_string()) : Cat("HTTP ", r->status)));
    return absl::PermissionDeniedError(
        Cat("etcd refused user \"", opts_.username,
            "\": ", m && m->is_string() ? std::string(m->as_string()) : Cat("HTTP ", r->status)));
  }
  MutexLock l(&auth_mu_);
  auth_token_ = std::string(t->as_string());
  return absl::OkStatus();
}

absl::StatusOr<json::object> EtcdStorage::Call(std::string_view method, const json::object& req,
                                               bool write) {
  const std::string body = json::serialize(req);
  const std::string path = Cat("/v3/", method);
  // Why each endpoint failed, all of them said when none answers.
  std::string failures;
  auto failed = [&failures](std::string_view why) {
    failures += failures.empty() ? "" : "; ";
    failures += why;
  };
  const size_t n = pools_.size();
  // A bound on the whole call, not only on each step: past it, no further endpoint is tried.
  const auto deadline = std::chrono::steady_clock::now() + opts_.request_timeout * 3;
  // When every endpoint failed without the request reaching etcd's log (no connection, no
  // leader: the failures that do not return at once below), the round is tried again after a
  // pause, for up to request_timeout: an election after a member stops leaves etcd without a
  // leader for about a second, and the caller should not see it.
  const auto retry_until = std::chrono::steady_clock::now() + opts_.request_timeout;
  for (std::chrono::milliseconds pause(100);; pause = std::min(pause * 2, decltype(pause)(500))) {
    failures.clear();
    const size_t first = current_.load();
    for (size_t i = 0; i < n; ++i) {
      if (i > 0 && std::chrono::steady_clock::now() >= deadline) {
        failed(Cat("gave up after ", (opts_.request_timeout * 3).count(), "s"));
        break;
      }
      const size_t e = (first + i) % n;
      bool reauthenticated = false;
      for (;;) {
        std::vector<http::ConnectionPool::Header> headers;
        if (!opts_.username.empty()) {
          std::string token;
          {
            MutexLock l(&auth_mu_);
            token = auth_token_;
          }
          if (token.empty()) {
            // One authentication at a time (etcd checks each password with bcrypt): the others
            // wait for it and use its token.
            MutexLock flight(&auth_flight_mu_);
            {
              MutexLock l(&auth_mu_);
              token = auth_token_;
            }
            if (token.empty()) {
              if (absl::Status a = Authenticate(e); !a.ok()) {
                if (!absl::IsUnavailable(a)) return a;
                failed(Msg(a));
                break;
              }
              MutexLock l(&auth_mu_);
              token = auth_token_;
            }
          }
          headers.emplace_back("Authorization", token);
        }
        // A write is never sent twice on its own: repeated late (after a later write to the same
        // key), a put or delete would undo that later write. So a write moves to another endpoint
        // only when it cannot have reached this one.
        bool sent = false;
        auto r = pools_[e]->Call("POST", path, body, headers, !write, &sent);
        if (!r.ok() && write && sent)
          return absl::UnavailableError(Cat("etcd: ", pools_[e]->address(), ": ", Msg(r.status()),
                                            " (the write may or may not have been applied)"));
        if (!r.ok()) {
          std::string why = Msg(r.status());
          if (why.find(pools_[e]->address()) == std::string::npos)
            why = Cat(pools_[e]->address(), ": ", why);
          // TLS 1.3 reports a refused client certificate at the first read, as an alert.
          if (why.find("bad certificate") != std::string::npos ||
              why.find("certificate required") != std::string::npos)
            why += opts_.tls_cert_file.empty()
                       ? " (etcd wants a client certificate: set tls_cert_file and tls_key_file)"
                       : " (etcd refused the client certificate in tls_cert_file: is it signed by "
                         "a CA etcd trusts (--trusted-ca-file), with clientAuth?)";
          failed(why);
          break;
        }
        std::error_code ec;
        json::value v = json::parse(r->body, ec);
        if (!ec && r->status == 200 && v.is_object()) {
          if (e != first) current_.store(e);
          return std::move(v.as_object());
        }
        std::string msg = Cat("HTTP ", r->status, ": ", r->body.substr(0, 200));
        int64_t code = 0;
        if (!ec && v.is_object()) {
          const json::value* m = v.as_object().if_contains("message");
          if (m && m->is_string()) msg = std::string(m->as_string());
          code = Int(v.as_object(), "code");
        } else if (r->body.find("CommonName") != std::string::npos) {
          msg += kCommonNameHint;
        }
        // An expired or revoked auth token (gRPC UNAUTHENTICATED): once more with a new one.
        if (code == 16 && !opts_.username.empty() && !reauthenticated) {
          reauthenticated = true;
          MutexLock l(&auth_mu_);
          if (auth_token_ == headers.back().second) SecureWipe(auth_token_);  // not a newer one
          continue;
        }
        // Unavailable, deadline exceeded, aborted (a leader change), or the gateway's 5xx: another
        // member may answer.
        if (code == 14 || code == 4 || code == 10 || (code == 0 && r->status >= 500)) {
          // A write that etcd may still commit ("request timed out", "leader changed") is not
          // sent elsewhere; "no leader" means it was never proposed, and a gateway that could
          // not dial its own member (stopping: "Error while dialing ... connection refused")
          // never handed it on.
          if (write && msg.find("no leader") == std::string::npos &&
              msg.find("Error while dialing") == std::string::npos)
            return absl::UnavailableError(Cat("etcd: ", pools_[e]->address(), ": ", msg,
                                              " (the write may or may not have been applied)"));
          failed(Cat(pools_[e]->address(), ": ", msg));
          break;
        }
        if (code == 7 || code == 16)
          return absl::PermissionDeniedError(Cat("etcd refused the request: ", msg));
        return absl::FailedPreconditionError(Cat("etcd refused the request: ", msg));
      }
    }
    if (std::chrono::steady_clock::now() + pause >= std::min(retry_until, deadline)) break;
    std::this_thread::sleep_for(pause);
  }
  return absl::UnavailableError(Cat("etcd: ", failures));
}

absl::StatusOr<std::optional<std::string>> EtcdStorage::Get(std::string_view key) {
  ASSIGN_OR_RETURN(json::object r,
                   Call("kv/range", json::object{{"key", B64(Cat(opts_.prefix, key))}}));
  const json::value* kvs = r.if_contains("kvs");
  if (!kvs || !kvs->is_array() || kvs->as_array().empty()) return std::nullopt;
  const json::value& kv = kvs->as_array().front();
  if (!kv.is_object()) return absl::InternalError("etcd answered a malformed range");
  ASSIGN_OR_RETURN(std::string value, Decoded(kv.as_object(), "value"));
  return std::optional<std::string>(std::move(value));
}

absl::Status EtcdStorage::RefuseOwn(std::string_view key) const {
  if (lock_rev_.load() != 0 && IsOwnKey(Cat(opts_.prefix, key)))
    return absl::InvalidArgumentError(
        Cat(opts_.prefix, key, " is the storage backend's lock, not Coffer data"));
  return absl::OkStatus();
}

absl::Status EtcdStorage::Put(std::string_view key, std::string_view value) {
  RETURN_IF_ERROR(RefuseOwn(key));
  json::array ops;
  ops.push_back(json::object{
      {"request_put", json::object{{"key", B64(Cat(opts_.prefix, key))}, {"value", B64(value)}}}});
  return Txn(std::move(ops));
}

absl::Status EtcdStorage::Delete(std::string_view key) {
  RETURN_IF_ERROR(RefuseOwn(key));
  json::array ops;
  ops.push_back(
      json::object{{"request_delete_range", json::object{{"key", B64(Cat(opts_.prefix, key))}}}});
  return Txn(std::move(ops));
}

absl::Status EtcdStorage::Txn(json::array ops) {
  // Read once: the refusal and the compare must agree (a Resign in between must not send an
  // unfenced write).
  const int64_t lock_rev = lock_rev_.load();
  if (opts_.ha && lock_rev == 0)
    return absl::FailedPreconditionError(
        "this server is an HA standby: only the active server writes (it holds the lock)");
  if (lost_.load())
    return absl::FailedPreconditionError(
        Cat("this server no longer holds the lock ", opts_.prefix, kLockKey,
            " (its lease expired, or another server took it): it writes nothing more; restart it"));
  json::object txn{{"success", std::move(ops)}};
  if (lock_rev != 0) {
    // Fencing: applied only while our lock key is the one we created.
    txn["compare"] = json::array{json::object{{"key", B64(Cat(opts_.prefix, kLockKey))},
                                              {"target", "CREATE"},
                                              {"result", "EQUAL"},
                                              {"create_revision", Cat(lock_rev)}}};
  }
  ASSIGN_OR_RETURN(json::object r, Call("kv/txn", txn, true));
  if (!Flag(r, "succeeded")) {
    if (lock_rev != 0) {
      // Lost, unless the keeper re-took the lock meanwhile (then this write may be retried).
      if (lock_rev_.load() == lock_rev) lost_.store(true);
      return absl::FailedPreconditionError(
          Cat("this server lost the lock ", opts_.prefix, kLockKey,
              " (another server holds it now): the write was not applied; ",
              opts_.ha ? "it steps down to standby" : "restart this server"));
    }
    return absl::InternalError("etcd did not apply the transaction");
  }
  return absl::OkStatus();
}

absl::Status EtcdStorage::Write(std::vector<storage::WriteOp> ops) {
  // The last operation on each key decides (etcd refuses a key named twice in one transaction).
  std::map<std::string_view, const storage::WriteOp*> last;
  for (const auto& op : ops) {
    RETURN_IF_ERROR(RefuseOwn(op.key));
    last[op.key] = &op;
  }
  if (last.empty()) return absl::OkStatus();
  if (last.size() > opts_.max_txn_ops)
    return absl::FailedPreconditionError(
        Cat("a batch of ", last.size(), " writes exceeds etcd's limit of ", opts_.max_txn_ops,
            " per transaction (etcd's --max-txn-ops; raise it there and set max_txn_ops in the "
            "storage block)"));
  json::array success;
  success.reserve(last.size());
  for (const auto& [key, op] : last) {
    const std::string k = B64(Cat(opts_.prefix, key));
    if (op->kind == storage::WriteOp::Kind::kPut)
      success.push_back(
          json::object{{"request_put", json::object{{"key", k}, {"value", B64(op->value)}}}});
    else
      success.push_back(json::object{{"request_delete_range", json::object{{"key", k}}}});
  }
  return Txn(std::move(success));
}

absl::StatusOr<std::vector<std::string>> EtcdStorage::List(std::string_view prefix,
                                                           std::string_view after, size_t limit) {
  const std::string base = Cat(opts_.prefix, prefix);
  const std::string end = storage::PrefixEnd(base);
  std::vector<std::string> out;
  // Strictly after `after`: past the folder when it names one, else just past the key.
  std::string start = base;
  if (const size_t slash = after.find('/'); slash != std::string_view::npos)
    start = storage::PrefixEnd(Cat(base, after.substr(0, slash + 1)));  // past that folder
  else if (!after.empty())
    start = Cat(base, after, std::string_view("\0", 1));
  const int64_t page = limit == 0 ? 1000 : static_cast<int64_t>(std::min<size_t>(limit, 1000));
  while (limit == 0 || out.size() < limit) {
    ASSIGN_OR_RETURN(json::object r, Call("kv/range", json::object{{"key", B64(start)},
                                                                   {"range_end", B64(end)},
                                                                   {"keys_only", true},
                                                                   {"limit", page}}));
    const json::value* kvs = r.if_contains("kvs");
    if (!kvs || !kvs->is_array() || kvs->as_array().empty()) break;
    bool jumped = false;
    std::string key;
    for (const json::value& kv : kvs->as_array()) {
      if (!kv.is_object()) return absl::InternalError("etcd answered a malformed range");
      ASSIGN_OR_RETURN(key, Decoded(kv.as_object(), "key"));
      if (key.size() < base.size() || key.compare(0, base.size(), base) != 0)
        return absl::InternalError("etcd answered a key outside the range");
      std::string_view rest = std::string_view(key).substr(base.size());
      const size_t slash = rest.find('/');
      if (lock_rev_.load() != 0 && IsOwnKey(key)) {
        // The lock and its epoch are the backend's own, not Coffer data: never listed (and not
        // jumped over: the folder is listed when anything else is in it).
      } else if (slash == std::string_view::npos) {
        out.emplace_back(rest);
      } else {
        // A folder: named once, and the next range starts past everything in it.
        out.emplace_back(rest.substr(0, slash + 1));
        start = storage::PrefixEnd(Cat(base, out.back()));
        jumped = true;
      }
      if ((limit != 0 && out.size() >= limit) || jumped) break;
    }
    if (limit != 0 && out.size() >= limit) break;
    if (jumped) {
      if (start.empty() || start >= end) break;
      continue;
    }
    if (!Flag(r, "more")) break;
    start = Cat(key, std::string_view("\0", 1));
  }
  return out;
}

absl::Status EtcdStorage::DeletePrefix(std::string_view prefix) {
  const std::string base = Cat(opts_.prefix, prefix);
  const std::string end = storage::PrefixEnd(base);
  auto range = [](const std::string& from, const std::string& to) {
    return json::object{
        {"request_delete_range", json::object{{"key", B64(from)}, {"range_end", B64(to)}}}};
  };
  json::array ops;
  // The lock and its epoch stay (init clears core/): the ranges around them go.
  std::string from = base;
  for (std::string_view own : {kLockKey, kEpochKey}) {  // in key order
    const std::string k = Cat(opts_.prefix, own);
    if (lock_rev_.load() == 0 || k.compare(0, base.size(), base) != 0) continue;
    if (from < k) ops.push_back(range(from, k));
    from = k + '\0';
  }
  if (end.empty() || from < end) ops.push_back(range(from, end));
  return Txn(std::move(ops));
}

absl::StatusOr<int64_t> EtcdStorage::Revision() {
  const std::string key = B64(Cat(opts_.prefix, kEpochKey));
  ASSIGN_OR_RETURN(auto r, Call("kv/range", json::object{{"key", key}, {"count_only", true}}));
  const json::value* h = r.if_contains("header");
  if (!h || !h->is_object()) return absl::InternalError("etcd answered a range without a header");
  return Int(h->as_object(), "revision");
}

absl::Status EtcdStorage::WatchOnce(int64_t* next, std::chrono::milliseconds idle,
                                    const std::function<void(const WatchBatch&)>& on_batch,
                                    const std::atomic<bool>* stop) {
  const std::string base = opts_.prefix;
  json::object create{{"key", B64(base)},
                      {"range_end", B64(storage::PrefixEnd(base))},
                      {"start_revision", std::to_string(*next)}};
  const std::string body = json::serialize(json::object{{"create_request", std::move(create)}});
  std::vector<http::ConnectionPool::Header> headers;
  if (!opts_.username.empty()) {
    // A token from the last call (Revision, made by the caller first, fetches one).
    MutexLock l(&auth_mu_);
    if (!auth_token_.empty()) headers.emplace_back("Authorization", auth_token_);
  }
  const size_t e = current_.load() % pools_.size();
  std::string pending;  // a message not yet complete
  absl::Status outcome;
  auto on_data = [&](std::string_view data) -> bool {
    pending.append(data);
    if (pending.size() > (size_t{64} << 20)) {
      outcome = absl::UnavailableError("etcd: a watch message over 64 MiB");
      return false;
    }
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      std::error_code ec;
      json::value v = json::parse(line, ec);
      const json::value* res = !ec && v.is_object() ? v.as_object().if_contains("result") : nullptr;
      if (!res || !res->is_object()) {
        outcome = absl::UnavailableError(
            Cat("etcd: the watch answered something unexpected: ", line.substr(0, 200)));
        return false;
      }
      const json::object& r = res->as_object();
      if (Int(r, "compact_revision") > 0) {
        outcome =
            absl::OutOfRangeError(Cat("etcd: the watch's revision ", *next,
                                      " was compacted (now at ", Int(r, "compact_revision"), ")"));
        return false;
      }
      if (Flag(r, "canceled")) {
        const json::value* why = r.if_contains("cancel_reason");
        outcome = absl::UnavailableError(
            Cat("etcd cancelled the watch",
                why && why->is_string() ? Cat(": ", std::string(why->as_string())) : ""));
        return false;
      }
      WatchBatch batch;
      int64_t msg_next = *next;  // committed once the message's changes are passed on
      if (const json::value* evs = r.if_contains("events"); evs && evs->is_array()) {
        for (const auto& ev : evs->as_array()) {
          // An event that cannot be read fails the stream before anything past it counts as
          // delivered (the caller takes its caches as stale).
          const json::value* kv = ev.is_object() ? ev.as_object().if_contains("kv") : nullptr;
          auto key = kv && kv->is_object() ? Decoded(kv->as_object(), "key")
                                           : absl::StatusOr<std::string>(std::string());
          const int64_t rev = kv && kv->is_object() ? Int(kv->as_object(), "mod_revision") : 0;
          if (!key.ok() || key->empty() || rev <= 0) {
            outcome =
                absl::UnavailableError(Cat("etcd: the watch sent an event that cannot be read: ",
                                           json::serialize(ev).substr(0, 200)));
            return false;
          }
          msg_next = std::max(msg_next, rev + 1);
          if (key->substr(0, base.size()) != base || IsOwnKey(*key)) continue;
          batch.keys.push_back(key->substr(base.size()));
        }
      }
      *next = msg_next;
      batch.through = *next - 1;
      on_batch(batch);
      if (stop && stop->load()) return false;
    }
    pending.erase(0, start);
    return true;
  };
  absl::Status st = pools_[e]->Stream("POST", "/v3/watch", body, headers, idle, on_data);
  if (!outcome.ok()) {
    if (absl::IsOutOfRange(outcome)) {
      auto now = Revision();
      if (now.ok()) *next = *now + 1;
    }
    return outcome;
  }
  if (stop && stop->load()) return absl::OkStatus();
  // A failure, the stream's end, or nothing for `idle` (heartbeats arrive several times a
  // second): the next stream tries another member.
  current_.store((e + 1) % pools_.size());
  return absl::UnavailableError(
      Cat("etcd: watching ", pools_[e]->address(), ": ",
          st.ok() ? Cat("nothing arrived for ", idle.count(), " ms") : Msg(st)));
}

bool EtcdStorage::IsOwnKey(std::string_view full_key) const {
  return full_key == Cat(opts_.prefix, kLockKey) || full_key == Cat(opts_.prefix, kEpochKey) ||
         full_key.starts_with(Cat(opts_.prefix, kHeartbeatFolder));
}

absl::StatusOr<int64_t> EtcdStorage::Heartbeat(std::string_view id) {
  ASSIGN_OR_RETURN(auto r, Call("kv/put",
                                json::object{{"key", B64(Cat(opts_.prefix, kHeartbeatFolder, id))},
                                             {"value", B64(std::to_string(std::time(nullptr)))}},
                                /*write=*/true));
  const json::value* h = r.if_contains("header");
  if (!h || !h->is_object()) return absl::InternalError("etcd answered a put without a header");
  return Int(h->as_object(), "revision");
}

// The acquisition transaction: the lock is free (and, when `epoch_rev` is given, the epoch is
// still at that revision, so nobody held the lock since); put the lock under `lease` and move
// the epoch. On success returns the transaction's revision (the lock's create_revision and the
// epoch's mod_revision); 0 when the lock is taken, with its holder in *holder.
absl::StatusOr<int64_t> EtcdStorage::TryLock(int64_t lease, int64_t epoch_rev,
                                             std::string* holder) {
  const std::string key = B64(Cat(opts_.prefix, kLockKey));
  const std::string epoch = B64(Cat(opts_.prefix, kEpochKey));
  json::array compare{json::object{
      {"key", key}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}};
  if (epoch_rev != 0)
    compare.push_back(json::object{
        {"key", epoch}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", Cat(epoch_rev)}});
  json::object txn{
      {"compare", std::move(compare)},
      {"success",
       json::array{
           json::object{
               {"request_put",
                json::object{{"key", key}, {"value", B64(holder_)}, {"lease", Cat(lease)}}}},
           json::object{{"request_put", json::object{{"key", epoch}, {"value", B64(holder_)}}}}}},
      {"failure", json::array{json::object{{"request_range", json::object{{"key", key}}}}}}};
  ASSIGN_OR_RETURN(json::object r, Call("kv/txn", txn, true));
  const json::value* header = r.if_contains("header");
  if (Flag(r, "succeeded")) {
    const int64_t rev = header && header->is_object() ? Int(header->as_object(), "revision") : 0;
    if (rev == 0) return absl::InternalError("etcd answered the lock transaction without revision");
    return rev;
  }
  if (holder) {
    if (const json::value* rs = r.if_contains("responses"); rs && rs->is_array()) {
      for (const auto& resp : rs->as_array()) {
        const json::value* rr =
            resp.is_object() ? resp.as_object().if_contains("response_range") : nullptr;
        const json::value* kvs =
            rr && rr->is_object() ? rr->as_object().if_contains("kvs") : nullptr;
        if (kvs && kvs->is_array() && !kvs->as_array().empty() &&
            kvs->as_array().front().is_object()) {
          auto v = Decoded(kvs->as_array().front().as_object(), "value");
          if (v.ok()) *holder = *v;
        }
      }
    }
  }
  return 0;
}

absl::Status EtcdStorage::AcquireLock() {
  ASSIGN_OR_RETURN(json::object g,
                   Call("lease/grant", json::object{{"TTL", opts_.lock_ttl.count()}}, true));
  lease_.store(Int(g, "ID"));
  if (lease_.load() == 0) return absl::InternalError("etcd granted no lease");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  holder_ = Cat("host=", host, " pid=", getpid(), " since=", std::time(nullptr));
  const auto deadline = std::chrono::steady_clock::now() + opts_.lock_wait;
  std::string last_holder;
  for (;;) {
    ASSIGN_OR_RETURN(int64_t rev, TryLock(lease_.load(), 0, &last_holder));
    if (rev != 0) {
      lock_rev_.store(rev);
      epoch_rev_ = rev;
      return absl::OkStatus();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    // Our own lease stays alive while we wait for the other one to lapse.
    (void)Call("lease/keepalive", json::object{{"ID", Cat(lease_.load())}});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  (void)Call("lease/revoke", json::object{{"ID", Cat(lease_.load())}}, true);
  lease_.store(0);
  return absl::FailedPreconditionError(
      Cat("another Coffer server holds ", opts_.prefix, kLockKey, " (", last_holder,
          ") and kept it for ", opts_.lock_wait.count(),
          "s: run one server per path, give this one its own path, or set ha_enabled = \"true\" "
          "on every server of the path"));
}

void EtcdStorage::KeepLease() {
  auto last_ok = std::chrono::steady_clock::now();
  const auto every = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(200),
      std::chrono::duration_cast<std::chrono::milliseconds>(opts_.lock_ttl) / 3);
  while (!stopping_.load()) {
    if (lease_.load() == 0) {  // HA: not campaigned yet, or resigned
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      last_ok = std::chrono::steady_clock::now();
      continue;
    }
    // Measured from when the keepalive was sent (the lease was renewed at most then), and
    // ignored if the lease changed meanwhile (a Resign and a new Campaign).
    const int64_t lease = lease_.load();
    const auto sent_at = std::chrono::steady_clock::now();
    auto r = Call("lease/keepalive", json::object{{"ID", Cat(lease)}});
    if (lease_.load() != lease) continue;
    const auto now = sent_at;
    // A keepalive answer: TTL > 0 while the lease lives; none (or 0) once it expired.
    int64_t ttl = -1;  // unknown (no answer)
    if (r.ok()) {
      const json::value* res = r->if_contains("result");
      ttl = res && res->is_object() ? Int(res->as_object(), "TTL") : -1;
    }
    if ((ttl > 0 && !lost_.load()) || (opts_.ha && lock_rev_.load() == 0)) {
      last_ok = now;  // renewed; or resigned (HA), nothing to keep until the next Campaign
    } else if (ttl > 0) {
      // Renewed after all (etcd was only slow): still ours if the key is the one we created.
      auto k = Call("kv/range", json::object{{"key", B64(Cat(opts_.prefix, kLockKey))}});
      const json::value* kvs = k.ok() ? k->if_contains("kvs") : nullptr;
      if (kvs && kvs->is_array() && !kvs->as_array().empty() &&
          kvs->as_array().front().is_object() &&
          Int(kvs->as_array().front().as_object(), "create_revision") == lock_rev_.load()) {
        lost_.store(false);
        last_ok = now;
      }
    } else if (opts_.ha && (ttl == 0 || std::chrono::steady_clock::now() - last_ok >
                                            opts_.lock_ttl - LeaseMargin(opts_.lock_ttl))) {
      lost_.store(true);  // the server sees !IsLeader(), steps down and campaigns again
    } else if (ttl == 0 || std::chrono::steady_clock::now() - last_ok >
                               opts_.lock_ttl - LeaseMargin(opts_.lock_ttl)) {
      // Expired (etcd deleted our key), or unrenewed for a whole TTL: no write of ours goes
      // through from now on. The lock is taken again only if nobody held it in between (the
      // epoch is still ours): then nobody else can have written.
      lost_.store(true);
      auto g = Call("lease/grant", json::object{{"TTL", opts_.lock_ttl.count()}}, true);
      const int64_t lease = g.ok() ? Int(*g, "ID") : 0;
      if (lease != 0) {
        auto rev = TryLock(lease, epoch_rev_, nullptr);
        if (rev.ok() && *rev != 0) {
          lease_.store(lease);
          epoch_rev_ = *rev;
          lock_rev_.store(*rev);
          lost_.store(false);
          last_ok = now;
        } else {
          (void)Call("lease/revoke", json::object{{"ID", Cat(lease)}}, true);
        }
      }
    }
    for (auto slept = std::chrono::milliseconds(0); slept < every && !stopping_.load();
         slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::Status EtcdStorage::Campaign(const std::string& value, const std::atomic<bool>* stop) {
  holder_ = value;
  for (;;) {
    if (stop->load()) return absl::CancelledError("stopped");
    auto g = Call("lease/grant", json::object{{"TTL", opts_.lock_ttl.count()}}, true);
    const int64_t lease = g.ok() ? Int(*g, "ID") : 0;
    if (lease != 0) {
      // Held by another: waits with our lease kept alive, and tries again.
      for (;;) {
        if (stop->load()) break;
        auto rev = TryLock(lease, 0, nullptr);
        if (rev.ok() && *rev != 0) {
          lease_.store(lease);
          epoch_rev_ = *rev;
          lost_.store(false);
          lock_rev_.store(*rev);
          if (!keeper_.joinable()) keeper_ = std::thread([this] { KeepLease(); });
          return absl::OkStatus();
        }
        if (!rev.ok()) break;  // etcd unreachable: a new lease when it is back
        auto k = Call("lease/keepalive", json::object{{"ID", Cat(lease)}});
        const json::value* res = k.ok() ? k->if_contains("result") : nullptr;
        if (!res || !res->is_object() || Int(res->as_object(), "TTL") <= 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      (void)Call("lease/revoke", json::object{{"ID", Cat(lease)}}, true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

absl::StatusOr<std::string> EtcdStorage::Leader() {
  ASSIGN_OR_RETURN(json::object r,
                   Call("kv/range", json::object{{"key", B64(Cat(opts_.prefix, kLockKey))}}));
  const json::value* kvs = r.if_contains("kvs");
  if (!kvs || !kvs->is_array() || kvs->as_array().empty() || !kvs->as_array().front().is_object())
    return std::string();
  ASSIGN_OR_RETURN(std::string v, Decoded(kvs->as_array().front().as_object(), "value"));
  // Only an http(s) URL with printable characters and no space is an address to send clients
  // to (a non-HA server's "host= pid=" value, or anything odd, is not; nor is a header break).
  const bool url = v.rfind("https://", 0) == 0 || v.rfind("http://", 0) == 0;
  for (char c : v)
    if (c <= 0x20 || c >= 0x7f) return std::string();
  return url && v.size() < 512 ? v : std::string();
}

void EtcdStorage::Resign() {
  const int64_t lease = lease_.exchange(0);
  lock_rev_.store(0);
  lost_.store(false);
  if (lease != 0) (void)Call("lease/revoke", json::object{{"ID", Cat(lease)}}, true);
}

}  // namespace coffer::etcd
