// LatencyHistogram: a histogram of durations with fixed bucket bounds, for metrics. Observe()
// takes no lock: it adds to one bucket, the count and the sum with relaxed atomics, so a reader
// may see an observation in the count a moment before it shows in the sum. Read() returns the
// cumulative counts Prometheus' text format wants. Thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>

namespace coffer {

class LatencyHistogram {
 public:
  // Upper bounds in seconds: from 50 us (a cached read) to 2.5 s (a stalled fsync).
  static constexpr std::array<double, 14> kBounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5};

  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    if (i < kBounds.size()) buckets_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(seconds > 0 ? static_cast<uint64_t>(seconds * 1e9) : 0,
                      std::memory_order_relaxed);
  }

  struct Snapshot {
    std::array<uint64_t, kBounds.size()> cumulative{};  // observations <= kBounds[i]
    uint64_t count = 0;                                 // every observation (the +Inf bucket)
    double sum = 0;                                     // seconds
  };
  Snapshot Read() const {
    Snapshot s;
    uint64_t running = 0;
    for (size_t i = 0; i < kBounds.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative[i] = running;
    }
    // Read after the buckets, so the +Inf bucket is never below the last finite one.
    s.count = std::max(running, count_.load(std::memory_order_relaxed));
    s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size()> buckets_{};  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace coffer
