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
    if (c == '\n') { out += "\\n"; continue; }
    out.push_back(c);
  }
  return out;
}
}  // namespace

void Metrics::Record(std::string_view mount, std::string_view op, int status, double seconds) {
  absl::MutexLock l(&mu_);
  ++counts_[{std::string(mount), std::string(op), status}];
  auto& h = latency_[{std::string(mount), std::string(op)}];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Prometheus() const {
  absl::ReaderMutexLock l(&mu_);
  std::string out =
      "# HELP coffer_requests_total Requests handled, by mount, operation and HTTP status.\n"
      "# TYPE coffer_requests_total counter\n";
  for (const auto& [k, n] : counts_) {
    const auto& [mount, op, code] = k;
    out += Cat("coffer_requests_total{mount=\"", Escape(mount), "\",operation=\"", op,
               "\",code=\"", code, "\"} ", n, "\n");
  }
  out +=
      "# HELP coffer_request_duration_seconds Request latency, by mount and operation.\n"
      "# TYPE coffer_request_duration_seconds histogram\n";
  for (const auto& [k, h] : latency_) {
    std::string labels = Cat("mount=\"", Escape(k.first), "\",operation=\"", k.second, "\"");
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"",
                 absl::StrFormat("%g", kBuckets[i]), "\"} ", h.buckets[i], "\n");
    out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"+Inf\"} ", h.count, "\n");
    out += Cat("coffer_request_duration_seconds_sum{", labels, "} ", absl::StrFormat("%.6f", h.sum), "\n");
    out += Cat("coffer_request_duration_seconds_count{", labels, "} ", h.count, "\n");
  }
  return out;
}

boost::json::object Metrics::Json() const {
  absl::ReaderMutexLock l(&mu_);
  boost::json::array counters, samples;
  for (const auto& [k, n] : counts_) {
    const auto& [mount, op, code] = k;
    counters.push_back(boost::json::object{
        {"Name", "coffer.requests"},
        {"Count", n},
        {"Labels", boost::json::object{{"mount", mount}, {"operation", op}, {"code", std::to_string(code)}}}});
  }
  for (const auto& [k, h] : latency_)
    samples.push_back(boost::json::object{{"Name", "coffer.request.duration"},
                                          {"Count", h.count},
                                          {"Sum", h.sum},
                                          {"Mean", h.count ? h.sum / h.count : 0.0},
                                          {"Labels", boost::json::object{{"mount", k.first}, {"operation", k.second}}}});
  return boost::json::object{{"Counters", counters}, {"Samples", samples}, {"Gauges", boost::json::array{}}};
}

}  // namespace coffer::core
