// Backend: a logical engine mounted at a path (kv, pki, transit ...). The core hands each request
// to the backend of the longest matching mount, with req.path relative to the mount and
// req.storage set to the mount's own view ("logical/<uuid>/" through the barrier).
// Backends must be safe to call from several threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/json/object.hpp"
#include "core/request.h"

namespace coffer::core {

struct MountEntry {
  std::string path;  // with trailing '/'
  std::string type;
  std::string description;
  std::string uuid;
  std::string accessor;
  int64_t default_lease_ttl = 0;  // 0: the system default
  int64_t max_lease_ttl = 0;
  boost::json::object options;
  bool local = false;
  bool seal_wrap = false;

  boost::json::object ToJson() const;  // Vault's sys/mounts layout
  boost::json::object ToStorage() const;
  static absl::StatusOr<MountEntry> FromStorage(const boost::json::object& o);
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::StatusOr<Response> Handle(Request& req) = 0;
  // Whether the target of a write exists, so the core can ask for "create" rather than
  // "update" capability (Vault's existence check). nullopt: the backend does not tell.
  virtual absl::StatusOr<std::optional<bool>> Exists(Request& req) { return std::optional<bool>(); }
  // Paths (relative to the mount) callable without a token, such as an auth method's login.
  virtual bool Unauthenticated(std::string_view path) const { return false; }
};

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const MountEntry& entry)>;

}  // namespace coffer::core
