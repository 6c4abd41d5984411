// The policy store's caches against writes that land while a read is under way, and a
// many-thread run for ThreadSanitizer.
#include "core/policy_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "storage/hook_storage.h"
#include "storage/memory_storage.h"

namespace coffer::core {
namespace {

constexpr char kReadA[] = R"(path "a/*" { capabilities = ["read"] })";
constexpr char kReadB[] = R"(path "b/*" { capabilities = ["read"] })";

class PolicyStoreTest : public ::testing::Test {
 protected:
  bool Reads(std::string_view policy, std::string_view path) {
    auto acl = policies_.AclFor({std::string(policy)});
    EXPECT_TRUE(acl.ok()) << acl.status();
    return acl.ok() && (*acl)->Allows(path, Operation::kRead, false);
  }

  storage::MemoryStorage mem_;
  storage::HookStorage hooked_{&mem_};
  PolicyStore policies_{&hooked_};
};

// A Get that read the old text before a Put finished used to cache it afterwards, so the
// server went on enforcing the old policy (until the next change or a restart).
TEST_F(PolicyStoreTest, PutWhileAGetReadsIsNotUndoneByTheCache) {
  ASSERT_TRUE(policies_.Put("p", kReadA).ok());
  policies_.Clear();  // as after an unseal: nothing cached
  hooked_.AfterNextGet("sys/policy/p", [&] { ASSERT_TRUE(policies_.Put("p", kReadB).ok()); });
  ASSERT_TRUE(policies_.Get("p").ok());
  auto now = policies_.Get("p");
  ASSERT_TRUE(now.ok() && *now);
  EXPECT_EQ((*now)->raw, kReadB);
  EXPECT_TRUE(Reads("p", "b/x"));
  EXPECT_FALSE(Reads("p", "a/x"));
}

// The same window with a Delete: the deleted policy must not come back.
TEST_F(PolicyStoreTest, DeleteWhileAGetReadsIsNotUndoneByTheCache) {
  ASSERT_TRUE(policies_.Put("p", kReadA).ok());
  policies_.Clear();
  hooked_.AfterNextGet("sys/policy/p", [&] { ASSERT_TRUE(policies_.Delete("p").ok()); });
  ASSERT_TRUE(policies_.Get("p").ok());
  auto now = policies_.Get("p");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, nullptr);
  EXPECT_FALSE(Reads("p", "a/x"));
}

// Writers and readers at once; under ThreadSanitizer this checks the locking, and afterwards
// the cache agrees with what the last write stored.
TEST_F(PolicyStoreTest, ManyThreadsAtOnce) {
  ASSERT_TRUE(policies_.Put("p", kReadA).ok());
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 50; ++i) {
        if (w == 0 && i % 5 == 0) {
          ASSERT_TRUE(policies_.Put("p", i % 10 == 0 ? kReadB : kReadA).ok());
        } else if (w == 1 && i % 10 == 0) {
          policies_.Clear();
        } else {
          (void)policies_.AclFor({"p", "default"});
        }
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  // The last write (i = 45) stored kReadA.
  auto now = policies_.Get("p");
  ASSERT_TRUE(now.ok() && *now);
  EXPECT_EQ((*now)->raw, kReadA);
  EXPECT_TRUE(Reads("p", "a/x"));
  EXPECT_FALSE(Reads("p", "b/x"));
}

}  // namespace
}  // namespace coffer::core
