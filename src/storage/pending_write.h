// PendingWrite: the durability of a write a request did not wait for (Storage::WriteAsync).
// The engine that deferred the write hands one to the core with its response; the HTTP layer
// answers when it completes, and turns the answer into the write's error if the write failed.
// A caller with no event loop waits on it. Thread-safe; Complete is called once.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class PendingWrite {
 public:
  // The write's result (from the store's committing thread). Runs the continuation, if one is
  // set, on this thread.
  void Complete(absl::Status st) ABSL_LOCKS_EXCLUDED(mu_) {
    std::function<void(absl::Status)> then;
    {
      MutexLock l(&mu_);
      done_ = true;
      status_ = st;
      then = std::move(then_);
    }
    cv_.notify_all();
    if (then) then(std::move(st));
  }

  // Runs `then` with the result once the write completes: now, on this thread, if it already
  // has. At most one continuation.
  void OnComplete(std::function<void(absl::Status)> then) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Status st;
    {
      MutexLock l(&mu_);
      if (!done_) {
        then_ = std::move(then);
        return;
      }
      st = status_;
    }
    then(std::move(st));
  }

  // Blocks until the write completes and returns its result.
  absl::Status Wait() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(&mu_);
    while (!done_) cv_.wait(mu_.native());
    return status_;
  }

 private:
  Mutex mu_;
  std::condition_variable_any cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::function<void(absl::Status)> then_ ABSL_GUARDED_BY(mu_);
};

// Starts `ops` on `s` (WriteAsync) and returns their PendingWrite.
inline std::shared_ptr<PendingWrite> StartWrite(Storage* s, std::vector<WriteOp> ops) {
  auto p = std::make_shared<PendingWrite>();
  s->WriteAsync(std::move(ops), [p](absl::Status st) { p->Complete(std::move(st)); });
  return p;
}

}  // namespace coffer::storage
