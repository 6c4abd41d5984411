#include "http/server.h"

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <thread>

#include "http/beast_request.h"
#include "http/convert.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kHeaderLimit = 64 * 1024;

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
  ctx->use_private_key_file(l.tls_key_file, ssl::context::pem, ec);
  if (ec)
    return absl::InvalidArgumentError(
        Cat("cannot load tls_key_file ", l.tls_key_file, ": ", ec.message()));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return absl::InvalidArgumentError(
        "tls_key_file does not match the certificate in tls_cert_file");
  return ctx;
}

struct Shared {
  core::Core* core;
  ListenerOptions opts;
};

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, std::shared_ptr<Shared> shared, std::string remote)
      : stream_(std::move(stream)), shared_(std::move(shared)), remote_(std::move(remote)) {}

  void Run() {
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

 private:
  // Idle: wait for the first byte of the next request.
  void WaitForData() {
    if (buffer_.size() > 0) return ReadHeader();
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kMaxBodyBytes);
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->OnReadError(ec);
                               self->ReadBody();
                             });
  }

  void ReadBody() {
    auto len = parser_->content_length();
    if (len && *len > kMaxBodyBytes)
      return SendError(413, "request body too large: the limit is 32 MiB", false);
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Dispatch();
                      });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted)
      return Close();
    if (ec == bhttp::error::body_limit)
      return SendError(413, "request body too large: the limit is 32 MiB", false);
    if (ec == bhttp::error::header_limit)
      return SendError(431, "request headers too large: the limit is 64 KiB", false);
    SendError(400, Cat("malformed HTTP request: ", ec.message()), false);
  }

  void SendError(int status, std::string_view msg, bool keep_alive) {
    RawResponse r = RenderError(status, msg);
    Write(std::move(r), keep_alive, 11);
  }

  // Runs the request on this connection's thread, then writes the answer. Each I/O thread has
  // its own event loop, so a request waiting on storage holds up only the connections of that
  // thread, and none is handed from thread to thread (each handoff cost more than the HTTP
  // work itself on the signing path).
  void Dispatch() {
    auto msg = parser_->release();
    parser_.reset();
    const bool keep_alive = msg.keep_alive();
    const unsigned version = msg.version();
    RawRequest raw = ViewOf(msg);
    raw.remote_address = remote_;
    const std::string method(raw.method);
    RawResponse out;
    auto req = ParseRequest(raw);
    if (!req.ok()) {
      out = RenderError(core::HttpStatusFor(req.status()), Msg(req.status()));
    } else {
      auto res = shared_->core->Handle(*req);
      out = RenderResponse(res, *req);
      if (log::Enabled(log::Level::kDebug))
        log::Debug("request", {{"method", method},
                               {"path", req->path.substr(0, 256)},
                               {"status", std::to_string(out.status)},
                               {"remote", remote_}});
    }
    if (method == "HEAD") out.body.clear();
    Write(std::move(out), keep_alive, version);
  }

  void Write(RawResponse out, bool keep_alive, unsigned version) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(out.status), version);
    res->set(bhttp::field::server, "coffer");
    res->set(bhttp::field::cache_control, "no-store");
    if (out.status != 204) {
      res->set(bhttp::field::content_type, out.content_type);
      res->body() = std::move(out.body);
    }
    res->keep_alive(keep_alive);
    res->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(shared_->opts.read_timeout);
    bhttp::async_write(
        stream_, *res,
        [self = this->shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
          if (ec || !keep_alive) return self->Close();
          self->WaitForData();
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
  std::string remote_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Accepts on the first loop; each new connection goes to the next loop in turn.
  Listener(std::vector<std::unique_ptr<asio::io_context>>* loops, core::Core* core,
           ListenerOptions opts)
      : loops_(loops),
        acceptor_(*(*loops)[0]),
        shared_(std::make_shared<Shared>(Shared{core, opts})),
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
      // Start the session on the thread of the socket's own loop.
      if (!ec) {
        auto ex = s.get_executor();
        asio::post(ex, [self, s = std::move(s)]() mutable { self->StartSession(std::move(s)); });
      }
      self->Accept();
    });
  }

  void StartSession(tcp::socket s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    std::string remote = ec ? "" : ep.address().to_string();
    s.set_option(tcp::no_delay(true), ec);
    if (opts_.tls_disable) {
      std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), shared_, remote)
          ->Run();
    } else {
      std::shared_ptr<ssl::context> ctx;
      {
        MutexLock l(&mu_);
        ctx = tls_;
      }
      // The session keeps the context alive through the stream's SSL object.
      auto stream = beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(s)), *ctx);
      auto sess = std::make_shared<TlsSession>(std::move(stream), shared_, remote, ctx);
      sess->Run();
    }
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
  std::shared_ptr<Shared> shared_;
  ListenerOptions opts_;
  std::string bound_;
  Mutex mu_;
  std::shared_ptr<ssl::context> tls_ ABSL_GUARDED_BY(mu_);
};

class HttpServerImpl final : public HttpServer {
 public:
  explicit HttpServerImpl(int threads) {
    for (int i = 0; i < threads; ++i) loops_.push_back(std::make_unique<asio::io_context>(1));
  }
  ~HttpServerImpl() override { Stop(); }

  absl::Status Init(core::Core* core, ServerOptions opts) {
    if (opts.listeners.empty())
      return absl::InvalidArgumentError("at least one listener is required");
    for (const auto& l : opts.listeners) {
      auto listener = std::make_shared<Listener>(&loops_, core, l);
      RETURN_IF_ERROR(listener->Open());
      listeners_.push_back(listener);
    }
    for (auto& l : listeners_) l->Accept();
    for (auto& loop : loops_) {
      guards_.push_back(asio::make_work_guard(*loop));
      threads_.emplace_back([&loop] { loop->run(); });
    }
    return absl::OkStatus();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& l : listeners_) l->Close();
    for (auto& loop : loops_) loop->stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
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
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(core::Core* core,
                                                              ServerOptions opts) {
  int threads = opts.io_threads;
  if (threads <= 0)
    threads =
        static_cast<int>(std::max(64u, 8 * std::max(1u, std::thread::hardware_concurrency())));
  auto s = std::make_unique<HttpServerImpl>(threads);
  RETURN_IF_ERROR(s->Init(core, std::move(opts)));
  return std::unique_ptr<HttpServer>(std::move(s));
}

}  // namespace coffer::http
