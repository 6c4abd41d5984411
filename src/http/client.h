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
  bool skip_verify = false;
  std::string token;     // sent as X-Vault-Token when not empty
  std::string wrap_ttl;  // sent as X-Vault-Wrap-TTL when not empty: the response comes wrapped
  std::chrono::seconds timeout{60};
  // More request headers (e.g. Authorization for a third-party API).
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ClientResponse {
  int status = 0;
  std::string body;
};

// Performs one request. `path` is the URL path with query ("/v1/sys/health?standbyok=true").
// Connection and TLS failures are kUnavailable with the reason.
absl::StatusOr<ClientResponse> Call(const ClientOptions& opts, std::string_view method,
                                    std::string_view path, std::string_view body = "");

}  // namespace coffer::http
