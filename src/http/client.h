// A small synchronous HTTP(S) client for the CLI (and later the agent): one connection per call,
// TLS 1.2+ with the peer certificate and host name (or IP) verified against a CA file or the
// system store unless skip_verify is set. Each call is independent; a Client may be used from
// several threads.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

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
};

// Performs one request. `path` is the URL path with query ("/v1/sys/health?standbyok=true").
// Connection and TLS failures, and a response over max_response_bytes, are kUnavailable with the
// reason. `timeout` bounds each send and receive on the socket.
absl::StatusOr<ClientResponse> Call(const ClientOptions& opts, std::string_view method,
                                    std::string_view path, std::string_view body = "");

}  // namespace coffer::http
