// HookStorage: wraps a Storage and runs a test's callback right after one chosen Get has read
// the wrapped storage, before the caller sees the value. Tests use it to put another operation
// exactly inside a reader's window (read storage ... fill a cache), which a thread race hits
// only rarely. Thread-safe if the wrapped storage is; the hook runs on the reading thread, with
// no lock of this class held.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "storage/forwarding_storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class HookStorage final : public ForwardingStorage {
 public:
  explicit HookStorage(Storage* under) : ForwardingStorage(under) {}

  // Runs `hook` once, after the next Get of `key` read the wrapped storage.
  void AfterNextGet(std::string key, std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    key_ = std::move(key);
    hook_ = std::move(hook);
  }

  // Runs `hook` once, after the next List of `prefix` read the wrapped storage.
  void AfterNextList(std::string prefix, std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    list_prefix_ = std::move(prefix);
    list_hook_ = std::move(hook);
  }

  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix, std::string_view after,
                                                size_t limit) override ABSL_LOCKS_EXCLUDED(mu_) {
    auto out = under()->List(prefix, after, limit);
    std::function<void()> hook;
    {
      MutexLock l(&mu_);
      if (list_hook_ && prefix == list_prefix_) hook.swap(list_hook_);
    }
    if (hook) hook();
    return out;
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    auto out = under()->Get(key);
    std::function<void()> hook;
    {
      MutexLock l(&mu_);
      if (hook_ && key == key_) hook.swap(hook_);
    }
    if (hook) hook();
    return out;
  }

 private:
  Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  std::function<void()> hook_ ABSL_GUARDED_BY(mu_);
  std::string list_prefix_ ABSL_GUARDED_BY(mu_);
  std::function<void()> list_hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::storage
