// A typed client over Vault's HTTP API for Coffer's own tools (`cluster`, `agent`): one call per
// method, the "data" object unwrapped, and each failure turned into an absl::Status a caller can
// act on: kUnavailable (cannot connect, sealed, standby, 5xx: retry later), kNotFound (404),
// kPermissionDenied (403: token invalid, expired, used up, or not allowed), kInvalidArgument (400,
// with the server's messages). Thread-safe. Calls share kept-alive connections (a
// ConnectionPool, shared by copies of an Api), so a tool making a thousand calls makes one TLS
// handshake, not a thousand; only GET and LIST are sent again on a connection found closed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json.hpp"
#include "http/client.h"

namespace coffer::http {

class Api {
 public:
  explicit Api(ClientOptions o);
  Api(const Api&) = default;
  Api& operator=(const Api&) = default;
  Api(Api&&) = default;
  Api& operator=(Api&&) = default;
  ~Api();  // wipes the token

  const ClientOptions& options() const { return o_; }
  // The token sent with each call; the one it replaces is wiped. (Each call's request still
  // copies it into its headers, freed unwiped.)
  void set_token(std::string t);

  // The whole response body (for auth blocks and the like). `path` is after /v1/.
  absl::StatusOr<boost::json::object> Call(std::string_view method, std::string_view path,
                                           const boost::json::object* body = nullptr) const;
  // GET; the response's "data" object.
  absl::StatusOr<boost::json::object> Read(std::string_view path) const;
  // POST; the whole response ({} for 204).
  absl::StatusOr<boost::json::object> Write(std::string_view path,
                                            const boost::json::object& body) const;
  // LIST; the keys ({} for 404).
  absl::StatusOr<std::vector<std::string>> List(std::string_view path) const;
  absl::Status Delete(std::string_view path) const;

 private:
  ClientOptions o_;
  // Built from o_ without its token (sent per call); null when o_ is unusable (bad address or
  // TLS files), and then each call reports why.
  std::shared_ptr<ConnectionPool> pool_;
  absl::Status pool_error_;
};

}  // namespace coffer::http
