// Long polls: a read may be parked until its path is written (a Coffer extension; today KV
// version 2's data/<key>?wait=30s&after_version=N, which the node agents use to learn of a CA
// rotation with one open request each instead of polling).
//
// The core takes a path's generation before the engine reads and notifies after every successful
// write to that exact path; a waiter subscribing with a generation that is no longer current is
// woken at once, so a write between the engine's read and the subscription is never missed.
// Only paths someone waits on have an entry (removed when written or when the last waiter
// leaves); an untracked path's generation is its hash bucket's write count. A write costs one
// atomic increment, and the lock only while someone waits.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/mutex.h"

namespace coffer::core {

class WatchHub {
 public:
  // The path's generation now.
  uint64_t Generation(const std::string& path);
  // Calls `wake` once when `path` is written after generation `gen` (from the writer's thread,
  // or at once from this one when it already was). Returns an id for Cancel.
  uint64_t Subscribe(const std::string& path, uint64_t gen, std::function<void()> wake);
  // Forgets a waiter that has not been woken; false when it was (or never existed).
  bool Cancel(uint64_t id);
  // A successful write to `path`.
  void Notify(const std::string& path);
  // Wakes every waiter (the server seals or steps down: the re-run answers 503 or 307).
  void WakeAll();
  // Drops every waiter without waking it (server shutdown).
  void Clear();
  size_t Waiting() const;

 private:
  struct Waiter {
    uint64_t id;
    std::function<void()> wake;
  };
  struct Entry {
    uint64_t gen = 0;
    std::vector<Waiter> waiters;
  };
  static constexpr size_t kBuckets = 64;
  static size_t Bucket(const std::string& path);
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> paths_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::string> ids_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::atomic<uint64_t> writes_[kBuckets] = {};  // Notify count per bucket of paths
  std::atomic<size_t> tracked_{0};               // waiters (taken before they are listed)
};

}  // namespace coffer::core
