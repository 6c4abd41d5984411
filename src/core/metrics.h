// Request metrics: counts per mount, operation and status code, and a latency histogram per
// mount and operation, rendered in Prometheus text format or JSON. Thread-safe.
#pragma once

#include <array>
#include <map>
#include <string>
#include <tuple>

#include "absl/synchronization/mutex.h"
#include "boost/json/object.hpp"

namespace coffer::core {

class Metrics {
 public:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5};
  void Record(std::string_view mount, std::string_view op, int status, double seconds);
  std::string Prometheus() const;
  boost::json::object Json() const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, Histogram> latency_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::core
