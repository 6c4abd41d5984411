#include "http/server.h"

#include <malloc.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "crypto/crypto.h"
#include "http/beast_request.h"
#include "http/client.h"
#include "http/convert.h"
#include "http/forward.h"
#include "storage/pending_write.h"
#include "util/encoding.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/shell.h"
#include "util/status.h"

namespace coffer::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kHeaderLimit = size_t{64} * 1024;
// A body above this is read only once the caller was admitted from the headers alone, and its
// request runs on the expensive pool (parsing it may take milliseconds).
constexpr size_t kLargeBodyBytes = size_t{64} * 1024;
// An error answered before the body was read: the body is then read and discarded (so the
// client, still sending, gets to read the answer instead of a reset) for at most this long.
constexpr auto kDrainTime = std::chrono::seconds(3);

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Logs at most one line per `every` for a recurring condition (refused connections, EMFILE).
class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::chrono::seconds every) : every_ns_(every.count() * 1'000'000'000) {}
  bool Due() {
    int64_t now = NowNanos(), last = last_.load();
    return now - last >= every_ns_ && last_.compare_exchange_strong(last, now);
  }

 private:
  int64_t every_ns_;
  std::atomic<int64_t> last_{-(int64_t{1} << 62)};
};

absl::StatusOr<tcp::endpoint> ParseAddress(const std::string& address) {
  std::string host, port;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return absl::InvalidArgumentError(
          Cat("listener address \"", address, "\" is not [host]:port"));
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError(Cat("listener address \"", address, "\" is not host:port"));
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec)
    return absl::InvalidArgumentError(
        Cat("listener address \"", address, "\": \"", host, "\" is not an IP address"));
  int p = 0;
  try {
    p = std::stoi(port);
  } catch (...) {
    p = -1;
  }
  if (p < 0 || p > 65535)
    return absl::InvalidArgumentError(
        Cat("listener address \"", address, "\" has an invalid port"));
  return tcp::endpoint(ip, static_cast<unsigned short>(p));
}

absl::StatusOr<std::shared_ptr<ssl::context>> MakeTlsContext(const ListenerOptions& l) {
  if (l.tls_cert_file.empty() || l.tls_key_file.empty())
    return absl::InvalidArgumentError(
        "listener needs tls_cert_file and tls_key_file, or tls_disable = true for plain HTTP");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use | SSL_OP_NO_RENEGOTIATION |
                   SSL_OP_CIPHER_SERVER_PREFERENCE);
  // An idle connection keeps no read/write buffers (about 34 KiB each).
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  // OpenSSL's default server session cache holds 20,480 sessions (about 20 MB after a storm of
  // new clients, kept until they expire). Resumption mostly uses tickets, which need no server
  // state; the cache keeps the most recent 1,024.
  SSL_CTX_sess_set_cache_size(ctx->native_handle(), 1024);
  int min = TLS1_2_VERSION;
  if (l.tls_min_version == "tls13")
    min = TLS1_3_VERSION;
  else if (l.tls_min_version != "tls12" && !l.tls_min_version.empty())
    return absl::InvalidArgumentError(
        Cat("tls_min_version \"", l.tls_min_version, "\" must be tls12 or tls13"));
  SSL_CTX_set_min_proto_version(ctx->native_handle(), min);
  SSL_CTX_set_cipher_list(ctx->native_handle(),
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(l.tls_cert_file, ec);
  if (ec)
    return absl::InvalidArgumentError(
        Cat("cannot load tls_cert_file ", l.tls_cert_file, ": ", ec.message()));
  // An encrypted key must not make OpenSSL prompt on the terminal (start-up, or the SIGHUP
  // reload's thread, would hang): no passphrase is given, so loading it fails with a message.
  ctx->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); });
  ctx->use_private_key_file(l.tls_key_file, ssl::context::pem, ec);
  if (ec)
    return absl::InvalidArgumentError(
        Cat("cannot load tls_key_file ", l.tls_key_file, ": ", ec.message()));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return absl::InvalidArgumentError(
        "tls_key_file does not match the certificate in tls_cert_file");
  if (l.require_client_cert && l.tls_client_ca_file.empty())
    return absl::InvalidArgumentError(
        "tls_require_and_verify_client_cert needs tls_client_ca_file");
  if (!l.tls_client_ca_file.empty() && !l.disable_client_certs) {
    ctx->load_verify_file(l.tls_client_ca_file, ec);
    if (ec)
      return absl::InvalidArgumentError(
          Cat("cannot load tls_client_ca_file ", l.tls_client_ca_file, ": ", ec.message()));
    // The CA names sent in the CertificateRequest, so a client with several certificates
    // picks the right one.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(l.tls_client_ca_file.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(l.require_client_cert ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                               : ssl::verify_peer);
    // Resumed sessions skip the certificate check: a session id context is required for them
    // with verify_peer.
    static const unsigned char kSid[] = "coffer";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kSid, sizeof(kSid) - 1);
  }
  return ctx;
}

// The headers every response of a listener carries, per status: Vault's defaults, then the
// listener's custom_response_headers ("default", then "4xx", then "404": the most specific
// key wins for each header).
class ResponseHeaders {
 public:
  explicit ResponseHeaders(const std::map<std::string, std::map<std::string, std::string>>& c) {
    // Names come canonical (Title-Case) from the configuration, so a configured Server
    // replaces Coffer's.
    std::map<std::string, std::string> base = {
        {"Server", "coffer"},
        {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
        {"X-Content-Type-Options", "nosniff"},
        {"Cache-Control", "no-store"}};
    if (auto it = c.find("default"); it != c.end())
      for (const auto& [k, v] : it->second) base[k] = v;
    for (int cls = 1; cls <= 5; ++cls) {
      auto merged = base;
      if (auto it = c.find(Cat(cls, "xx")); it != c.end())
        for (const auto& [k, v] : it->second) merged[k] = v;
      by_class_[cls] = Render(merged);
      for (const auto& [key, headers] : c) {
        if (key.size() != 3 || key[0] != static_cast<char>('0' + cls) || key[1] == 'x') continue;
        auto exact = merged;
        for (const auto& [k, v] : headers) exact[k] = v;
        by_code_[std::atoi(key.c_str())] = Render(exact);
      }
    }
  }
  // The headers for a status as "Name: value\r\n" lines.
  const std::string& Block(int status) const {
    if (auto it = by_code_.find(status); it != by_code_.end()) return it->second;
    int cls = status / 100;
    return by_class_[cls >= 1 && cls <= 5 ? cls : 5];
  }

 private:
  static std::string Render(const std::map<std::string, std::string>& headers) {
    std::string out;
    for (const auto& [k, v] : headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
    return out;
  }
  std::array<std::string, 6> by_class_;
  std::map<int, std::string> by_code_;
};

// A connection as the connection table sees it.
class Conn {
 public:
  virtual ~Conn() = default;
  // Thread-safe: closes the connection if it is still idle when its own thread gets to it.
  virtual void Evict() = 0;
  // steady-clock nanoseconds since which the connection may be closed for a newcomer: from
  // accept (TLS handshake, slow headers) or the last answer until a request's header is
  // complete; 0 while a request is handled; -1 once chosen for eviction.
  std::atomic<int64_t> idle_since{0};
};

// The open connections of a listener: the limits, and which to close first when full.
class ConnTable {
 public:
  ConnTable(size_t max_total, size_t max_per_client)
      : max_total_(max_total), max_per_client_(max_per_client) {}

  // Admits a new connection, closing the one idle the longest if the listener is full; false
  // (refused) over the per-address limit or when full of busy connections.
  bool Add(Conn* c, const std::shared_ptr<Conn>& ref, const std::string& remote) {
    std::shared_ptr<Conn> victim;  // released after the lock: it may be the last reference
    MutexLock l(&mu_);
    if (max_per_client_ > 0) {
      auto it = per_client_.find(remote);
      if (it != per_client_.end() && it->second >= max_per_client_) return false;
    }
    if (conns_.size() >= max_total_) {
      if (!LongestIdleLocked(&victim)) return false;
      victim->Evict();
    }
    conns_[c] = ref;
    ++per_client_[remote];
    return true;
  }
  void Remove(Conn* c, const std::string& remote) {
    MutexLock l(&mu_);
    if (!conns_.erase(c)) return;
    auto it = per_client_.find(remote);
    if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  }
  bool EvictLongestIdle() {
    std::shared_ptr<Conn> victim;  // released after the lock
    bool found = false;
    {
      MutexLock l(&mu_);
      found = LongestIdleLocked(&victim);
    }
    if (found) victim->Evict();
    return found;
  }
  size_t max_total() const { return max_total_; }

 private:
  // Finds the connection evictable the longest and marks it for eviction (true). Only raw
  // pointers are read in the scan: a connection stays in the table (and alive) until its
  // destructor has removed it under mu_. The reference taken goes to *holder, which the caller
  // releases after mu_: it may be the last one, and the destructor takes mu_.
  bool LongestIdleLocked(std::shared_ptr<Conn>* holder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Conn* oldest = nullptr;
    int64_t oldest_since = 0;
    for (const auto& [c, weak] : conns_) {
      const int64_t since = c->idle_since.load();
      if (since > 0 && (!oldest || since < oldest_since)) {
        oldest = c;
        oldest_since = since;
      }
    }
    if (!oldest) return false;
    *holder = conns_[oldest].lock();
    return *holder && (*holder)->idle_since.compare_exchange_strong(oldest_since, -1);
  }

  const size_t max_total_, max_per_client_;
  Mutex mu_;
  absl::flat_hash_map<Conn*, std::weak_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, size_t> per_client_ ABSL_GUARDED_BY(mu_);
};

// Runs expensive requests on a few threads of their own; refuses work beyond its queue.
class ExpensivePool {
 public:
  ExpensivePool(int threads, size_t queue)
      : pool_(static_cast<size_t>(threads)), max_(static_cast<size_t>(threads) + queue) {}
  bool TryPost(std::function<void()> fn) {
    if (inflight_.fetch_add(1) >= max_) {
      inflight_.fetch_sub(1);
      return false;
    }
    asio::post(pool_, [this, fn = std::move(fn)] {
      fn();
      inflight_.fetch_sub(1);
    });
    return true;
  }
  void Stop() {
    pool_.stop();
    pool_.join();
  }
  size_t limit() const { return max_; }

 private:
  asio::thread_pool pool_;
  std::atomic<size_t> inflight_{0};
  const size_t max_;
};

using Message = bhttp::request<bhttp::string_body>;

// HA request forwarding (http/forward.h), shared by every listener: the standby's side sends a
// client's request, sealed, to the active server and opens its answer; the active server's side
// opens a forwarded request once (ReplayGuard) and seals the answer. Runs on the pools' threads
// (a standby's storage is etcd, so every request leaves the event loops there).
class Forwarder {
 public:
  explicit Forwarder(bool enabled) : enabled_(enabled) {
    // Without a random id (no entropy) this server forwards nothing: its clients get the 307.
    if (auto id = crypto::RandomBytes(16); id.ok()) sender_ = HexEncode(*id);
  }
  bool enabled() const { return enabled_; }

  // The standby's side. nullopt: the active server could not take it (not reached, or it
  // refused the sealed request: a root key changed, its clock): the caller answers 307.
  std::optional<RawResponse> Forward(core::Core* core, const Message& msg,
                                     const std::string& remote, const std::string& leader) {
    auto key = core->ForwardingKey();
    if (!key.ok() || sender_.empty()) return std::nullopt;
    ForwardedRequest fr;
    fr.sender = sender_;
    fr.to = leader;
    fr.seq = seq_.fetch_add(1) + 1;
    fr.time = static_cast<int64_t>(std::time(nullptr));
    fr.remote_address = remote;
    RawRequest raw = ViewOf(msg);
    fr.method = std::string(raw.method);
    fr.target = std::string(raw.target);
    fr.vault_token = std::string(raw.vault_token);
    fr.authorization = std::string(raw.authorization);
    fr.wrap_ttl = std::string(raw.wrap_ttl);
    for (auto h : raw.unsupported_headers) fr.unsupported_headers.emplace_back(h);
    fr.body = std::string(raw.body);
    auto sealed = SealRequest(*key, fr);
    OPENSSL_cleanse(fr.vault_token.data(), fr.vault_token.size());
    OPENSSL_cleanse(fr.authorization.data(), fr.authorization.size());
    if (!sealed.ok()) return RenderError(500, Cat("forwarding: ", Msg(sealed.status())));
    auto pool = PoolFor(leader);
    if (!pool.ok()) return std::nullopt;
    bool sent = false;
    // Repeatable: a kept-alive connection the active server closed meanwhile is replaced and the
    // request sent again; were the first copy delivered after all, the replay guard refuses the
    // second (409 below), so it never runs twice.
    auto resp = (*pool)->Call("POST", kForwardPath, *sealed,
                              {{"Content-Type", std::string(kForwardContentType)},
                               {std::string(kForwardAdmitHeader), AdmitProof(*key, fr.time)}},
                              /*repeatable=*/true, &sent);
    if (!resp.ok()) {
      log::Warn("HA: could not forward a request to the active server",
                {{"active", leader}, {"error", Msg(resp.status())}});
      if (!sent) return std::nullopt;
      return RenderError(502, Cat("this HA standby sent the request to the active server at ",
                                  leader, " and got no answer (", Msg(resp.status()),
                                  "): it may or may not have been applied"));
    }
    // What says the request did not run there sends the client there itself: 421 (refused
    // before opening or running it), 404/405 (a server without forwarding), 413 (too large for
    // it), 503 (too busy to take it).
    const int st = resp->status;
    if (st == 421 || st == 404 || st == 405 || st == 413 || st == 503) {
      log::Warn("HA: the active server did not take a forwarded request; sending the client there",
                {{"active", leader},
                 {"status", std::to_string(st)},
                 {"error", PrintableText(resp->body, 512)}});
      return std::nullopt;
    }
    // Anything else but a sealed 200 (a replay refused, a failure after running it) may have
    // run.
    if (st != 200 || resp->content_type != kForwardContentType)
      return RenderError(502, Cat("the active server at ", leader,
                                  " answered a forwarded request "
                                  "with HTTP ",
                                  st, " (", PrintableText(resp->body, 200),
                                  "): it may or may not have been applied"));
    auto out = OpenResponse(*key, fr, resp->body);
    if (!out.ok())
      return RenderError(502, Cat("the answer of the active server at ", leader,
                                  " could not be opened: ", Msg(out.status())));
    return std::move(*out);
  }

  // Before a large forwarded body is read: whether its sender holds the forwarding key (the
  // header a standby sends: its time and a MAC of it), so nobody else makes the server read one.
  bool Admits(core::Core* core, std::string_view header) const {
    auto key = core->ForwardingKey();
    const size_t colon = header.find(':');
    if (!key.ok() || colon == std::string_view::npos) return false;
    int64_t t = 0;
    if (!absl::SimpleAtoi(absl::string_view(header.data(), colon), &t)) return false;
    const auto now = static_cast<int64_t>(std::time(nullptr));
    if (t < now - kForwardMaxAgeSeconds || t > now + kForwardMaxAgeSeconds) return false;
    return crypto::ConstantTimeEquals(AdmitProof(*key, t), header);
  }

  // The active server's side: the request inside, once, and the key to seal its answer with.
  absl::StatusOr<std::pair<ForwardedRequest, crypto::SecretBytes>> Accept(core::Core* core,
                                                                          const Message& msg) {
    if (msg.method() != bhttp::verb::post)
      return absl::InvalidArgumentError("forwarded requests are POSTed");
    if (!core->HaEnabled())
      return absl::FailedPreconditionError("this server does not run in HA mode");
    if (core->Standby()) return absl::FailedPreconditionError("this server is not the active one");
    ASSIGN_OR_RETURN(auto key, core->ForwardingKey());
    ASSIGN_OR_RETURN(auto fr, OpenRequest(key, msg.body()));
    // Sealed for this server, in its present term: a copy sent to another server, or to this
    // one after a restart (its replay guard starts empty), is refused.
    if (fr.to != core->HaApiAddr())
      return absl::PermissionDeniedError(
          Cat("the request was sealed for ", fr.to, ", not for ", core->HaApiAddr()));
    if (fr.time < core->ActiveSince())
      return absl::PermissionDeniedError("the request was sealed before this server became active");
    RETURN_IF_ERROR(guard_.Accept(fr, static_cast<int64_t>(std::time(nullptr))));
    return std::make_pair(std::move(fr), std::move(key));
  }

 private:
  static std::string AdmitProof(const crypto::SecretBytes& key, int64_t t) {
    return Cat(t, ":", HexEncode(crypto::HmacSha256(key.view(), Cat("coffer forward admit ", t))));
  }

  absl::StatusOr<ConnectionPool*> PoolFor(const std::string& leader) {
    MutexLock l(&mu_);
    auto& p = pools_[leader];
    if (!p) {
      ClientOptions o;
      o.address = leader;
      // The sealed request is what keeps it secret and authentic (only a server holding the
      // root key opens it or seals an answer to it), not the certificate: TLS here needs no CA.
      o.skip_verify = true;
      o.timeout = std::chrono::seconds(90);
      o.max_response_bytes = size_t{128} << 20;
      auto made = ConnectionPool::Create(o, 16);
      if (!made.ok()) {
        pools_.erase(leader);
        return made.status();
      }
      p = std::move(*made);
    }
    return p.get();
  }

  const bool enabled_;
  std::string sender_;
  std::atomic<uint64_t> seq_{0};
  ReplayGuard guard_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<ConnectionPool>> pools_ ABSL_GUARDED_BY(mu_);
};

// What a listener's sessions share.
struct Shared {
  Shared(core::Core* c, ListenerOptions o, ExpensivePool* p, ExpensivePool* w, bool reads,
         std::atomic<uint64_t>* cl, Forwarder* f)
      : core(c),
        opts(std::move(o)),
        headers(opts.custom_response_headers),
        conns(opts.max_connections, opts.max_connections_per_client),
        pool(p),
        blocking(w),
        offload_reads(reads),
        closed(cl),
        forwarder(f) {}
  core::Core* const core;
  const ListenerOptions opts;
  const ResponseHeaders headers;
  ConnTable conns;
  ExpensivePool* const pool;
  // Requests that may wait on storage (writes; every request when offload_reads) run here, so
  // the few event loops keep serving their other connections meanwhile.
  ExpensivePool* const blocking;
  const bool offload_reads;
  // Connections closed since the memory was last returned to the system.
  std::atomic<uint64_t>* const closed;
  Forwarder* const forwarder;
  // Answers held until their deferred write is durable (Session::AwaitDurable): Stop() sets
  // `stopping` (no request defers from then on) and waits for `held` to drop to 0, as their
  // continuations hold sessions whose loops must still exist and run on the store's thread.
  std::atomic<int64_t> held{0};
  std::atomic<bool> stopping{false};
};

template <class Stream>
class Session : public Conn, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, std::shared_ptr<Shared> shared, std::string remote)
      : stream_(std::move(stream)), shared_(std::move(shared)), remote_(std::move(remote)) {}
  ~Session() override {
    if (registered_) shared_->conns.Remove(this, remote_);
    shared_->closed->fetch_add(1, std::memory_order_relaxed);
  }

  // On the session's own thread, right after accept. False: the listener is full.
  bool Register() {
    registered_ = shared_->conns.Add(this, this->shared_from_this(), remote_);
    return registered_;
  }

  void Run() {
    idle_since.store(NowNanos());  // evictable until it has sent a whole request header
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      WaitForData();
    } else {
      beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_header_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return;  // failed handshakes are the client's problem
                                self->WaitForData();
                              });
    }
  }

  void Evict() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->idle_since.load() != -1) return;  // it got a request meanwhile
      beast::error_code ec;
      beast::get_lowest_layer(self->stream_).socket().close(ec);
    });
  }

 private:
  // Idle: wait for the first byte of the next request. A connection that has not yet sent a
  // valid token gets the shorter idle time.
  void WaitForData() {
    if (buffer_.size() > 0) return ReadHeader();
    if (buffer_.capacity() > size_t{16} * 1024) buffer_.shrink_to_fit();  // after a large request
    const auto& o = shared_->opts;
    beast::get_lowest_layer(stream_).expires_after(
        authenticated_ ? o.idle_timeout : std::min(o.idle_timeout, o.unauthenticated_idle_timeout));
    idle_since.store(NowNanos());
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || self->idle_since.load() == -1) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(shared_->opts.limits.max_request_size);
    // A small request usually arrives whole in one read: it is parsed from the buffer here,
    // without another asynchronous operation and its timer. A header that is not complete yet
    // is read as before.
    if (buffer_.size() > 0) {
      parser_->eager(true);
      beast::error_code ec;
      const size_t n = parser_->put(buffer_.data(), ec);
      if (ec && ec != bhttp::error::need_more) return OnReadError(ec);
      // need_more may come after the header and part of a chunked body were taken: those bytes
      // are the parser's now, whatever the code.
      buffer_.consume(n);
      if (parser_->is_header_done()) return ReadBody();
      parser_->eager(false);
    }
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->OnReadError(ec);
                               self->ReadBody();
                             });
  }

  void ReadBody() {
    if (idle_since.exchange(0) == -1) return Close();  // evicted while sending its header
    const size_t max = shared_->opts.limits.max_request_size;
    auto len = parser_->content_length();
    if (len && *len > max) return SendErrorUnread(413, TooLarge());
    // A large body is read only for a caller the core would admit: decided from the headers.
    if (len ? *len > kLargeBodyBytes : parser_->chunked()) {
      if (!shared_->offload_reads) {
        if (auto refusal = AdmitLargeBody()) return SendUnread(std::move(*refusal));
        return ReadRest();
      }
      // The token lookup may wait on the network (etcd): on the blocking pool, so the loop
      // serves its other connections. The session has no operation pending meanwhile, so the
      // pool's thread is the only one touching it until it posts back.
      auto self = this->shared_from_this();
      bool queued = shared_->blocking->TryPost([self] {
        auto refusal = self->AdmitLargeBody();
        asio::post(self->stream_.get_executor(), [self, refusal = std::move(refusal)] {
          if (refusal) return self->SendUnread(std::move(*refusal));
          self->ReadRest();
        });
      });
      if (!queued) return SendErrorUnread(503, "the server is busy: retry in a moment");
      return;
    }
    ReadRest();
  }

  // For a large body, before it is read: the answer instead (a refusal, or an HA standby's
  // 307), or nullopt when the caller may send it.
  std::optional<RawResponse> AdmitLargeBody() const {
    if (parser_->get().target() == kForwardPath) {
      auto h = parser_->get().find(kForwardAdmitHeader);
      if (h != parser_->get().end() && shared_->forwarder->Admits(shared_->core, h->value()))
        return std::nullopt;
      return RenderError(421,
                         "forwarded request refused: the sender does not hold this "
                         "cluster's forwarding key");
    }
    RawRequest raw = ViewOf(parser_->get());
    raw.body = {};
    raw.remote_address = remote_;
    auto req = ParseRequest(raw, shared_->opts.limits);
    absl::Status st = req.status();
    if (st.ok())
      if (auto to = shared_->core->StandbyRedirect(*req)) {
        // An HA standby holds no tokens to check, so it reads no large body: the client sends
        // it to the active server, which checks the token first.
        if (to->empty())
          return RenderError(503, "this server is an HA standby and no active server is known yet");
        RawResponse r;
        r.status = 307;
        r.location = Cat(*to, std::string_view(raw.target.data(), raw.target.size()));
        return r;
      }
    if (st.ok()) {
      auto admission = shared_->core->Admit(*req, true);
      st = admission.status();
      // Logins, unseal keys and the like are small: a path that needs no token takes no large
      // body, so an anonymous caller can never make the server read one.
      if (st.ok() && !admission->authenticated)
        return RenderError(413, Cat("request body too large: a request without a token may carry "
                                    "at most ",
                                    kLargeBodyBytes, " bytes"));
    }
    if (!st.ok()) return RenderError(core::HttpStatusFor(st), Msg(st));
    return std::nullopt;
  }

  void ReadRest() {
    if (parser_->is_done()) return Dispatch();  // the body came with the header
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_timeout);
    auto read = [self = this->shared_from_this()] {
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code ec, size_t) {
                          if (ec) return self->OnReadError(ec);
                          self->Dispatch();
                        });
    };
    // curl and others wait for "100 Continue" before sending a large body.
    auto expect = parser_->get().find(bhttp::field::expect);
    if (expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(
          stream_, asio::buffer(kContinue),
          [self = this->shared_from_this(), read](beast::error_code ec, size_t) {
            if (ec) return self->Close();
            read();
          });
    }
    read();
  }

  std::string TooLarge() const {
    return Cat("request body too large: the limit is ", shared_->opts.limits.max_request_size,
               " bytes (the listener's max_request_size)");
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)
      return Close();
    if (ec == bhttp::error::body_limit) return SendErrorUnread(413, TooLarge());
    if (ec == bhttp::error::header_limit)
      return SendError(431, "request headers too large: the limit is 64 KiB", false);
    SendError(400, Cat("malformed HTTP request: ", ec.message()), false);
  }

  void SendError(int status, std::string_view msg, bool keep_alive) {
    Write(RenderError(status, msg), keep_alive, 11);
  }
  // An error answered while the client may still be sending its body: answered, then the rest
  // is read and thrown away (bounded) so the client reads the answer rather than a reset.
  void SendErrorUnread(int status, std::string_view msg) {
    drain_after_write_ = true;
    SendError(status, msg, false);
  }
  void SendUnread(RawResponse r) {
    drain_after_write_ = true;
    Write(std::move(r), false, 11);
  }

  struct Outcome {
    RawResponse out;
    bool authenticated = false;
    // A long poll with nothing new (core/watch.h): parked, answered again later.
    std::string park_path;
    uint64_t park_generation = 0;
    int64_t park_ms = 0;
    // An HA standby's request that tried to write: nothing of it was stored or answered; it
    // goes to the active server.
    bool standby_write = false;
    // The answer's deferred write, not durable yet (core::Response::durable).
    std::shared_ptr<storage::PendingWrite> durable;
  };

  // Parses (unless done) and runs the request. Thread-safe: reads only immutable members, so
  // it may run on the expensive pool.
  Outcome Execute(const Message& msg, core::Request* parsed, bool no_park = false) const {
    Outcome o;
    std::optional<core::Request> own;
    if (!parsed) {
      RawRequest raw = ViewOf(msg);
      raw.remote_address = remote_;
      auto req = ParseRequest(raw, shared_->opts.limits);
      if (!req.ok()) {
        o.out = RenderError(core::HttpStatusFor(req.status()), Msg(req.status()));
        return o;
      }
      own = std::move(*req);
      parsed = &*own;
    }
    parsed->no_park = no_park;
    core::Request& req = *parsed;
    const std::string_view target(msg.target().data(), msg.target().size());
    std::optional<std::string> to = shared_->core->StandbyRedirect(req);
    if (!to) {
      // Served here: this server's own request, or one an HA standby that serves may try.
      Outcome here = ExecuteParsed(req, msg.method_string(), remote_);
      if (!here.standby_write) {
        if (shared_->core->HaEnabled() && shared_->core->Standby())
          shared_->core->CountStandbyRequest(true);
        return here;
      }
      to = shared_->core->StandbyRedirect(req, /*try_local=*/false);
      if (!to) {
        // Became the active server meanwhile: the request did nothing here; the client retries.
        o.out = RenderError(503,
                            "this server changed its HA role while serving the request: "
                            "nothing was done; send it again");
        return o;
      }
    }
    {
      shared_->core->CountStandbyRequest(false);
      if (to->empty()) {
        o.out = RenderError(503, "this server is an HA standby and no active server is known yet");
        return o;
      }
      // An HA standby hands the request to the active server and relays the answer; long polls
      // (which would hold a thread here for minutes) and, with disable_forwarding, everything
      // go there with a 307, which keeps method and body (Vault's clients follow it).
      const bool long_poll = req.op == core::Operation::kRead && req.QueryParam("wait");
      if (shared_->forwarder->enabled() && !long_poll)
        if (auto answer = shared_->forwarder->Forward(shared_->core, msg, remote_, *to)) {
          o.out = std::move(*answer);
          return o;
        }
      o.out.status = 307;
      o.out.location = Cat(*to, target);
      o.out.body.clear();
      return o;
    }
    return ExecuteParsed(req, msg.method_string(), remote_);
  }

  // A request parsed and to be served here (its own, or one a standby forwarded).
  Outcome ExecuteParsed(core::Request& req, std::string_view method,
                        const std::string& remote) const {
    Outcome o;
    auto res = shared_->core->Handle(req);
    if (core::Core::IsStandbyWrite(res.status())) {
      o.standby_write = true;
      return o;
    }
    if (res.ok() && res->park_ms > 0) {
      o.park_path = req.path;
      o.park_generation = req.watch_generation;
      o.park_ms = res->park_ms;
      return o;
    }
    if (res.ok() && res->durable) {
      o.durable = std::move(res->durable);
      // Only the event loop's path holds an answer; anyone else waits here.
      if (!req.defer_write) {
        const absl::Status st = o.durable->Wait();
        o.durable.reset();
        if (!st.ok()) res = st;
      }
    }
    o.out = RenderResponse(res, req);
    o.authenticated = req.token.has_value();
    if (log::Enabled(log::Level::kDebug))
      log::Debug("request", {{"method", std::string(method)},
                             {"path", core::Core::LogPath(req).substr(0, 256)},
                             {"status", std::to_string(o.out.status)},
                             {"remote", remote}});
    return o;
  }

  // On the active server: a request an HA standby forwarded (http/forward.h), on the blocking
  // pool. Protocol errors are a 421 in the clear (nothing ran: the standby answers 307), a
  // replay a 409 (it may have run: the standby answers 502); the request's own answer, whatever
  // its status, goes back sealed in a 200. Expensive work moves on to the expensive pool, as a
  // request made here does, and answers from there: no thread waits for another.
  struct Forwarded {
    ForwardedRequest fr;
    crypto::SecretBytes key;
    std::optional<core::Request> req;
  };
  void RunForwarded(const std::shared_ptr<Message>& msg) {
    auto self = this->shared_from_this();
    auto got = shared_->forwarder->Accept(shared_->core, *msg);
    if (!got.ok()) {
      const int status = absl::IsAlreadyExists(got.status()) ? 409 : 421;
      return PostFinish(msg,
                        RenderError(status, Cat("forwarded request refused: ", Msg(got.status()))));
    }
    auto job = std::make_shared<Forwarded>();
    job->fr = std::move(got->first);
    job->key = std::move(got->second);
    RawRequest raw = job->fr.Raw();
    auto req = ParseRequest(raw, shared_->opts.limits);
    if (!req.ok())
      return SealAndFinish(msg, job,
                           RenderError(core::HttpStatusFor(req.status()), Msg(req.status())));
    req->no_park = true;  // the standby sends long polls here itself (307)
    auto admission = shared_->core->Admit(*req, false);
    job->req = std::move(*req);
    if (admission.ok() && admission->expensive) {
      const bool queued = shared_->pool->TryPost([self, msg, job] {
        Outcome inner = self->ExecuteParsed(*job->req, job->fr.method, job->fr.remote_address);
        if (inner.standby_write) return self->PostFinish(msg, NotActive());
        self->SealAndFinish(msg, job, std::move(inner.out));
      });
      if (!queued)
        SealAndFinish(msg, job,
                      RenderError(503, Cat("too many expensive requests in progress (",
                                           shared_->pool->limit(),
                                           " running or waiting): retry in a moment")));
      return;
    }
    Outcome inner = ExecuteParsed(*job->req, job->fr.method, job->fr.remote_address);
    if (inner.standby_write) return PostFinish(msg, NotActive());
    SealAndFinish(msg, job, std::move(inner.out));
  }

  // A forwarded request that met this server stepping down (it did nothing): refused as a
  // protocol error, so the standby sends its client to the active server.
  static RawResponse NotActive() {
    return RenderError(421, "forwarded request refused: this server is not the active one");
  }

  void SealAndFinish(const std::shared_ptr<Message>& msg, const std::shared_ptr<Forwarded>& job,
                     RawResponse answer) {
    OPENSSL_cleanse(job->fr.vault_token.data(), job->fr.vault_token.size());
    auto sealed = SealResponse(job->key, job->fr, answer);
    if (!sealed.ok())
      return PostFinish(
          msg, RenderError(500, Cat("sealing the forwarded answer: ", Msg(sealed.status()))));
    RawResponse out;
    out.content_type = std::string(kForwardContentType);
    out.body = std::move(*sealed);
    authenticated_forward_ = true;  // the sender holds the root key
    PostFinish(msg, std::move(out));
  }

  // From a pool's thread: answered on the connection's own.
  void PostFinish(const std::shared_ptr<Message>& msg, RawResponse out) {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(), [self, msg, out = std::move(out)]() mutable {
      Outcome o;
      o.out = std::move(out);
      o.authenticated = self->authenticated_forward_.load();
      self->Finish(*msg, std::move(o));
    });
  }

  // Light requests run here, on the connection's thread (no handoff: on the signing path a
  // handoff costs more than the HTTP work); expensive ones and large bodies on the pool.
  void Dispatch() {
    auto msg = std::make_shared<Message>(parser_->release());
    parser_.reset();
    Run(msg, false);
  }

  // no_park: a parked long poll's second run, which answers whatever it finds.
  void Run(const std::shared_ptr<Message>& msg, bool no_park) {
    if (msg->target() == kForwardPath) return OffloadForwarded(msg);
    if (msg->body().size() > kLargeBodyBytes) return Offload(msg, nullptr, nullptr, no_park);
    RawRequest raw = ViewOf(*msg);
    raw.remote_address = remote_;
    auto req = ParseRequest(raw, shared_->opts.limits);
    if (!req.ok())
      return Finish(*msg, {RenderError(core::HttpStatusFor(req.status()), Msg(req.status()))});
    auto admission = shared_->core->Admit(*req, false);
    if (admission.ok() && admission->expensive)
      return Offload(msg, std::make_shared<core::Request>(std::move(*req)), nullptr, no_park);
    // A wrapped response stores its wrapping token and cubbyhole: a write, whatever the path.
    if (!admission.ok() || shared_->offload_reads || admission->may_wait || req->wrap_ttl > 0)
      return Offload(msg, std::make_shared<core::Request>(std::move(*req)), shared_->blocking,
                     no_park);
    const bool counted = admission->defer_write;
    if (counted) {
      // Counted before `stopping` is read, as Stop() sets it before reading the count: either
      // Stop() waits for this answer or this request does not defer.
      shared_->held.fetch_add(1);
      if (shared_->stopping.load()) {
        shared_->held.fetch_sub(1);
        return Offload(msg, std::make_shared<core::Request>(std::move(*req)), shared_->blocking,
                       no_park);
      }
      req->defer_write = true;
    }
    Outcome o = Execute(*msg, &*req, no_park);
    if (o.durable) return AwaitDurable(msg, std::move(o));
    // Nothing deferred after all (an error, or the core cleared defer_write): answered now.
    if (counted) shared_->held.fetch_sub(1);
    Done(msg, std::move(o));
  }

  // A request whose last write is not durable yet (core::Request::defer_write): answered from
  // the write's completion (the store's committing thread posts the answer to this loop), with
  // the write's error instead if it failed. The loop serves its other connections meanwhile:
  // no thread waits for the commit.
  // Runs with shared_->held counted for it (Run), and uncounts it once the answer is posted.
  void AwaitDurable(const std::shared_ptr<Message>& msg, Outcome o) {
    std::shared_ptr<storage::PendingWrite> write = std::move(o.durable);
    write->OnComplete(
        [self = this->shared_from_this(), msg, o = std::move(o)](const absl::Status& st) mutable {
          // The count drops last, once this closure holds nothing of the session: Stop() may
          // return, and the loops go, as soon as it is 0. `Shared` outlives that (its Listener
          // holds it until the server is destroyed), the session need not.
          struct Uncount {
            std::atomic<int64_t>* held;
            ~Uncount() { held->fetch_sub(1); }
          } uncount{&self->shared_->held};
          if (!st.ok()) o.out = RenderError(core::HttpStatusFor(st), Msg(st));
          auto loop = self->stream_.get_executor();
          asio::post(loop, [self = std::move(self), msg, o = std::move(o)]() mutable {
            self->Done(msg, std::move(o));
          });
        });
  }

  void Offload(const std::shared_ptr<Message>& msg, const std::shared_ptr<core::Request>& req,
               ExpensivePool* pool = nullptr, bool no_park = false) {
    auto self = this->shared_from_this();
    if (pool == nullptr) pool = shared_->pool;
    bool queued = pool->TryPost([self, msg, req, no_park] {
      Outcome o = self->Execute(*msg, req.get(), no_park);
      asio::post(self->stream_.get_executor(),
                 [self, msg, o = std::move(o)]() mutable { self->Done(msg, std::move(o)); });
    });
    if (!queued)
      Finish(*msg, {RenderError(503, Cat("too many expensive requests in progress (", pool->limit(),
                                         " running or waiting): retry in a moment"))});
  }

  void OffloadForwarded(const std::shared_ptr<Message>& msg) {
    auto self = this->shared_from_this();
    bool queued = shared_->blocking->TryPost([self, msg] { self->RunForwarded(msg); });
    if (!queued) Finish(*msg, {RenderError(503, "too many requests in progress: retry")});
  }

  // An executed request: answered, or parked when it is a long poll with nothing new.
  void Done(const std::shared_ptr<Message>& msg, Outcome o) {
    if (o.park_ms > 0) return Park(msg, o);
    Finish(*msg, std::move(o));
  }

  // The most long polls parked at once, server-wide (each holds a connection).
  static constexpr size_t kMaxParked = 16384;

  // Parks a long poll on this connection (no read is pending meanwhile): the request runs again
  // with no_park when its path is written or when the wait is over, whichever is first. The
  // connection's thread owns `fired`; the hub may wake it from any thread.
  void Park(const std::shared_ptr<Message>& msg, const Outcome& o) {
    core::WatchHub& hub = shared_->core->watches();
    // Each parked poll holds a connection and its request: bounded server-wide.
    if (hub.Waiting() >= kMaxParked)
      return Finish(*msg, {RenderError(429, Cat("too many long polls are open (", kMaxParked,
                                                "): retry in a moment"))});
    auto self = this->shared_from_this();
    auto fired = std::make_shared<bool>(false);
    if (!park_timer_) park_timer_.emplace(stream_.get_executor());
    park_timer_->expires_after(std::chrono::milliseconds(o.park_ms));
    const uint64_t id = hub.Subscribe(o.park_path, o.park_generation, [self, msg, fired] {
      asio::post(self->stream_.get_executor(), [self, msg, fired] {
        if (*fired) return;
        *fired = true;
        self->Unpark();
        self->Run(msg, /*no_park=*/true);
      });
    });
    park_timer_->async_wait([self, msg, fired, id, &hub](beast::error_code) {
      if (*fired) return;
      *fired = true;
      hub.Cancel(id);
      self->Unpark();
      self->Run(msg, /*no_park=*/true);
    });
    // A client that goes away while parked: its socket turns readable with nothing to read
    // (end of stream), and the poll is dropped at once rather than at the end of its wait. (Data
    // instead, such as a pipelined request or TLS's close_notify, leaves the poll to its wait.)
    auto& sock = beast::get_lowest_layer(stream_).socket();
    sock.async_wait(tcp::socket::wait_read, [self, fired, id, &hub](beast::error_code ec) {
      if (ec || *fired) return;
      char c;
      const ssize_t n = ::recv(beast::get_lowest_layer(self->stream_).socket().native_handle(), &c,
                               1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return;
      *fired = true;
      hub.Cancel(id);
      self->park_timer_->cancel();
      self->Close();
    });
  }

  // The end of a park: its timer and its wait on the socket are cancelled.
  void Unpark() {
    park_timer_->cancel();
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().cancel(ec);
  }

  void Finish(const Message& msg, Outcome o) {
    if (o.authenticated) authenticated_ = true;
    if (msg.method() == bhttp::verb::head) o.out.body.clear();
    Write(std::move(o.out), msg.keep_alive(), msg.version());
  }

  // The response is rendered by hand into one header string and written with the body in one
  // gather write (beast's serializer cost a fifth of a token lookup's CPU). Header values come
  // from the configuration (checked for line breaks when parsed) or from Coffer itself.
  void Write(RawResponse out, bool keep_alive, unsigned version) {
    const int status = out.status;
    const bool has_body = status != 204 && status != 304 && status >= 200;
    std::string& h = out_head_;
    h.clear();
    h.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    absl::StrAppend(&h, status, " ", absl::string_view(reason.data(), reason.size()), "\r\n");
    h.append(shared_->headers.Block(status));
    if (!out.location.empty()) absl::StrAppend(&h, "Location: ", out.location, "\r\n");
    if (has_body)
      absl::StrAppend(&h, "Content-Type: ", out.content_type,
                      "\r\nContent-Length: ", out.body.size(), "\r\n");
    if (version == 10 && keep_alive) h.append("Connection: keep-alive\r\n");
    if (version != 10 && !keep_alive) h.append("Connection: close\r\n");
    h.append("\r\n");
    out_body_ = has_body ? std::move(out.body) : std::string();
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      // TLS: one buffer. Through beast's ssl_stream a two-buffer write lost its second buffer
      // (the client got the header and then the end of the connection: test_bad_input.py),
      // and the encryption costs more than this copy.
      out_head_.append(out_body_);
      out_body_.clear();
    }
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_timeout);
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(out_head_), asio::buffer(out_body_)};
    asio::async_write(stream_, bufs,
                      [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        // A large response's buffers are not kept for the next request.
                        if (self->out_body_.capacity() > kLargeBodyBytes)
                          std::string().swap(self->out_body_);
                        if (self->out_head_.capacity() > kLargeBodyBytes)
                          std::string().swap(self->out_head_);
                        if (ec) return self->Close();
                        if (!keep_alive)
                          return self->drain_after_write_ ? self->Drain() : self->Close();
                        self->WaitForData();
                      });
  }

  // Reads and discards what the client still sends, for kDrainTime and at most
  // max_request_size bytes, then closes.
  void Drain() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    drain_deadline_ = std::chrono::steady_clock::now() + kDrainTime;
    DrainSome();
  }
  void DrainSome() {
    if (drained_ > shared_->opts.limits.max_request_size ||
        std::chrono::steady_clock::now() >= drain_deadline_)
      return Close();
    beast::get_lowest_layer(stream_).expires_at(drain_deadline_);
    if (drain_buf_.empty()) drain_buf_.resize(size_t{16} * 1024);
    stream_.async_read_some(asio::buffer(drain_buf_),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->drained_ += n;
                              self->DrainSome();
                            });
  }

  void Close() {
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::get_lowest_layer(self->stream_).close();
      });
    }
  }

  Stream stream_;
  std::shared_ptr<Shared> shared_;
  const std::string remote_;
  bool registered_ = false;
  bool authenticated_ = false;  // has sent a request with a valid token
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool drain_after_write_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
  size_t drained_ = 0;
  std::string drain_buf_;
  std::string out_head_, out_body_;                 // the response being written (one at a time)
  std::optional<asio::steady_timer> park_timer_;    // a parked long poll's wait
  std::atomic<bool> authenticated_forward_{false};  // a standby's connection, once proven
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Accepts on the first loop; each new connection goes to the next loop in turn.
  Listener(std::vector<std::unique_ptr<asio::io_context>>* loops, core::Core* core,
           ListenerOptions opts, ExpensivePool* pool, ExpensivePool* blocking, bool offload_reads,
           std::atomic<uint64_t>* closed, Forwarder* forwarder)
      : loops_(loops),
        acceptor_(*(*loops)[0]),
        backoff_(*(*loops)[0]),
        shared_(
            std::make_shared<Shared>(core, opts, pool, blocking, offload_reads, closed, forwarder)),
        opts_(std::move(opts)) {}

  absl::Status Open() {
    ASSIGN_OR_RETURN(auto ep, ParseAddress(opts_.address));
    if (!opts_.tls_disable) {
      ASSIGN_OR_RETURN(auto ctx, MakeTlsContext(opts_));
      MutexLock l(&mu_);
      tls_ = std::move(ctx);
    }
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return absl::FailedPreconditionError(
          Cat("cannot listen on ", opts_.address, ": ", ec.message()));
    auto local = acceptor_.local_endpoint();
    bound_ = local.address().is_v6() ? Cat("[", local.address().to_string(), "]:", local.port())
                                     : Cat(local.address().to_string(), ":", local.port());
    return absl::OkStatus();
  }

  void Accept() {
    asio::io_context& loop = *(*loops_)[next_loop_++ % loops_->size()];
    acceptor_.async_accept(loop.get_executor(), [self = shared_from_this()](beast::error_code ec,
                                                                            tcp::socket s) {
      if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (ec == asio::error::no_descriptors ||
          ec == boost::system::errc::too_many_files_open_in_system ||
          ec == asio::error::no_memory || ec == asio::error::no_buffer_space)
        return self->BackOff(ec);
      self->delay_ = std::chrono::milliseconds(0);
      // Start the session on the thread of the socket's own loop.
      if (!ec) {
        auto ex = s.get_executor();
        asio::post(ex, [self, s = std::move(s)]() mutable { self->StartSession(std::move(s)); });
      }
      self->Accept();
    });
  }

  // Out of descriptors: accept() would fail at once, again and again (a core spinning while
  // new clients time out). Close the connection idle the longest and wait a little, longer
  // each time, before accepting again; the kernel keeps new connections in the backlog.
  void BackOff(beast::error_code ec) {
    delay_ = std::min(std::chrono::milliseconds(1000),
                      std::max(std::chrono::milliseconds(10), delay_ * 2));
    shared_->conns.EvictLongestIdle();
    static RateLimitedLog every_minute(std::chrono::seconds(60));
    if (every_minute.Due())
      log::Warn("cannot accept connections: out of file descriptors; closing idle connections",
                {{"listener", bound_}, {"error", ec.message()}});
    backoff_.expires_after(delay_);
    backoff_.async_wait([self = shared_from_this()](beast::error_code wec) {
      if (wec || !self->acceptor_.is_open()) return;
      self->Accept();
    });
  }

  void StartSession(tcp::socket s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    std::string remote = ec ? "" : ep.address().to_string();
    s.set_option(tcp::no_delay(true), ec);
    if (opts_.tls_disable) {
      auto sess = std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)),
                                                               shared_, remote);
      if (Register(sess.get(), remote)) sess->Run();
    } else {
      std::shared_ptr<ssl::context> ctx;
      {
        MutexLock l(&mu_);
        ctx = tls_;
      }
      // The session keeps the context alive through the stream's SSL object.
      auto stream = beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(s)), *ctx);
      auto sess = std::make_shared<TlsSession>(std::move(stream), shared_, remote, ctx);
      if (Register(sess.get(), remote)) sess->Run();
    }
  }

  // A refused connection is closed as its session goes away, before any byte is read.
  template <class S>
  bool Register(S* sess, const std::string& remote) {
    if (sess->Register()) return true;
    static RateLimitedLog every_minute(std::chrono::seconds(60));
    if (every_minute.Due())
      log::Warn("refusing connections: the listener is at its connection limit",
                {{"listener", bound_},
                 {"remote", remote},
                 {"max_connections", std::to_string(shared_->conns.max_total())}});
    return false;
  }

  absl::Status ReloadTls() {
    if (opts_.tls_disable) return absl::OkStatus();
    ASSIGN_OR_RETURN(auto ctx, MakeTlsContext(opts_));
    MutexLock l(&mu_);
    tls_ = std::move(ctx);
    return absl::OkStatus();
  }

  void Close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
  }

  const std::string& bound() const { return bound_; }
  int64_t held() const { return shared_->held.load(); }
  void StopDeferring() { shared_->stopping.store(true); }

 private:
  // A TLS session that also owns its context (so a reload never frees one in use).
  class TlsSession : public Session<beast::ssl_stream<beast::tcp_stream>> {
   public:
    TlsSession(beast::ssl_stream<beast::tcp_stream> s, std::shared_ptr<Shared> sh,
               std::string remote, std::shared_ptr<ssl::context> ctx)
        : Session(std::move(s), std::move(sh), std::move(remote)), ctx_(std::move(ctx)) {}

   private:
    std::shared_ptr<ssl::context> ctx_;
  };

  std::vector<std::unique_ptr<asio::io_context>>* loops_;
  size_t next_loop_ = 0;  // used on the first loop's thread only
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_;          // first loop's thread only
  std::chrono::milliseconds delay_{0};  // first loop's thread only
  std::shared_ptr<Shared> shared_;
  ListenerOptions opts_;
  std::string bound_;
  Mutex mu_;
  std::shared_ptr<ssl::context> tls_ ABSL_GUARDED_BY(mu_);
};

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(int threads, int expensive_threads, size_t expensive_queue, int blocking_threads) {
    pool_.emplace(expensive_threads, expensive_queue);
    // Unbounded in effect: each connection has at most one request in flight.
    blocking_.emplace(blocking_threads, std::numeric_limits<size_t>::max() / 2);
    for (int i = 0; i < threads; ++i) loops_.push_back(std::make_unique<asio::io_context>(1));
    trim_.emplace(*loops_[0]);
  }
  ~HttpServerImpl() override {
    try {
      Stop();
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to do at exit
    }
  }

  absl::Status Init(core::Core* core, const ServerOptions& opts) {
    core_ = core;
    forwarder_.emplace(opts.forward_requests);
    if (opts.listeners.empty())
      return absl::InvalidArgumentError("at least one listener is required");
    // Each loop's reactor (epoll, timerfd and eventfd descriptors) is made now: made lazily by
    // a loop's first connection, it would throw once the descriptors run out.
    try {
      for (auto& loop : loops_) asio::steady_timer warm(*loop);
    } catch (const boost::system::system_error& e) {
      return absl::ResourceExhaustedError(Cat("cannot set up ", loops_.size(),
                                              " event loops (3 file descriptors each): ", e.what(),
                                              ": raise the descriptor limit (ulimit -n)"));
    }
    for (auto l : opts.listeners) {
      if (l.max_connections == 0) l.max_connections = DefaultMaxConnections(opts.listeners.size());
      auto listener = std::make_shared<Listener>(&loops_, core, l, &*pool_, &*blocking_,
                                                 opts.offload_reads, &closed_, &*forwarder_);
      RETURN_IF_ERROR(listener->Open());
      listeners_.push_back(listener);
    }
    for (auto& l : listeners_) l->Accept();
    ScheduleTrim();
    for (auto& loop : loops_) {
      guards_.push_back(asio::make_work_guard(*loop));
      threads_.emplace_back([&loop] { loop->run(); });
    }
    return absl::OkStatus();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& l : listeners_) l->Close();
    // Answers held for a deferred write: their writes complete (the store outlives this), so
    // their continuations, which hold sessions, are done before the loops go. No request
    // defers once `stopping` is set.
    for (auto& l : listeners_) l->StopDeferring();
    for (auto& l : listeners_)
      while (l->held() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    asio::post(*loops_[0], [this] { trim_->cancel(); });
    pool_->Stop();
    blocking_->Stop();
    for (auto& loop : loops_) loop->stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    // Requests still queued hold their sessions: dropped now, while the loops their sockets
    // belong to still exist.
    pool_.reset();
    blocking_.reset();
    // So do parked long polls (their wake-ups hold them).
    if (core_) core_->watches().Clear();
  }

  absl::Status ReloadTls() override {
    for (auto& l : listeners_) RETURN_IF_ERROR(l->ReloadTls());
    return absl::OkStatus();
  }

  std::vector<std::string> Addresses() const override {
    std::vector<std::string> out;
    for (const auto& l : listeners_) out.push_back(l->bound());
    return out;
  }

 private:
  // What the descriptor limit allows, shared by the listeners, less a reserve for storage,
  // audit files and outgoing connections.
  static size_t DefaultMaxConnections(size_t listeners) {
    rlimit rl{};
    size_t nofile = 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      nofile = static_cast<size_t>(rl.rlim_cur);
    // Already open: the event loops' descriptors, storage, listeners' sockets ...
    size_t open = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
         it.increment(ec))
      ++open;
    const size_t reserve = open + std::min<size_t>(256, nofile / 4);
    const size_t free = nofile > reserve ? nofile - reserve : 0;
    return std::max<size_t>(16, std::min<size_t>(1u << 20, free / listeners));
  }

  // Every few seconds, if connections were closed since the last time, hands the memory freed
  // by them back to the system: glibc keeps freed memory in each thread's arena, so after a
  // storm of connections the process would otherwise stay at its peak.
  void ScheduleTrim() {
    trim_->expires_after(std::chrono::seconds(5));
    trim_->async_wait([this](beast::error_code ec) {
      if (ec) return;
      if (closed_.exchange(0) > 0) malloc_trim(0);
      ScheduleTrim();
    });
  }

  // Declared before the loops: sessions destroyed with the loops still count closes. The pool
  // is emptied by Stop(), before the loops go.
  std::atomic<uint64_t> closed_{0};
  std::optional<Forwarder> forwarder_;  // before the pools: their tasks may use it
  std::optional<ExpensivePool> pool_;
  std::optional<ExpensivePool> blocking_;
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  std::optional<asio::steady_timer> trim_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  core::Core* core_ = nullptr;
  std::atomic<bool> stopped_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(core::Core* core,
                                                              const ServerOptions& opts) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  int threads = opts.io_threads;
  if (threads <= 0) threads = static_cast<int>(std::max(2u, cores));
  int blocking = opts.blocking_threads;
  if (blocking <= 0) blocking = static_cast<int>(std::max(64u, 8 * cores));
  int expensive = opts.expensive_threads;
  if (expensive <= 0)
    expensive = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto s = std::make_unique<HttpServerImpl>(threads, expensive, opts.expensive_queue, blocking);
  RETURN_IF_ERROR(s->Init(core, opts));
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace coffer::http
