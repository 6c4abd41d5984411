// FaultStorage: wraps a Storage and fails chosen writes, for tests of what happens when the disk
// says no (LevelDB's ErrorEnv). Thread-safe if the wrapped storage is.
#pragma once

#include "storage/forwarding_storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class FaultStorage final : public ForwardingStorage {
 public:
  explicit FaultStorage(Storage* under) : ForwardingStorage(under) {}

  // The next `n` writes (Put, Delete, Write, DeletePrefix) after `skip` more succeed... fail.
  void FailWritesAfter(int skip, int n = 1) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    skip_ = skip;
    fail_ = n;
  }
  int failed() const ABSL_LOCKS_EXCLUDED(mu_) {
    ReaderMutexLock l(&mu_);
    return failed_;
  }

  absl::Status Put(std::string_view key, std::string_view value) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under()->Put(key, value);
  }
  absl::Status Delete(std::string_view key) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under()->Delete(key);
  }
  absl::Status Write(std::vector<WriteOp> ops) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under()->Write(std::move(ops));
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    if (auto st = Inject(); !st.ok()) return st;
    return under()->DeletePrefix(prefix);
  }

 private:
  // One decision per write under mu_, so concurrent writers never share a skip or a failure
  // (separate atomics let two writers both take the last one).
  absl::Status Inject() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    if (fail_ <= 0) return absl::OkStatus();
    if (skip_ > 0) {
      --skip_;
      return absl::OkStatus();
    }
    --fail_;
    ++failed_;
    return absl::UnavailableError("injected storage failure");
  }
  mutable Mutex mu_;
  int skip_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coffer::storage
