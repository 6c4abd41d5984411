// http::Call against a small TLS server in the test: a CA given as PEM text (ca_pem) is trusted
// and nothing else is, and an answer over max_response_bytes is refused.
#include "http/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include "crypto/cert_builder.h"
#include "crypto/keys.h"
#include "crypto/pem.h"

namespace coffer::http {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct Identity {
  std::string ca_pem, cert_pem, key_pem;
};

// A CA and a server certificate for 127.0.0.1 signed by it.
Identity MakeIdentity(const std::string& name) {
  Identity id;
  auto ca_key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  auto key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  crypto::CertTemplate ca;
  ca.common_name = name + " CA";
  ca.is_ca = true;
  ca.not_before = absl::ToUnixSeconds(absl::Now()) - 60;
  ca.not_after = ca.not_before + 3600;
  auto ca_cert = crypto::SignCertificate(ca, ca_key->get(), nullptr, ca_key->get());
  crypto::CertTemplate leaf;
  leaf.common_name = name;
  leaf.ip_sans = {"127.0.0.1"};
  leaf.key_usage = crypto::kDigitalSignature;
  leaf.ext_key_usage = {"1.3.6.1.5.5.7.3.1"};
  leaf.not_before = ca.not_before;
  leaf.not_after = ca.not_after;
  auto cert = crypto::SignCertificate(leaf, key->get(), ca_cert->get(), ca_key->get());
  id.ca_pem = crypto::CertPem(ca_cert->get());
  id.cert_pem = crypto::CertPem(cert->get());
  id.key_pem = std::string(crypto::PrivateKeyPem(key->get(), "pkcs8")->view());
  return id;
}

// Serves `connections` TLS connections on 127.0.0.1, answering each request with `body`.
class TlsServer {
 public:
  TlsServer(const Identity& id, std::string body, int connections)
      : ctx_(asio::ssl::context::tls_server),
        acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    ctx_.use_certificate_chain(asio::buffer(id.cert_pem));
    ctx_.use_private_key(asio::buffer(id.key_pem), asio::ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, body = std::move(body), connections] {
      for (int i = 0; i < connections; ++i) {
        tcp::socket sock(ioc_);
        beast::error_code ec;
        acceptor_.accept(sock, ec);
        if (ec) return;
        beast::ssl_stream<tcp::socket> stream(std::move(sock), ctx_);
        stream.handshake(asio::ssl::stream_base::server, ec);
        if (ec) continue;  // the client refused our certificate
        beast::flat_buffer buf;
        bhttp::request<bhttp::string_body> req;
        bhttp::read(stream, buf, req, ec);
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
        res.body() = body;
        res.prepare_payload();
        bhttp::write(stream, res, ec);
        stream.shutdown(ec);
      }
    });
  }
  ~TlsServer() { thread_.join(); }
  std::string Address() const { return "https://127.0.0.1:" + std::to_string(port_); }

 private:
  asio::io_context ioc_;
  asio::ssl::context ctx_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
};

TEST(HttpClientTest, ACaGivenAsPemTextIsTrustedAndNoOtherIs) {
  const Identity server = MakeIdentity("server");
  const Identity stranger = MakeIdentity("stranger");
  TlsServer tls(server, "hello", 3);  // the call with a bad CA text does not even connect
  ClientOptions o;
  o.address = tls.Address();
  o.timeout = std::chrono::seconds(10);
  o.ca_pem = server.ca_pem;
  auto r = Call(o, "GET", "/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");

  o.ca_pem = stranger.ca_pem;
  r = Call(o, "GET", "/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("the configured CA certificate is not the CA"),
            std::string::npos)
      << r.status();

  // Text holding no certificate is the caller's error; nothing is sent.
  o.ca_pem = "-----BEGIN CERTIFICATE-----\\n.....\\n-----END CERTIFICATE-----";
  r = Call(o, "GET", "/x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();

  // An answer over the bound is refused.
  o.ca_pem = server.ca_pem;
  o.max_response_bytes = 4;
  r = Call(o, "GET", "/x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

// A plain HTTP server that keeps connections open and answers each request with how many
// connections it has accepted so far; after `close_after` requests on a connection it closes it.
class KeepAliveServer {
 public:
  explicit KeepAliveServer(int close_after)
      : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, close_after] {
      for (;;) {
        tcp::socket sock(ioc_);
        beast::error_code ec;
        acceptor_.accept(sock, ec);
        if (ec) return;
        ++accepted_;
        beast::flat_buffer buf;
        for (int n = 0; n < close_after; ++n) {
          bhttp::request<bhttp::string_body> req;
          bhttp::read(sock, buf, req, ec);
          if (ec) break;
          if (req.target() == "/stop") return;
          bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
          res.body() = std::to_string(accepted_.load());
          res.keep_alive(true);
          res.prepare_payload();
          bhttp::write(sock, res, ec);
        }
      }
    });
  }
  ~KeepAliveServer() {
    ClientOptions o;
    o.address = Address();
    (void)Call(o, "GET", "/stop");
    thread_.join();
  }
  std::string Address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_.load(); }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(ConnectionPool, ReusesConnectionsAndReplacesOnesTheServerClosed) {
  KeepAliveServer server(3);  // closes each connection after three requests
  ClientOptions o;
  o.address = server.Address();
  auto pool = ConnectionPool::Create(o);
  ASSERT_TRUE(pool.ok()) << pool.status();
  for (int i = 0; i < 3; ++i) {
    auto r = (*pool)->Call("GET", "/x");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "1");  // one connection for all three
  }
  // The server closed it after the third: the fourth call notices, reconnects, and succeeds.
  auto r = (*pool)->Call("GET", "/x");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "2");
  EXPECT_EQ(server.accepted(), 2);
}

// A server that accepts and never answers: the call ends after the timeout, as kUnavailable.
TEST(HttpClientTest, ASilentServerTimesOut) {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});  // never accepts
  ClientOptions o;
  o.address = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  o.timeout = std::chrono::seconds(1);
  auto r = Call(o, "GET", "/x");  // without the bound it waits forever (ctest's timeout fails it)
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find("within 1s"), std::string::npos) << r.status();
  // Over TLS the handshake is bounded the same way.
  o.address = "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  r = Call(o, "GET", "/x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TLS handshake"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace coffer::http
