#include "core/watch.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace coffer::core {
namespace {

TEST(WatchHub, WakesAWaiterOnAWriteToItsPathOnly) {
  WatchHub hub;
  int woken = 0;
  const uint64_t gen = hub.Generation("kv/data/a");
  const uint64_t id = hub.Subscribe("kv/data/a", gen, [&] { ++woken; });
  EXPECT_NE(id, 0u);
  hub.Notify("kv/data/b");
  EXPECT_EQ(woken, 0);
  EXPECT_EQ(hub.Waiting(), 1u);
  hub.Notify("kv/data/a");
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(hub.Waiting(), 0u);
  hub.Notify("kv/data/a");  // once only
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(hub.Cancel(id));
}

TEST(WatchHub, AWriteBetweenTheReadAndTheSubscriptionIsNotMissed) {
  WatchHub hub;
  int woken = 0;
  const uint64_t gen = hub.Generation("kv/data/a");
  hub.Notify("kv/data/a");  // the write lands after the engine read, before the subscription
  EXPECT_EQ(hub.Subscribe("kv/data/a", gen, [&] { ++woken; }), 0u);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(hub.Waiting(), 0u);

  // The same with another waiter already tracking the path.
  const uint64_t g1 = hub.Generation("kv/data/a");
  hub.Subscribe("kv/data/a", g1, [&] { ++woken; });
  const uint64_t g2 = hub.Generation("kv/data/a");
  EXPECT_EQ(g1, g2);
  hub.Notify("kv/data/a");
  EXPECT_EQ(woken, 2);
  EXPECT_EQ(hub.Subscribe("kv/data/a", g2, [&] { ++woken; }), 0u);
  EXPECT_EQ(woken, 3);
}

TEST(WatchHub, CancelForgetsAndClearDropsWithoutWaking) {
  WatchHub hub;
  int woken = 0;
  const uint64_t a = hub.Subscribe("p", hub.Generation("p"), [&] { ++woken; });
  const uint64_t b = hub.Subscribe("p", hub.Generation("p"), [&] { ++woken; });
  EXPECT_TRUE(hub.Cancel(a));
  EXPECT_FALSE(hub.Cancel(a));
  hub.Notify("p");
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(hub.Cancel(b));
  hub.Subscribe("q", hub.Generation("q"), [&] { ++woken; });
  hub.Clear();
  EXPECT_EQ(hub.Waiting(), 0u);
  hub.Notify("q");
  EXPECT_EQ(woken, 1);
}

// Writers and subscribers on several threads: every subscriber whose generation predates a
// write to its path is woken, exactly once.
TEST(WatchHub, EveryWaiterIsWokenUnderConcurrentWrites) {
  WatchHub hub;
  constexpr int kWaiters = 2000;
  std::atomic<int> woken{0};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!done.load()) hub.Notify("doc");
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&] {
      for (int i = 0; i < kWaiters / 4; ++i) {
        const uint64_t g = hub.Generation("doc");
        hub.Subscribe("doc", g, [&] { woken.fetch_add(1); });
      }
    });
  for (auto& r : readers) r.join();
  // The writer is still running: the last subscribers are woken by its next writes.
  while (woken.load() < kWaiters) std::this_thread::yield();
  done.store(true);
  writer.join();
  EXPECT_EQ(woken.load(), kWaiters);
  EXPECT_EQ(hub.Waiting(), 0u);
}

// One write racing one subscription, many times: once both are over the waiter has been woken,
// whatever the interleaving (a lost wake would leave it waiting).
TEST(WatchHub, AWriteRacingTheFirstSubscriptionIsNeverLost) {
  WatchHub hub;
  for (int i = 0; i < 3000; ++i) {
    std::atomic<int> woken{0};
    const std::string path = "kv/data/k" + std::to_string(i % 7);
    const uint64_t gen = hub.Generation(path);
    std::thread writer([&] { hub.Notify(path); });
    hub.Subscribe(path, gen, [&] { woken.fetch_add(1); });
    writer.join();
    ASSERT_EQ(woken.load(), 1) << "iteration " << i;
    ASSERT_EQ(hub.Waiting(), 0u);
  }
}

TEST(WatchHub, WakeAllWakesEveryWaiter) {
  WatchHub hub;
  int woken = 0;
  hub.Subscribe("a", hub.Generation("a"), [&] { ++woken; });
  hub.Subscribe("b", hub.Generation("b"), [&] { ++woken; });
  hub.WakeAll();
  EXPECT_EQ(woken, 2);
  EXPECT_EQ(hub.Waiting(), 0u);
  hub.Notify("a");
  EXPECT_EQ(woken, 2);
}

}  // namespace
}  // namespace coffer::core
