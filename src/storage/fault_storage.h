// FaultStorage: wraps a Storage and fails chosen writes, for tests of what happens when the disk
// says no (LevelDB's ErrorEnv). Thread-safe if the wrapped storage is.
#pragma once

#include <atomic>

#include "storage/storage.h"

namespace coffer::storage {

class FaultStorage final : public Storage {
 public:
  explicit FaultStorage(Storage* under) : under_(under) {}

  // The next `n` writes (Put, Delete, Write, DeletePrefix) after `skip` more succeed... fail.
  void FailWritesAfter(int skip, int n = 1) {
    skip_ = skip;
    fail_ = n;
  }
  int failed() const { return failed_; }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    return under_->Get(key);
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under_->Put(key, value);
  }
  absl::Status Delete(std::string_view key) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under_->Delete(key);
  }
  absl::Status Write(std::vector<WriteOp> ops) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under_->Write(std::move(ops));
  }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return under_->List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under_->DeletePrefix(prefix);
  }
  std::string_view Type() const override { return under_->Type(); }

 private:
  absl::Status Inject() {
    if (fail_ <= 0) return absl::OkStatus();
    if (skip_ > 0) {
      --skip_;
      return absl::OkStatus();
    }
    --fail_;
    ++failed_;
    return absl::UnavailableError("injected storage failure");
  }
  Storage* const under_;
  std::atomic<int> skip_{0}, fail_{0}, failed_{0};
};

}  // namespace coffer::storage
