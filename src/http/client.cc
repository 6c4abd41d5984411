#include "http/client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

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

void SetTimeouts(tcp::socket& s, std::chrono::seconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count());
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

template <class Stream>
absl::StatusOr<ClientResponse> Exchange(Stream& stream, const Url& u, const ClientOptions& o,
                                        std::string_view method, std::string_view path,
                                        std::string_view body) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(method));
  req.target(std::string(path));
  req.version(11);
  req.set(bhttp::field::host, u.host + ":" + u.port);
  req.set(bhttp::field::user_agent, "coffer-cli");
  req.set(bhttp::field::connection, "close");
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
  beast::error_code ec;
  bhttp::write(stream, req, ec);
  if (ec) return absl::UnavailableError(Cat("sending the request failed: ", ec.message()));
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(o.max_response_bytes);
  // The status line and headers are bounded too (Beast's default is 8 KiB).
  bhttp::read(stream, buf, parser, ec);
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
  out.body = std::move(parser.get().body());
  return out;
}

}  // namespace

absl::StatusOr<ClientResponse> Call(const ClientOptions& o, std::string_view method,
                                    std::string_view path, std::string_view body) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(o.address));
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(u.host, u.port, ec);
  if (ec) return absl::UnavailableError(Cat("cannot resolve ", u.host, ": ", ec.message()));
  tcp::socket sock(ioc);
  asio::connect(sock, results, ec);
  if (ec) return absl::UnavailableError(Cat("cannot connect to ", o.address, ": ", ec.message()));
  SetTimeouts(sock, o.timeout);
  if (!u.tls) return Exchange(sock, u, o, method, path, body);

  ssl::context ctx(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (o.skip_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!o.ca_pem.empty()) {
      ctx.add_certificate_authority(asio::buffer(o.ca_pem), ec);
      if (ec)
        return absl::InvalidArgumentError(Cat(
            "the CA certificate given as PEM text holds no usable certificate: ", ec.message()));
    } else if (!o.ca_cert.empty()) {
      ctx.load_verify_file(o.ca_cert, ec);
      if (ec)
        return absl::InvalidArgumentError(
            Cat("cannot load CA certificate ", o.ca_cert, ": ", ec.message()));
    } else {
      ctx.set_default_verify_paths(ec);
    }
  }
  if (!o.client_cert_file.empty() || !o.client_key_file.empty()) {
    if (o.client_cert_file.empty() || o.client_key_file.empty())
      return absl::InvalidArgumentError(
          "a client certificate needs both its certificate and its key file");
    // An encrypted key must not make OpenSSL prompt on the terminal (a server thread would
    // hang): no passphrase is given, so loading it fails with a message.
    ctx.set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    ctx.use_certificate_chain_file(o.client_cert_file, ec);
    if (ec)
      return absl::InvalidArgumentError(
          Cat("cannot load client certificate ", o.client_cert_file, ": ", ec.message()));
    ctx.use_private_key_file(o.client_key_file, ssl::context::pem, ec);
    if (ec)
      return absl::InvalidArgumentError(
          Cat("cannot load client key ", o.client_key_file, ": ", ec.message(),
              " (a passphrase-protected key is not supported: give it unencrypted, mode 0600)"));
  }
  beast::ssl_stream<tcp::socket> stream(std::move(sock), ctx);
  SSL* ssl_handle = stream.native_handle();
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
  stream.handshake(ssl::stream_base::client, ec);
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
  auto res = Exchange(stream, u, o, method, path, body);
  stream.shutdown(ec);
  return res;
}

}  // namespace coffer::http
