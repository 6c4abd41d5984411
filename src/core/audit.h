// Audit broker and devices, as Vault's audit log.
//
// Every authenticated request is recorded twice, as one JSON line each: a "request" entry
// before the engine runs and a "response" entry after. String values (in request data,
// response data and auth, and the client token) are written as "hmac-sha256:<hex>" keyed by a
// per-device salt kept in the barrier, so the log proves what happened without holding a
// secret; log_raw = true turns that off. Fail closed: if devices are enabled and none of them
// can record a request entry, the request is refused (500) and never executed.
//
// The table of devices lives at `core/audit` through the barrier. All methods are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "boost/json/object.hpp"
#include "core/request.h"
#include "crypto/secret_bytes.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::core {

struct AuditOptions {
  std::string file_path;
  uint32_t mode = 0600;
  bool log_raw = false;
  bool hmac_accessor = true;
  std::string prefix;
  bool elide_list_responses = false;
};

class AuditDevice {
 public:
  virtual ~AuditDevice() = default;
  virtual absl::Status Write(std::string_view line) = 0;
  virtual absl::Status Reopen() = 0;
};

// Appends lines to a file (or stdout); the file is created with `mode`.
absl::StatusOr<std::unique_ptr<AuditDevice>> OpenFileDevice(const AuditOptions& o);

class AuditBroker {
 public:
  AuditBroker(storage::Storage* barrier, const Clock* clock) : barrier_(barrier), clock_(clock) {}

  absl::Status Load() ABSL_LOCKS_EXCLUDED(mu_);  // after unseal
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);         // on seal

  absl::Status Enable(std::string_view path, std::string_view type, std::string_view description,
                      const boost::json::object& options, bool local) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Disable(std::string_view path) ABSL_LOCKS_EXCLUDED(mu_);
  boost::json::object List() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> Hash(std::string_view path, std::string_view input)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Enabled() ABSL_LOCKS_EXCLUDED(mu_);

  // Records the request; an error means no device could (refuse the request).
  absl::Status LogRequest(const Request& req, const std::optional<TokenEntry>& token,
                          const absl::Status& error) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status LogResponse(const Request& req, const std::optional<TokenEntry>& token,
                           const absl::StatusOr<Response>& resp) ABSL_LOCKS_EXCLUDED(mu_);
  // Reopens every file (SIGHUP, after log rotation).
  absl::Status Reopen() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Device {
    std::string path, type, description;
    bool local = false;
    AuditOptions options;
    boost::json::object raw_options;
    crypto::SecretBytes salt;
    std::unique_ptr<AuditDevice> sink;
  };
  absl::Status Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Broadcast(const std::function<std::string(const Device&)>& render)
      ABSL_LOCKS_EXCLUDED(mu_);

  storage::Storage* const barrier_;
  const Clock* const clock_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<Device>> devices_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::core
