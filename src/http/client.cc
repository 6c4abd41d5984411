#include "http/client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "util/status.h"

namespace coffer::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
};

absl::StatusOr<Url> ParseUrl(std::string_view a) {
  Url u;
  if (a.substr(0, 8) == "https://") {
    a.remove_prefix(8);
  } else if (a.substr(0, 7) == "http://") {
    u.tls = false;
    a.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError(
        Cat("address \"", a, "\" must start with https:// or http://"));
  }
  while (!a.empty() && a.back() == '/') a.remove_suffix(1);
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos)
      return absl::InvalidArgumentError("bad IPv6 address in URL");
    u.host = std::string(a.substr(1, close - 1));
    a.remove_prefix(close + 1);
    if (!a.empty() && a.front() == ':') u.port = std::string(a.substr(1));
  } else {
    size_t colon = a.rfind(':');
    u.host = std::string(a.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(a.substr(colon + 1));
  }
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  if (u.host.empty()) return absl::InvalidArgumentError("address has no host");
  return u;
}

// Runs one asynchronous operation started by `start` on `ioc` until it completes or `timeout`
// passes; then the socket is closed, which ends the operation, and the result is timed_out.
// (Socket options such as SO_RCVTIMEO do not bound Asio's synchronous calls: Asio waits again
// after EAGAIN.) `ioc` serves this one connection only.
template <class Start>
beast::error_code RunFor(asio::io_context& ioc, tcp::socket& sock,
                         std::chrono::milliseconds timeout, Start start) {
  beast::error_code result = asio::error::would_block;
  bool done = false;
  start([&result, &done](beast::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  ioc.restart();
  ioc.run_for(timeout);
  if (done) return result;
  beast::error_code ignored;
  sock.close(ignored);
  ioc.restart();
  ioc.run();  // the cancelled operation's handler
  return asio::error::timed_out;
}

// A socket timeout (SO_RCVTIMEO / SO_SNDTIMEO) surfaces as EAGAIN, possibly wrapped by TLS.
bool TimedOut(const beast::error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again ||
         ec == asio::error::timed_out || ec.value() == EAGAIN || ec.value() == ETIMEDOUT;
}

template <class Stream>
absl::StatusOr<ClientResponse> Exchange(asio::io_context& ioc, tcp::socket& sock, Stream& stream,
                                        const Url& u, const ClientOptions& o,
                                        std::string_view method, std::string_view path,
                                        std::string_view body, bool keep_alive, bool* kept) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(method));
  req.target(std::string(path));
  req.version(11);
  req.set(bhttp::field::host, u.host + ":" + u.port);
  req.set(bhttp::field::user_agent, "coffer-cli");
  if (!keep_alive) req.set(bhttp::field::connection, "close");
  if (!o.token.empty()) req.set("X-Vault-Token", o.token);
  if (!o.wrap_ttl.empty()) req.set("X-Vault-Wrap-TTL", o.wrap_ttl);
  for (const auto& [name, value] : o.headers) req.set(name, value);
  if (!body.empty()) {
    // Vault takes a PATCH (kv version 2, metadata) only as a JSON merge patch.
    req.set(bhttp::field::content_type,
            method == "PATCH" ? "application/merge-patch+json" : "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();
  beast::error_code ec = RunFor(ioc, sock, o.timeout, [&](auto handler) {
    bhttp::async_write(stream, req, std::move(handler));
  });
  if (ec && TimedOut(ec))
    return absl::DeadlineExceededError(
        Cat("sending the request timed out after ", o.timeout.count(), "s"));
  if (ec) return absl::UnavailableError(Cat("sending the request failed: ", ec.message()));
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(o.max_response_bytes);
  // The status line and headers are bounded too (Beast's default is 8 KiB).
  ec = RunFor(ioc, sock, o.timeout,
              [&](auto handler) { bhttp::async_read(stream, buf, parser, std::move(handler)); });
  if (ec && TimedOut(ec))
    return absl::DeadlineExceededError(
        Cat("no answer from ", u.host, ":", u.port, " within ", o.timeout.count(), "s"));
  if (ec) {
    // A TLS server reading plain HTTP fails its handshake and drops the connection.
    const bool dropped = ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                         ec == asio::error::connection_reset;
    return absl::UnavailableError(
        Cat("reading the response failed: ", ec.message(),
            dropped && !u.tls ? Cat(": if the server at ", u.host, ":", u.port,
                                    " uses TLS, give an https:// address (-address, COFFER_ADDR "
                                    "or VAULT_ADDR)")
                              : std::string()));
  }
  ClientResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  if (kept) *kept = keep_alive && parser.get().keep_alive();
  out.body = std::move(parser.get().body());
  if (auto it = parser.get().find(bhttp::field::location); it != parser.get().end())
    out.location = std::string(it->value());
  if (auto it = parser.get().find(bhttp::field::content_type); it != parser.get().end())
    out.content_type = std::string(it->value());
  return out;
}

// Sends one request and hands the response body to `on_data` as it arrives (a stream such as
// etcd's watch): see ConnectionPool::Stream.
template <class Stream>
absl::Status StreamExchange(asio::io_context& ioc, tcp::socket& sock, Stream& stream, const Url& u,
                            const ClientOptions& o, std::string_view method, std::string_view path,
                            std::string_view body, std::chrono::milliseconds idle,
                            const std::function<bool(std::string_view)>& on_data) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(method));
  req.target(std::string(path));
  req.version(11);
  req.set(bhttp::field::host, u.host + ":" + u.port);
  req.set(bhttp::field::user_agent, "coffer");
  req.set(bhttp::field::connection, "close");
  for (const auto& [name, value] : o.headers) req.set(name, value);
  req.set(bhttp::field::content_type, "application/json");
  req.body() = std::string(body);
  req.prepare_payload();
  beast::error_code ec = RunFor(ioc, sock, o.timeout, [&](auto handler) {
    bhttp::async_write(stream, req, std::move(handler));
  });
  if (ec) return absl::UnavailableError(Cat("sending the request failed: ", ec.message()));
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);  // consumed as it comes; bounded per read below
  ec = RunFor(ioc, sock, o.timeout, [&](auto handler) {
    bhttp::async_read_header(stream, buf, parser, std::move(handler));
  });
  if (ec) return absl::UnavailableError(Cat("reading the response failed: ", ec.message()));
  const int status = static_cast<int>(parser.get().result_int());
  std::string& got = parser.get().body();
  while (!parser.is_done()) {
    ec = RunFor(ioc, sock, status == 200 ? idle : o.timeout, [&](auto handler) {
      bhttp::async_read_some(stream, buf, parser, std::move(handler));
    });
    if (ec == asio::error::timed_out && status == 200) return absl::OkStatus();  // idle
    if (ec) return absl::UnavailableError(Cat("reading the response failed: ", ec.message()));
    if (status != 200) {
      if (got.size() > 65536) break;
      continue;
    }
    if (got.size() > o.max_response_bytes)
      return absl::UnavailableError("a streamed message is larger than the limit");
    if (!got.empty()) {
      if (!on_data(got)) return absl::OkStatus();
      got.clear();
    }
  }
  if (status != 200) return absl::UnavailableError(Cat("HTTP ", status, ": ", got.substr(0, 512)));
  return absl::OkStatus();
}

}  // namespace

namespace {

// The TLS settings of a client: TLS 1.2+, the CA to verify against, the client certificate.
absl::StatusOr<std::unique_ptr<ssl::context>> MakeContext(const ClientOptions& o) {
  beast::error_code ec;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  if (o.skip_verify) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->set_verify_mode(ssl::verify_peer);
    if (!o.ca_pem.empty()) {
      ctx->add_certificate_authority(asio::buffer(o.ca_pem), ec);
      if (ec)
        return absl::InvalidArgumentError(Cat(
            "the CA certificate given as PEM text holds no usable certificate: ", ec.message()));
    } else if (!o.ca_cert.empty()) {
      ctx->load_verify_file(o.ca_cert, ec);
      if (ec)
        return absl::InvalidArgumentError(
            Cat("cannot load CA certificate ", o.ca_cert, ": ", ec.message()));
    } else {
      ctx->set_default_verify_paths(ec);
    }
  }
  if (!o.client_cert_file.empty() || !o.client_key_file.empty()) {
    if (o.client_cert_file.empty() || o.client_key_file.empty())
      return absl::InvalidArgumentError(
          "a client certificate needs both its certificate and its key file");
    // An encrypted key must not make OpenSSL prompt on the terminal (a server thread would
    // hang): no passphrase is given, so loading it fails with a message.
    ctx->set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    ctx->use_certificate_chain_file(o.client_cert_file, ec);
    if (ec)
      return absl::InvalidArgumentError(
          Cat("cannot load client certificate ", o.client_cert_file, ": ", ec.message()));
    ctx->use_private_key_file(o.client_key_file, ssl::context::pem, ec);
    if (ec)
      return absl::InvalidArgumentError(
          Cat("cannot load client key ", o.client_key_file, ": ", ec.message(),
              " (a passphrase-protected key is not supported: give it unencrypted, mode 0600)"));
  }
  return ctx;
}

}  // namespace

// One open connection: plain or TLS, handshaken and verified.
struct Connection {
  asio::io_context ioc;  // this connection's own: RunFor runs it
  tcp::socket sock{ioc};
  std::unique_ptr<beast::ssl_stream<tcp::socket>> tls;

  tcp::socket& socket() { return tls ? tls->next_layer() : sock; }
  absl::Status StreamExchange(const Url& u, const ClientOptions& o, std::string_view method,
                              std::string_view path, std::string_view body,
                              std::chrono::milliseconds idle,
                              const std::function<bool(std::string_view)>& on_data) {
    return tls ? http::StreamExchange(ioc, socket(), *tls, u, o, method, path, body, idle, on_data)
               : http::StreamExchange(ioc, sock, sock, u, o, method, path, body, idle, on_data);
  }
  absl::StatusOr<ClientResponse> Exchange(const Url& u, const ClientOptions& o,
                                          std::string_view method, std::string_view path,
                                          std::string_view body, bool keep_alive, bool* kept) {
    return tls ? http::Exchange(ioc, socket(), *tls, u, o, method, path, body, keep_alive, kept)
               : http::Exchange(ioc, sock, sock, u, o, method, path, body, keep_alive, kept);
  }
  void Close(std::chrono::seconds timeout) {
    if (tls)
      RunFor(ioc, socket(), timeout,
             [&](auto handler) { tls->async_shutdown(std::move(handler)); });
  }
};

namespace {

// Callers see every failure to talk to the server as kUnavailable, a timeout included.
absl::StatusOr<ClientResponse> Unavailable(absl::StatusOr<ClientResponse> r) {
  if (absl::IsDeadlineExceeded(r.status())) return absl::UnavailableError(r.status().message());
  return r;
}

absl::StatusOr<std::unique_ptr<Connection>> Connect(const Url& u, const ClientOptions& o,
                                                    ssl::context* ctx) {
  auto c = std::make_unique<Connection>();
  tcp::resolver resolver(c->ioc);
  beast::error_code ec;
  auto results = resolver.resolve(u.host, u.port, ec);
  if (ec) return absl::UnavailableError(Cat("cannot resolve ", u.host, ": ", ec.message()));
  ec = RunFor(c->ioc, c->sock, o.timeout,
              [&](auto handler) { asio::async_connect(c->sock, results, std::move(handler)); });
  if (ec) return absl::UnavailableError(Cat("cannot connect to ", o.address, ": ", ec.message()));
  if (!u.tls) return c;
  c->tls = std::make_unique<beast::ssl_stream<tcp::socket>>(std::move(c->sock), *ctx);
  SSL* ssl_handle = c->tls->native_handle();
  const std::string& name = o.server_name.empty() ? u.host : o.server_name;
  boost::system::error_code ip_ec;
  asio::ip::make_address(name, ip_ec);
  if (ip_ec) SSL_set_tlsext_host_name(ssl_handle, name.c_str());
  if (!o.skip_verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    if (!ip_ec) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    }
  }
  ec = RunFor(c->ioc, c->tls->next_layer(), o.timeout, [&](auto handler) {
    c->tls->async_handshake(ssl::stream_base::client, std::move(handler));
  });
  if (ec) {
    long v = SSL_get_verify_result(ssl_handle);
    std::string why = v != X509_V_OK ? X509_verify_cert_error_string(v) : ec.message();
    // What to do about the common causes, as a person would need it.
    std::string hint;
    if (v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
        v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
        v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
      hint = !o.ca_pem.empty() ? ": the configured CA certificate is not the CA that signed the "
                                 "server's certificate"
             : o.ca_cert.empty()
                 ? ": give the CA certificate that signed the server's certificate with -ca-cert "
                   "or COFFER_CACERT (VAULT_CACERT)"
                 : Cat(": ", o.ca_cert, " is not the CA that signed the server's certificate");
    else if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
      hint = Cat(": the server's certificate is not for \"", name,
                 "\"; use a name or address it lists");
    else if (v == X509_V_OK &&
             ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER)
      hint = Cat(": the server at ", u.host, ":", u.port,
                 " answers plain HTTP; give an http:// address (-address, COFFER_ADDR or "
                 "VAULT_ADDR)");
    return absl::UnavailableError(Cat("TLS handshake with ", o.address, " failed: ", why, hint));
  }
  return c;
}

}  // namespace

absl::StatusOr<ClientResponse> Call(const ClientOptions& o, std::string_view method,
                                    std::string_view path, std::string_view body) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(o.address));
  std::unique_ptr<ssl::context> ctx;
  if (u.tls) {
    ASSIGN_OR_RETURN(ctx, MakeContext(o));
  }
  ASSIGN_OR_RETURN(auto c, Connect(u, o, ctx.get()));
  auto res = c->Exchange(u, o, method, path, body, false, nullptr);
  c->Close(o.timeout);
  return Unavailable(std::move(res));
}

absl::StatusOr<ClientResponse> FollowRedirects(const ClientOptions& o, std::string_view method,
                                               std::string_view body, ClientResponse r) {
  const size_t sep = o.address.find("://");
  if (sep == std::string::npos) return r;
  const std::string scheme = o.address.substr(0, sep + 3);
  for (int hop = 0; r.status == 307 && hop < 2; ++hop) {
    if (!r.location.starts_with(scheme)) break;
    const size_t path_at = r.location.find('/', scheme.size());
    if (path_at == std::string::npos) break;
    ClientOptions to = o;
    to.address = r.location.substr(0, path_at);
    ASSIGN_OR_RETURN(r, Call(to, method, r.location.substr(path_at), body));
  }
  return r;
}

// --- ConnectionPool ---

struct ConnectionPool::Impl {
  ClientOptions opts;
  Url url;
  std::unique_ptr<ssl::context> ctx;
};

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    ClientOptions opts, size_t max_idle, std::chrono::milliseconds max_idle_time) {
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->url, ParseUrl(opts.address));
  if (impl->url.tls) {
    ASSIGN_OR_RETURN(impl->ctx, MakeContext(opts));
  }
  impl->opts = std::move(opts);
  return std::unique_ptr<ConnectionPool>(
      new ConnectionPool(std::move(impl), max_idle, max_idle_time));
}

ConnectionPool::ConnectionPool(std::unique_ptr<Impl> impl, size_t max_idle,
                               std::chrono::milliseconds max_idle_time)
    : impl_(std::move(impl)), max_idle_(max_idle), max_idle_time_(max_idle_time) {}

ConnectionPool::~ConnectionPool() {
  MutexLock l(&mu_);
  idle_.clear();
}

const std::string& ConnectionPool::address() const { return impl_->opts.address; }
const ClientOptions& ConnectionPool::options() const { return impl_->opts; }

absl::StatusOr<ClientResponse> ConnectionPool::Call(std::string_view method, std::string_view path,
                                                    std::string_view body,
                                                    const std::vector<Header>& headers,
                                                    bool repeatable, bool* sent) {
  ClientOptions o = impl_->opts;
  o.headers.insert(o.headers.end(), headers.begin(), headers.end());
  if (sent) *sent = false;
  bool fresh_only = false;  // after a reused connection failed: the others are suspect too
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> c;
    std::vector<Idle> stale;  // closed outside the lock
    if (!fresh_only) {
      MutexLock l(&mu_);
      // Oldest first: the ones unused for longer than max_idle_time are closed.
      const auto now = std::chrono::steady_clock::now();
      size_t fresh = 0;
      while (fresh < idle_.size() && now - idle_[fresh].since > max_idle_time_) ++fresh;
      for (size_t k = 0; k < fresh; ++k) stale.push_back(std::move(idle_[k]));
      idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(fresh));
      if (!idle_.empty()) {
        c = std::move(idle_.back().conn);
        idle_.pop_back();
      }
    }
    stale.clear();
    const bool reused = c != nullptr;
    if (!c) {
      ASSIGN_OR_RETURN(c, Connect(impl_->url, o, impl_->ctx.get()));
    }
    bool kept = false;
    if (sent) *sent = true;
    auto res = c->Exchange(impl_->url, o, method, path, body, true, &kept);
    if (!res.ok()) {
      if (reused) {
        // The server closed it (restarted, or timed it out): the idle ones are likely closed
        // too. Sent again, on a new connection, only when the old one was found closed (not
        // after waiting out a timeout) and the caller allows it.
        std::vector<Idle> dropped;
        {
          MutexLock l(&mu_);
          dropped.swap(idle_);
        }
        fresh_only = true;
        if (repeatable && !absl::IsDeadlineExceeded(res.status())) continue;
      }
      return Unavailable(std::move(res));
    }
    if (kept) {
      MutexLock l(&mu_);
      if (idle_.size() < max_idle_)
        idle_.push_back({std::move(c), std::chrono::steady_clock::now()});
    }
    return res;
  }
  return absl::UnavailableError(Cat("the connection to ", o.address, " failed twice"));
}

absl::Status ConnectionPool::Stream(std::string_view method, std::string_view path,
                                    std::string_view body, const std::vector<Header>& headers,
                                    std::chrono::milliseconds idle,
                                    const std::function<bool(std::string_view)>& on_data) {
  ClientOptions o = impl_->opts;
  o.headers.insert(o.headers.end(), headers.begin(), headers.end());
  ASSIGN_OR_RETURN(auto c, Connect(impl_->url, o, impl_->ctx.get()));
  return c->StreamExchange(impl_->url, o, method, path, body, idle, on_data);
}

}  // namespace coffer::http
