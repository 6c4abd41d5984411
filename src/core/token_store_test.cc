// The token store's lookup cache against writes that land while a lookup reads storage, and a
// many-thread run for ThreadSanitizer.
#include "core/token_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "storage/hook_storage.h"
#include "storage/memory_storage.h"

namespace coffer::core {
namespace {

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tokens_.Setup().ok()); }
  CreatedToken NewToken(int64_t ttl, int64_t num_uses = 0) {
    TokenEntry e;
    e.policies = {"default"};
    e.ttl = ttl;
    e.num_uses = num_uses;
    auto c = tokens_.Create(std::move(e));
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }
  std::string IdKey(const CreatedToken& t) { return "sys/token/id/" + t.entry.id_hash; }

  storage::MemoryStorage mem_;
  storage::HookStorage hooked_{&mem_};
  FakeClock clock_;
  TokenStore tokens_{&hooked_, &clock_};
};

// The dev server's -dev-root-token-id: a root token whose token is the given ID, once.
TEST_F(TokenStoreTest, RootTokenWithAGivenId) {
  auto t = tokens_.CreateRootToken("myroot");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "myroot");
  auto found = tokens_.Lookup("myroot");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_TRUE((*found)->IsRoot());
  EXPECT_EQ(tokens_.CreateRootToken("myroot").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(tokens_.CreateRootToken("has space").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto random = tokens_.CreateRootToken();
  ASSERT_TRUE(random.ok());
  EXPECT_TRUE(random->starts_with("hvs."));
}

// A lookup that read the entry before a revocation finished used to put it into the cache
// after the revocation had dropped it: the revoked token then kept working.
TEST_F(TokenStoreTest, RevokeWhileALookupReadsIsNotUndoneByTheCache) {
  CreatedToken t = NewToken(3600);
  hooked_.AfterNextGet(IdKey(t), [&] { ASSERT_TRUE(tokens_.Revoke(t.entry.id_hash).ok()); });
  auto during = tokens_.Lookup(t.token);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_TRUE(during->has_value());  // it read the entry before the revocation
  auto after = tokens_.Lookup(t.token);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->has_value()) << "a revoked token is still served from the cache";
}

// The same window with a renewal: the old expiry must not come back.
TEST_F(TokenStoreTest, RenewWhileALookupReadsIsNotUndoneByTheCache) {
  CreatedToken t = NewToken(60);
  hooked_.AfterNextGet(IdKey(t),
                       [&] { ASSERT_TRUE(tokens_.Renew(t.entry.id_hash, 3600, 0, nullptr).ok()); });
  ASSERT_TRUE(tokens_.Lookup(t.token).ok());
  clock_.Advance(absl::Minutes(5));  // past the first expiry, well before the renewed one
  auto after = tokens_.Lookup(t.token);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->has_value()) << "the renewal was lost to an older cached copy";
}

// And with a use of a limited-use token: it must not get its use back.
TEST_F(TokenStoreTest, UseWhileALookupReadsIsNotUndoneByTheCache) {
  CreatedToken t = NewToken(3600, /*num_uses=*/2);
  hooked_.AfterNextGet(IdKey(t), [&] { ASSERT_TRUE(tokens_.Use(t.entry).ok()); });
  ASSERT_TRUE(tokens_.Lookup(t.token).ok());
  EXPECT_TRUE(tokens_.Use(t.entry).ok());  // the second and last use
  EXPECT_EQ(tokens_.Use(t.entry).code(), absl::StatusCode::kPermissionDenied);
  auto after = tokens_.Lookup(t.token);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->has_value());
}

// A child made by a token while that token is being revoked: it must not outlive its parent.
// The hook makes the child at the revocation's first read of the parent's entry.
TEST_F(TokenStoreTest, AChildMadeDuringItsParentsRevocationDoesNotSurviveIt) {
  CreatedToken parent = NewToken(3600);
  std::optional<CreatedToken> child;
  hooked_.AfterNextGet(IdKey(parent), [&] {
    TokenEntry e;
    e.policies = {"default"};
    e.ttl = 600;
    e.parent_hash = parent.entry.id_hash;
    auto c = tokens_.Create(std::move(e));
    if (c.ok()) child = *c;
  });
  ASSERT_TRUE(tokens_.Revoke(parent.entry.id_hash).ok());
  ASSERT_TRUE(child.has_value()) << "the hook did not run";
  auto found = tokens_.Lookup(child->token);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value()) << "the child outlived its revoked parent";
  EXPECT_FALSE(mem_.Get(IdKey(*child))->has_value());

  // And a child whose parent is already revoked is refused, and not stored.
  TokenEntry late;
  late.policies = {"default"};
  late.ttl = 600;
  late.parent_hash = parent.entry.id_hash;
  auto refused = tokens_.Create(std::move(late));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  auto left = mem_.List("sys/token/parent/", "", 10);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

// The narrower window: the child is written after the revocation listed the parent's children
// (and found none), before the parent is deleted. The parent was marked before the listing, so
// the child's Store sees the mark and revokes the child itself (once the revocation is done).
TEST_F(TokenStoreTest, AChildWrittenAfterTheListingIsRevokedByItsOwnCreate) {
  CreatedToken parent = NewToken(3600);
  const std::string kids = "sys/token/parent/" + parent.entry.id_hash + "/";
  std::thread maker;
  absl::Status made;
  hooked_.AfterNextList(kids, [&] {
    maker = std::thread([&] {
      TokenEntry e;
      e.policies = {"default"};
      e.ttl = 600;
      e.parent_hash = parent.entry.id_hash;
      made = tokens_.Create(std::move(e)).status();
    });
    // Let the revocation go on only once the child is written.
    for (int i = 0; i < 5000; ++i) {
      auto listed = mem_.List(kids);
      if (listed.ok() && !listed->empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "the child was never written";
  });
  ASSERT_TRUE(tokens_.Revoke(parent.entry.id_hash).ok());
  ASSERT_TRUE(maker.joinable()) << "the hook did not run";
  maker.join();
  EXPECT_EQ(made.code(), absl::StatusCode::kPermissionDenied) << made;
  auto left = mem_.List("sys/token/id/");
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << "a token outlived its revoked parent";
}

// Lookups, renewals, uses, revocations and tidies from several threads at once; run under
// ThreadSanitizer this checks the store's locking. Afterwards every revoked token is gone.
TEST_F(TokenStoreTest, ManyThreadsAtOnce) {
  constexpr int kTokens = 24;
  std::vector<CreatedToken> ts;
  ts.reserve(kTokens);
  for (int i = 0; i < kTokens; ++i) ts.push_back(NewToken(3600, i % 3 == 0 ? 1000 : 0));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load()) std::this_thread::yield();
      for (int round = 0; round < 30; ++round) {
        const CreatedToken& t = ts[(w * 7 + round) % kTokens];
        (void)tokens_.Lookup(t.token);
        if (round % 3 == 0) (void)tokens_.Renew(t.entry.id_hash, 600, 0, nullptr);
        if (t.entry.num_uses > 0) (void)tokens_.Use(t.entry);
        (void)tokens_.LookupByAccessor(t.entry.accessor);
      }
    });
  }
  threads.emplace_back([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < kTokens; i += 2) ASSERT_TRUE(tokens_.Revoke(ts[i].entry.id_hash).ok());
    (void)tokens_.Tidy();
  });
  go = true;
  for (auto& th : threads) th.join();
  for (int i = 0; i < kTokens; ++i) {
    auto found = tokens_.Lookup(ts[i].token);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->has_value(), i % 2 == 1) << "token " << i;
  }
}

}  // namespace
}  // namespace coffer::core
