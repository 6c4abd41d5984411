// The request/response model that flows HTTP -> core -> engine -> core -> HTTP.
// Plain value types; not thread-safe, owned by the one request in flight.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "boost/json/object.hpp"
#include "boost/json/serialize.hpp"
#include "core/token_store.h"
#include "storage/pending_write.h"
#include "storage/storage.h"

namespace coffer::core {

// Vault's logical operations. PUT/POST map to kUpdate (kCreate when the target does not exist,
// once ACLs need to tell them apart), GET to kRead, LIST and ?list=true to kList.
enum class Operation { kRead, kCreate, kUpdate, kPatch, kDelete, kList, kHead };
std::string_view OperationName(Operation op);

struct Request {
  std::string id;
  Operation op = Operation::kRead;
  std::string path;  // without "/v1/" and without a leading '/'
  boost::json::object data;
  std::vector<std::pair<std::string, std::string>> query;
  // Sensitive: never logged, never written anywhere but the token lookup.
  std::string client_token;
  std::string remote_address;
  // X-Vault-Wrap-TTL in seconds: > 0 asks the core to wrap the response (response wrapping).
  int64_t wrap_ttl = 0;

  // Filled in by the core's router before the engine runs.
  std::string mount_point;  // e.g. "secret/"
  std::string mount_type;
  int64_t mount_default_ttl = 0;  // effective seconds
  int64_t mount_max_ttl = 0;
  storage::Storage* storage = nullptr;  // the mount's view through the barrier
  std::optional<TokenEntry> token;      // the authenticated caller
  bool sudo = false;                    // the caller holds sudo on this path
  // Where in `path` a secret begins (SpecialPaths::secret_path_prefixes), or npos.
  size_t secret_path_from = std::string::npos;
  // A long poll (core/watch.h): the path's generation when the engine read it, and whether the
  // engine must answer now (the wait is over, or the path was written).
  uint64_t watch_generation = 0;
  bool no_park = false;
  // Set by the HTTP layer when it can hold the answer until a write is durable (it runs the
  // request on an event loop): an engine may then start its last write with WriteAsync, when
  // req.storage->WritesAsync(), and leave its PendingWrite here instead of waiting. The core
  // clears it where the answer must be final when the engine returns (audit devices enabled,
  // a wrapped response) and moves the PendingWrite into Response::durable.
  bool defer_write = false;
  std::shared_ptr<storage::PendingWrite> pending_write;

  std::optional<std::string> QueryParam(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return v;
    return std::nullopt;
  }
};

// What an auth method asks the core to issue after a successful login (Vault's logical.Auth).
struct LoginGrant {
  std::vector<std::string> policies;
  bool no_default_policy = false;
  int64_t ttl = 0;
  int64_t max_ttl = 0;  // explicit max for the token
  int64_t period = 0;
  int64_t num_uses = 0;
  bool renewable = true;
  std::vector<std::string> bound_cidrs;
  std::string display_name;
  std::map<std::string, std::string> metadata;
};

// A secret with a lease (Vault's logical.Secret): an engine sets Response::secret, the core
// records the lease, answers with its lease_id, and at expiry or on sys/leases/revoke hands
// `internal` back to the engine's Backend::RevokeLease.
struct SecretLease {
  int64_t ttl = 0;  // seconds; 0: the mount's default
  bool renewable = false;
  boost::json::object internal;  // what the engine needs to revoke it; never sent to clients
};

struct Response {
  // 0: derived — 200 when there is something to send, 204 otherwise.
  int http_status = 0;
  std::optional<boost::json::object> data;
  std::optional<boost::json::object> auth;
  std::optional<SecretLease> secret;
  // Set when the response was wrapped: the wrapping token's details replace data and auth.
  std::optional<boost::json::object> wrap_info;
  std::vector<std::string> warnings;
  std::string lease_id;
  int64_t lease_duration = 0;
  bool renewable = false;
  // Vault answers some system endpoints without the envelope (sys/init, sys/health ...).
  bool raw = false;
  std::string raw_body;
  std::string content_type = "application/json";
  // Copied to the top level of the envelope as well (Vault does so for sys/mounts, key-status).
  bool duplicate_data_at_top = false;
  // Set by auth methods: the core creates the token and fills `auth`.
  std::optional<LoginGrant> login;
  // Internal: the core seals the server after sending this response.
  bool seal_after = false;
  // Internal: a long poll with nothing new yet; the HTTP layer answers the request again when its
  // path is written or after this many milliseconds (core/watch.h).
  int64_t park_ms = 0;
  // Internal: a write of this request that is not durable yet (Request::defer_write); the
  // answer waits for it and becomes its error if it fails.
  std::shared_ptr<storage::PendingWrite> durable;

  static Response Data(boost::json::object d) {
    Response r;
    r.data = std::move(d);
    return r;
  }
  static Response Empty() { return Response(); }
  // An answer whose body is `o` as it is, not wrapped in Vault's envelope (sys/init, seal-status,
  // rekey, ...).
  static Response Raw(const boost::json::object& o) {
    Response r;
    r.raw = true;
    r.raw_body = boost::json::serialize(o);
    return r;
  }
};

// One place maps error codes to HTTP statuses (Vault's codes).
int HttpStatusFor(const absl::Status& s);

}  // namespace coffer::core
