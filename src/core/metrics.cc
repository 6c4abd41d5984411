#include "core/metrics.h"

#include "absl/strings/str_format.h"
#include "boost/json.hpp"
#include "util/status.h"

namespace coffer::core {
namespace {
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}
}  // namespace

void Metrics::Record(std::string_view mount, std::string_view op, int status, double seconds) {
  Series* series = nullptr;
  {
    ReaderMutexLock l(&mu_);
    auto it = series_.find(std::make_pair(std::string(mount), std::string(op)));
    if (it != series_.end()) series = it->second.get();
  }
  if (!series) {
    MutexLock l(&mu_);
    auto& slot = series_[{std::string(mount), std::string(op)}];
    if (!slot) slot = std::make_unique<Series>();
    series = slot.get();
  }
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) series->buckets[i].fetch_add(1, std::memory_order_relaxed);
  series->count.fetch_add(1, std::memory_order_relaxed);
  series->sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  MutexLock l(&series->codes_mu);
  ++series->codes[status];
}

std::string Metrics::Prometheus() const {
  ReaderMutexLock l(&mu_);
  std::string out =
      "# HELP coffer_requests_total Requests handled, by mount, operation and HTTP status.\n"
      "# TYPE coffer_requests_total counter\n";
  for (const auto& [k, s] : series_) {
    MutexLock cl(&s->codes_mu);
    for (const auto& [code, n] : s->codes)
      out += Cat("coffer_requests_total{mount=\"", Escape(k.first), "\",operation=\"", k.second,
                 "\",code=\"", code, "\"} ", n, "\n");
  }
  out +=
      "# HELP coffer_request_duration_seconds Request latency, by mount and operation.\n"
      "# TYPE coffer_request_duration_seconds histogram\n";
  for (const auto& [k, s] : series_) {
    std::string labels = Cat("mount=\"", Escape(k.first), "\",operation=\"", k.second, "\"");
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"",
                 absl::StrFormat("%g", kBuckets[i]), "\"} ", s->buckets[i].load(), "\n");
    out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"+Inf\"} ", s->count.load(),
               "\n");
    out += Cat("coffer_request_duration_seconds_sum{", labels, "} ",
               absl::StrFormat("%.6f", static_cast<double>(s->sum_ns.load()) / 1e9), "\n");
    out += Cat("coffer_request_duration_seconds_count{", labels, "} ", s->count.load(), "\n");
  }
  out +=
      "# HELP coffer_audit_device_failed 1 while the audit device's last write or open failed, "
      "by device path.\n"
      "# TYPE coffer_audit_device_failed gauge\n";
  for (const auto& [path, a] : audit_)
    out += Cat("coffer_audit_device_failed{path=\"", Escape(path), "\"} ", a.failed ? 1 : 0, "\n");
  out +=
      "# HELP coffer_audit_write_failures_total Audit entries the device could not record, by "
      "device path.\n"
      "# TYPE coffer_audit_write_failures_total counter\n";
  for (const auto& [path, a] : audit_)
    out += Cat("coffer_audit_write_failures_total{path=\"", Escape(path), "\"} ", a.write_failures,
               "\n");
  return out;
}

boost::json::object Metrics::Json() const {
  ReaderMutexLock l(&mu_);
  boost::json::array counters, samples, gauges;
  for (const auto& [k, s] : series_) {
    MutexLock cl(&s->codes_mu);
    for (const auto& [code, n] : s->codes)
      counters.push_back(boost::json::object{
          {"Name", "coffer.requests"},
          {"Count", n},
          {"Labels",
           boost::json::object{
               {"mount", k.first}, {"operation", k.second}, {"code", std::to_string(code)}}}});
    double sum = static_cast<double>(s->sum_ns.load()) / 1e9;
    uint64_t count = s->count.load();
    samples.push_back(boost::json::object{
        {"Name", "coffer.request.duration"},
        {"Count", count},
        {"Sum", sum},
        {"Mean", count ? sum / static_cast<double>(count) : 0.0},
        {"Labels", boost::json::object{{"mount", k.first}, {"operation", k.second}}}});
  }
  for (const auto& [path, a] : audit_) {
    counters.push_back(boost::json::object{{"Name", "coffer.audit.write_failures"},
                                           {"Count", a.write_failures},
                                           {"Labels", boost::json::object{{"path", path}}}});
    gauges.push_back(boost::json::object{{"Name", "coffer.audit.device_failed"},
                                         {"Value", a.failed ? 1 : 0},
                                         {"Labels", boost::json::object{{"path", path}}}});
  }
  return boost::json::object{{"Counters", counters}, {"Samples", samples}, {"Gauges", gauges}};
}

void Metrics::SetAuditDeviceFailed(std::string_view path, bool failed) {
  MutexLock l(&mu_);
  audit_[std::string(path)].failed = failed;
}

void Metrics::AddAuditWriteFailure(std::string_view path) {
  MutexLock l(&mu_);
  ++audit_[std::string(path)].write_failures;
}

void Metrics::RemoveAuditDevice(std::string_view path) {
  MutexLock l(&mu_);
  if (auto it = audit_.find(path); it != audit_.end()) audit_.erase(it);
}

}  // namespace coffer::core
