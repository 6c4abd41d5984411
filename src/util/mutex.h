// Mutexes annotated for clang's -Wthread-safety, over POSIX reader/writer locks, so that
// ThreadSanitizer sees them too (Debian's libabsl is not built with TSan, which then reports
// false races under absl::Mutex; see CONVENTIONS.md). Use with ABSL_GUARDED_BY on the members
// they protect:
//
//   mutable Mutex mu_;
//   int n_ ABSL_GUARDED_BY(mu_) = 0;
//   void Add() { MutexLock l(&mu_); ++n_; }
//
// Writers go first: once a writer waits, new readers wait behind it, so a steady stream of
// readers (requests under a shared lock) cannot starve it (sealing, a mount table change), as
// with absl::Mutex. std::shared_mutex cannot be used for this: it takes glibc's default
// rwlock, which lets readers in ahead of waiting writers for as long as readers keep coming.
// The price is the same as absl::Mutex's: a thread must not take a reader lock it already
// holds (it would wait behind a writer that waits for it); -Wthread-safety reports that.
// A failed lock operation (EDEADLK: relocking a lock this thread holds exclusively) aborts.
#pragma once

#include <pthread.h>

#include <cstdio>
#include <cstdlib>

#include "absl/base/thread_annotations.h"

namespace coffer {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    Check(pthread_rwlock_init(&mu_, &attr), "init");
    pthread_rwlockattr_destroy(&attr);
  }
  ~Mutex() { pthread_rwlock_destroy(&mu_); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { Check(pthread_rwlock_wrlock(&mu_), "lock"); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { Check(pthread_rwlock_unlock(&mu_), "unlock"); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    return pthread_rwlock_trywrlock(&mu_) == 0;
  }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() {
    Check(pthread_rwlock_rdlock(&mu_), "reader lock");
  }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { Check(pthread_rwlock_unlock(&mu_), "unlock"); }
  // Fails while a writer holds the lock or waits for it.
  bool ReaderTryLock() ABSL_SHARED_TRYLOCK_FUNCTION(true) {
    return pthread_rwlock_tryrdlock(&mu_) == 0;
  }

  // The exclusive lock as a BasicLockable (lock()/unlock()), for std::condition_variable_any:
  // with a MutexLock held, `cv.wait(mu_.native())` releases the lock while it waits and takes
  // it back before returning, so the MutexLock still holds it afterwards.
  class Native {
   public:
    explicit Native(pthread_rwlock_t* mu) : mu_(mu) {}
    void lock() { Check(pthread_rwlock_wrlock(mu_), "lock"); }
    void unlock() { Check(pthread_rwlock_unlock(mu_), "unlock"); }

   private:
    pthread_rwlock_t* mu_;
  };
  Native& native() { return native_; }

 private:
  static void Check(int rc, const char* what) {
    if (rc == 0) return;
    std::fprintf(stderr, "coffer::Mutex: %s failed with error %d\n", what, rc);
    std::abort();
  }

  pthread_rwlock_t mu_;
  Native native_{&mu_};
};

// Exclusive lock for a scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

// Shared (reader) lock for a scope.
class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace coffer
