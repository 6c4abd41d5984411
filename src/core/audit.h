// Audit broker and devices, as Vault's audit log.
//
// Every authenticated request is recorded twice, as one JSON line each: a "request" entry
// before the engine runs and a "response" entry after. String values (in request data,
// response data and auth, and the client token) are written as "hmac-sha256:<hex>" keyed by a
// per-device salt kept in the barrier, so the log proves what happened without holding a
// secret; log_raw = true turns that off. Fail closed: if devices are enabled and none of them
// can record a request entry, the request is refused (500) and never executed.
//
// A device writes each entry whole or not at all: a write that fails part-way (ENOSPC, EFBIG,
// EIO) is cut back off the file, so the log never holds a torn line. A device that fails (a
// write, or opening its file at load or on SIGHUP) is reported once at error level in the log
// and by the metrics coffer_audit_device_failed / coffer_audit_write_failures_total, and once at
// info (warn if it missed entries) when it works again. A file that could not be opened is
// opened again by the next write once a backoff has passed (1 s, doubling up to 60 s, on the
// broker's clock), so a fixed directory needs no second SIGHUP.
//
// The table of devices lives at `core/audit` through the barrier. All methods are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "boost/json/object.hpp"
#include "core/metrics.h"
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

// Thread-safe.
class AuditDevice {
 public:
  virtual ~AuditDevice() = default;
  // Appends `line` and a newline, whole or not at all.
  virtual absl::Status Write(std::string_view line) = 0;
  // Opens the file again now (after log rotation). On failure the device holds no file, and
  // Write fails until a later Write (after the backoff) or Reopen opens it.
  virtual absl::Status Reopen() = 0;
};

// Appends lines to a file (or stdout); the file is created with `mode`. Fails if the file cannot
// be opened. `clock` times the backoff between attempts to reopen; it must outlive the device.
absl::StatusOr<std::unique_ptr<AuditDevice>> OpenFileDevice(const AuditOptions& o,
                                                            const Clock* clock);

class AuditBroker {
 public:
  // `metrics` (may be null) receives each device's health; it and `clock` must outlive the broker.
  AuditBroker(storage::Storage* barrier, const Clock* clock, Metrics* metrics = nullptr)
      : barrier_(barrier), clock_(clock), metrics_(metrics) {}

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
    std::unique_ptr<AuditDevice> sink;  // never null once the device is in devices_
    // Serialises the writes to `sink` (requests hold only a shared mu_) and the health below.
    Mutex mu;
    bool failed ABSL_GUARDED_BY(mu) = false;  // the last write or open failed
    uint64_t missed ABSL_GUARDED_BY(mu) = 0;  // entries not written since it failed
  };
  absl::Status Persist() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Broadcast(const std::function<std::string(const Device&)>& render)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records the outcome of a write (`write`) or an open of `d`'s file: logs and metrics on a
  // change between working and failing, and counts failed writes.
  void Note(Device& d, const absl::Status& st, bool write) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d.mu);
  void Forget(const Device& d);  // the device is gone: drop its metrics

  storage::Storage* const barrier_;
  const Clock* const clock_;
  Metrics* const metrics_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<Device>> devices_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::core
