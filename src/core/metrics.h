// Request metrics: counts per mount, operation and status code, and a latency histogram per
// mount and operation; and the health of each audit device (set by the AuditBroker). Rendered in
// Prometheus text format or JSON. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "boost/json/object.hpp"
#include "util/mutex.h"

namespace coffer::core {

class Metrics {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5};
  void Record(std::string_view mount, std::string_view op, int status, double seconds)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::string Prometheus() const ABSL_LOCKS_EXCLUDED(mu_);
  boost::json::object Json() const ABSL_LOCKS_EXCLUDED(mu_);

  // Audit devices, by path ("file/"): coffer_audit_device_failed is 1 while the device's last
  // write or open failed, coffer_audit_write_failures_total counts the entries it could not
  // record. SetAuditDeviceFailed also creates the series of a new device (at 0 failures).
  void SetAuditDeviceFailed(std::string_view path, bool failed) ABSL_LOCKS_EXCLUDED(mu_);
  void AddAuditWriteFailure(std::string_view path) ABSL_LOCKS_EXCLUDED(mu_);
  void RemoveAuditDevice(std::string_view path) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // One series per (mount, operation): atomics, so recording takes only a shared lock once the
  // series exists.
  struct Series {
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
    Mutex codes_mu;
    std::map<int, uint64_t> codes ABSL_GUARDED_BY(codes_mu);
  };
  // Lock order: mu_, then a series' codes_mu.
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Series>, std::less<>> series_
      ABSL_GUARDED_BY(mu_);
  // Changed only when a device fails or recovers, so under mu_ like a new request series.
  struct AuditSeries {
    bool failed = false;
    uint64_t write_failures = 0;
  };
  std::map<std::string, AuditSeries, std::less<>> audit_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::core
