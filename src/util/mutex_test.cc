#include "util/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

namespace coffer {
namespace {

using std::chrono::milliseconds;

// The tests below take the lock as several readers from one thread, and by hand, which
// -Wthread-safety rightly refuses in real code; their bodies are not analysed.

void ReadersShareWritersExclude() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Mutex mu;
  mu.ReaderLock();
  EXPECT_TRUE(mu.ReaderTryLock());  // another reader gets in
  EXPECT_FALSE(mu.TryLock());       // a writer does not
  mu.ReaderUnlock();
  mu.ReaderUnlock();
  ASSERT_TRUE(mu.TryLock());
  EXPECT_FALSE(mu.ReaderTryLock());
  mu.Unlock();
}
TEST(Mutex, ReadersShareWritersExclude) { ReadersShareWritersExclude(); }

// Once a writer waits, new readers wait behind it: requests arriving all the time under a shared
// lock cannot starve sealing. (std::shared_mutex, glibc's default rwlock, let readers in ahead of
// it; a test of the core that seals under load took up to 30 s instead of milliseconds.)
void AWaitingWriterHoldsOffNewReaders() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Mutex mu;
  mu.ReaderLock();  // a request in flight
  std::atomic<bool> writer_in{false};
  std::thread writer([&] {
    MutexLock l(&mu);
    writer_in = true;
  });
  // Wait until the writer is queued: from then on a new reader is refused.
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {
    if (mu.ReaderTryLock()) {
      mu.ReaderUnlock();
      std::this_thread::sleep_for(milliseconds(1));
    } else {
      refused = true;
    }
  }
  EXPECT_TRUE(refused) << "new readers kept getting in ahead of a waiting writer";
  EXPECT_FALSE(writer_in.load());
  mu.ReaderUnlock();  // the request ends: the writer goes next
  writer.join();
  EXPECT_TRUE(writer_in.load());
  EXPECT_TRUE(mu.ReaderTryLock());
  mu.ReaderUnlock();
}
TEST(Mutex, AWaitingWriterHoldsOffNewReaders) { AWaitingWriterHoldsOffNewReaders(); }

void ConditionVariableWaitsOnNative() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Mutex mu;
  std::condition_variable_any cv;
  bool ready = false;  // guarded by mu (a local: no annotation)
  std::thread t([&] {
    MutexLock l(&mu);
    ready = true;
    cv.notify_all();
  });
  {
    MutexLock l(&mu);
    while (!ready) cv.wait(mu.native());
    EXPECT_TRUE(ready);
  }
  t.join();
  // The MutexLock released it: free again.
  ASSERT_TRUE(mu.TryLock());
  mu.Unlock();
}
TEST(Mutex, ConditionVariableWaitsOnNative) { ConditionVariableWaitsOnNative(); }

}  // namespace
}  // namespace coffer
