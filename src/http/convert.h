// Conversion between HTTP messages and the core's Request/Response, kept free of Beast so the
// parsing of untrusted bytes can be fuzzed and tested on its own. Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/request.h"
#include "util/json_parse.h"

namespace coffer::http {

inline constexpr size_t kMaxBodyBytes = 32u << 20;  // 32 MiB, Vault's max_request_size default

// What one request may cost to read: the listener's max_request_size and JSON limits (Vault's
// keys and defaults).
struct RequestLimits {
  size_t max_request_size = kMaxBodyBytes;
  JsonLimits json;
};

struct RawRequest {
  std::string_view method;         // "GET", "LIST", ...
  std::string_view target;         // "/v1/secret/foo?list=true"
  std::string_view vault_token;    // X-Vault-Token
  std::string_view authorization;  // Authorization
  std::string_view wrap_ttl;       // X-Vault-Wrap-TTL
  // Names of X-Vault-* headers Coffer does not implement (refused, never ignored).
  std::vector<std::string_view> unsupported_headers;
  std::string_view body;
  std::string remote_address;
};

// Builds the core request; errors are 4xx with a message for the client.
absl::StatusOr<core::Request> ParseRequest(const RawRequest& raw, const RequestLimits& limits = {});

// Splits "a=b&c=%20d" into decoded pairs; fails on bad percent-escapes.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q);
absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space);

struct RawResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string location;  // a Location header (an HA standby's 307 to the active server)
};

// Vault's envelope for success, {"errors":[...]} for failure.
RawResponse RenderResponse(const absl::StatusOr<core::Response>& r, const core::Request& req);
RawResponse RenderError(int status, std::string_view message);

}  // namespace coffer::http
