// A small synchronous HTTP(S) client for the CLI (and later the agent): one connection per call,
// TLS 1.2+ with the peer certificate and host name (or IP) verified against a CA file or the
// system store unless skip_verify is set. Each call is independent; a Client may be used from
// several threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "util/mutex.h"

namespace coffer::http {

struct ClientOptions {
  std::string address = "https://127.0.0.1:8200";
  std::string ca_cert;  // PEM file; empty: the system's trust store
  // PEM text of the CA certificates to trust instead (another service's CA kept in storage, as
  // the Kubernetes auth method's kubernetes_ca_cert). Used when not empty; ca_cert is then
  // ignored. Text holding no certificate is an InvalidArgument error.
  std::string ca_pem;
  bool skip_verify = false;
  // A client certificate and its key (PEM files) presented when the server asks for one.
  std::string client_cert_file;
  std::string client_key_file;
  // The name the server's certificate must carry (and SNI) when not the address's host.
  std::string server_name;
  std::string token;     // sent as X-Vault-Token when not empty
  std::string wrap_ttl;  // sent as X-Vault-Wrap-TTL when not empty: the response comes wrapped
  std::chrono::seconds timeout{60};
  // More request headers (e.g. Authorization for a third-party API).
  std::vector<std::pair<std::string, std::string>> headers;
  // The largest response body read; a longer one fails the call (kUnavailable). Calls to
  // another service on behalf of an unauthenticated caller set a small bound.
  size_t max_response_bytes = size_t{64} << 20;
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::string location;  // the Location header (a 307 from an HA standby), when given
  std::string content_type;
};

// Performs one request. `path` is the URL path with query ("/v1/sys/health?standbyok=true").
// Connection and TLS failures, and a response over max_response_bytes, are kUnavailable with the
// reason. `timeout` bounds each send and receive on the socket.
absl::StatusOr<ClientResponse> Call(const ClientOptions& opts, std::string_view method,
                                    std::string_view path, std::string_view body = "");

// A 307 (an HA standby with disable_forwarding, sending the client to the active server) is
// followed as Vault's clients follow it: method, body and token kept, to the same scheme only
// (never from https to http, which would show the token), verified as the first server was,
// twice at most. Returns `r` itself when it is not such a redirect. For Coffer's own clients
// (CLI, agent); calls to other services do not follow redirects.
absl::StatusOr<ClientResponse> FollowRedirects(const ClientOptions& o, std::string_view method,
                                               std::string_view body, ClientResponse r);

struct Connection;

// Connections to one server kept open between calls (HTTP/1.1 keep-alive), for a caller that
// makes many small requests (the etcd storage backend, Coffer's own tools): a call takes an idle
// connection or opens one, and gives it back when the server keeps it open. At most `max_idle`
// stay open, each for at most `max_idle_time` unused (then closed: well inside a server's own
// idle timeout, so a reused connection is almost never one the server is closing).
//
// A reused connection that fails before any answer (the server closed it meanwhile) is replaced
// and the request sent once more when the caller says the request is `repeatable` (reads, and
// writes whose repetition changes nothing); otherwise the failure is returned, since the server
// may have acted on it. Safe to call from several threads.
class ConnectionPool {
 public:
  using Header = std::pair<std::string, std::string>;
  // Fails on a bad address or unusable TLS files (checked once, here).
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      ClientOptions opts, size_t max_idle = 8,
      std::chrono::milliseconds max_idle_time = std::chrono::milliseconds(2000));
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // `sent` (when given) says on failure whether the request may have reached the server: false
  // when no connection could be made, so the caller may safely try elsewhere.
  absl::StatusOr<ClientResponse> Call(std::string_view method, std::string_view path,
                                      std::string_view body = "",
                                      const std::vector<Header>& headers = {},
                                      bool repeatable = true, bool* sent = nullptr);
  // A request whose response body is a stream (etcd's watch), on a connection of its own:
  // each piece of the body is passed to `on_data` as it arrives. Ends OK when the server ends
  // the body, when `on_data` returns false, or when nothing arrives for `idle` (the caller
  // starts again); kUnavailable on a failure or a status other than 200 (with its body).
  absl::Status Stream(std::string_view method, std::string_view path, std::string_view body,
                      const std::vector<Header>& headers, std::chrono::milliseconds idle,
                      const std::function<bool(std::string_view)>& on_data);
  const std::string& address() const;
  const ClientOptions& options() const;

 private:
  struct Impl;
  struct Idle {
    std::unique_ptr<Connection> conn;
    std::chrono::steady_clock::time_point since;
  };
  ConnectionPool(std::unique_ptr<Impl> impl, size_t max_idle,
                 std::chrono::milliseconds max_idle_time);
  std::unique_ptr<Impl> impl_;
  const size_t max_idle_;
  const std::chrono::milliseconds max_idle_time_;
  Mutex mu_;
  std::vector<Idle> idle_ ABSL_GUARDED_BY(mu_);  // most recently used last
};

}  // namespace coffer::http
