// Request metrics: counts per mount, operation and status code, and a latency histogram per
// mount and operation; and the health of each audit device (set by the AuditBroker). Rendered in
// Prometheus text format or JSON (Vault's shape: Counters, Samples, Gauges), together with what
// is computed when sys/metrics is read (a Scrape: seal and HA state, tokens by policy, storage
// latencies, what each backend reports). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/object.hpp"
#include "util/latency_histogram.h"
#include "util/mutex.h"

namespace coffer::core {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A gauge computed when sys/metrics is read. `name` is dotted, as in Vault's JSON metrics
// ("coffer.core.unsealed"); its Prometheus name has underscores for the dots
// (coffer_core_unsealed). Samples of one name should share their label names.
struct MetricSample {
  std::string name;
  std::string help;  // one line; the first sample of a name gives it
  MetricLabels labels;
  double value = 0;
};

// A histogram read when sys/metrics is read (the storage latencies).
struct HistogramSample {
  std::string prometheus_name;  // "coffer_storage_operation_seconds"
  std::string json_name;        // "coffer.storage.operation"
  std::string help;
  MetricLabels labels;
  LatencyHistogram::Snapshot snapshot;
};

// What one read of sys/metrics adds to the recorded metrics.
struct Scrape {
  std::vector<MetricSample> gauges;
  std::vector<HistogramSample> histograms;
};

// A Prometheus label value as the text format writes it: \\, \" and \n escaped.
std::string EscapeLabelValue(std::string_view v);

class Metrics {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5};
  void Record(std::string_view mount, std::string_view op, int status, double seconds)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The recorded metrics followed by `extra`; each metric family (HELP, TYPE, samples) once.
  std::string Prometheus(const Scrape& extra = {}) const ABSL_LOCKS_EXCLUDED(mu_);
  boost::json::object Json(const Scrape& extra = {}) const ABSL_LOCKS_EXCLUDED(mu_);

  // Vault's usage gauges (high-cardinality data such as token counts, telemetry's
  // usage_gauge_period): the cached samples while they are younger than `period` seconds at
  // `now`, else what `compute` returns, cached. One computation at a time: a concurrent read
  // waits for it. A failed computation returns its error and keeps nothing.
  absl::StatusOr<std::vector<MetricSample>> UsageGauges(
      int64_t now, int64_t period,
      const std::function<absl::StatusOr<std::vector<MetricSample>>()>& compute)
      ABSL_LOCKS_EXCLUDED(usage_mu_);

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

  Mutex usage_mu_;
  bool usage_valid_ ABSL_GUARDED_BY(usage_mu_) = false;
  int64_t usage_at_ ABSL_GUARDED_BY(usage_mu_) = 0;
  std::vector<MetricSample> usage_ ABSL_GUARDED_BY(usage_mu_);
};

}  // namespace coffer::core
