// HookStorage: wraps a Storage and runs a test's callback right after one chosen Get has read
// the wrapped storage, before the caller sees the value. Tests use it to put another operation
// exactly inside a reader's window (read storage ... fill a cache), which a thread race hits
// only rarely. Thread-safe if the wrapped storage is; the hook runs on the reading thread, with
// no lock of this class held.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class HookStorage final : public Storage {
 public:
  explicit HookStorage(Storage* under) : under_(under) {}

  // Runs `hook` once, after the next Get of `key` read the wrapped storage.
  void AfterNextGet(std::string key, std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    key_ = std::move(key);
    hook_ = std::move(hook);
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    auto out = under_->Get(key);
    std::function<void()> hook;
    {
      MutexLock l(&mu_);
      if (hook_ && key == key_) hook.swap(hook_);
    }
    if (hook) hook();
    return out;
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    return under_->Put(key, value);
  }
  absl::Status Delete(std::string_view key) override { return under_->Delete(key); }
  absl::Status Write(std::vector<WriteOp> ops) override { return under_->Write(std::move(ops)); }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return under_->List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    return under_->DeletePrefix(prefix);
  }
  std::string_view Type() const override { return under_->Type(); }

 private:
  Storage* const under_;
  Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  std::function<void()> hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::storage
