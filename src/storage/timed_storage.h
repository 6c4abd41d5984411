// TimedStorage: wraps a Storage and times every call by operation (get, put, delete, write,
// list, delete_prefix), successful or not, for the coffer_storage_operation_seconds histogram.
// The core wraps its physical storage in one, under the barrier, so the times are those of the
// backend itself (SQLite and its fsyncs). Costs two clock reads and three relaxed atomic adds per
// call. Thread-safe if the wrapped storage is.
#pragma once

#include <array>
#include <chrono>
#include <string_view>
#include <utility>

#include "storage/storage.h"
#include "util/latency_histogram.h"

namespace coffer::storage {

class TimedStorage final : public Storage {
 public:
  enum Op { kGet, kPut, kDelete, kWrite, kList, kDeletePrefix, kNumOps };
  static constexpr std::array<std::string_view, kNumOps> kOpNames = {
      "get", "put", "delete", "write", "list", "delete_prefix"};

  // `under` must outlive this.
  explicit TimedStorage(Storage* under) : under_(under) {}

  const LatencyHistogram& histogram(Op op) const { return histograms_[op]; }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    return Timed(kGet, [&] { return under_->Get(key); });
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    return Timed(kPut, [&] { return under_->Put(key, value); });
  }
  absl::Status Delete(std::string_view key) override {
    return Timed(kDelete, [&] { return under_->Delete(key); });
  }
  absl::Status Write(std::vector<WriteOp> ops) override {
    return Timed(kWrite, [&] { return under_->Write(std::move(ops)); });
  }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return Timed(kList, [&] { return under_->List(prefix, after, limit); });
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    return Timed(kDeletePrefix, [&] { return under_->DeletePrefix(prefix); });
  }
  std::string_view Type() const override { return under_->Type(); }
  // Timed from the call to the completion, as Write is.
  void WriteAsync(std::vector<WriteOp> ops, WriteDone done) override {
    const auto start = std::chrono::steady_clock::now();
    under_->WriteAsync(std::move(ops), [this, start, done = std::move(done)](absl::Status st) {
      histograms_[kWrite].Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      done(std::move(st));
    });
  }
  bool WritesAsync() const override { return under_->WritesAsync(); }

 private:
  template <typename Fn>
  auto Timed(Op op, Fn&& fn) -> decltype(fn()) {
    const auto start = std::chrono::steady_clock::now();
    auto result = fn();
    histograms_[op].Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return result;
  }

  Storage* const under_;
  std::array<LatencyHistogram, kNumOps> histograms_;
};

}  // namespace coffer::storage
