#include "storage/cache_storage.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "storage/forwarding_storage.h"
#include "storage/hook_storage.h"
#include "storage/memory_storage.h"
#include "storage/sqlite_storage.h"
#include "storage/storage_conformance.h"

namespace coffer::storage {
namespace {

// The whole storage contract holds with the cache over each embedded backend.
INSTANTIATE_TEST_SUITE_P(
    Cached, StorageConformance,
    ::testing::Values(Backend{"memory",
                              [](const fs::path&) -> std::unique_ptr<Storage> {
                                return std::make_unique<CacheStorage>(
                                    std::make_unique<MemoryStorage>());
                              }},
                      Backend{"sqlite",
                              [](const fs::path& d) -> std::unique_ptr<Storage> {
                                auto s = SqliteStorage::Open((d / "coffer.db").string());
                                if (!s.ok()) return nullptr;
                                return std::make_unique<CacheStorage>(std::move(*s));
                              }}),
    [](const auto& info) { return info.param.name; });

// Counts the reads that reach the backend.
class CountingStorage final : public ForwardingStorage {
 public:
  explicit CountingStorage(Storage* under) : ForwardingStorage(under) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    ++gets;
    return under()->Get(key);
  }
  std::atomic<int> gets{0};
};

std::string Value(CacheStorage& c, std::string_view key) {
  auto v = c.Get(key);
  EXPECT_TRUE(v.ok());
  return v.ok() && *v ? **v : "<absent>";
}

TEST(CacheStorage, ARepeatedReadIsAnsweredFromTheCache) {
  MemoryStorage mem;
  CountingStorage counting(&mem);
  CacheStorage cache(&counting);
  ASSERT_TRUE(cache.Put("a", "1").ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Value(cache, "a"), "1");
  EXPECT_EQ(counting.gets.load(), 1);
  EXPECT_EQ(cache.hits(), 4u);
  EXPECT_EQ(cache.misses(), 1u);
  // An absent key is remembered too, and a write makes it present at once.
  EXPECT_EQ(Value(cache, "missing"), "<absent>");
  EXPECT_EQ(Value(cache, "missing"), "<absent>");
  EXPECT_EQ(counting.gets.load(), 2);
  ASSERT_TRUE(cache.Put("missing", "now").ok());
  EXPECT_EQ(Value(cache, "missing"), "now");
}

TEST(CacheStorage, EveryKindOfWriteIsSeenByTheNextRead) {
  MemoryStorage mem;
  CacheStorage cache(&mem);
  ASSERT_TRUE(cache.Put("a/1", "x").ok());
  ASSERT_TRUE(cache.Put("a/2", "y").ok());
  ASSERT_TRUE(cache.Put("b", "z").ok());
  EXPECT_EQ(Value(cache, "a/1"), "x");
  EXPECT_EQ(Value(cache, "a/2"), "y");
  EXPECT_EQ(Value(cache, "b"), "z");
  ASSERT_TRUE(cache.Put("a/1", "x2").ok());
  EXPECT_EQ(Value(cache, "a/1"), "x2");
  ASSERT_TRUE(cache.Delete("b").ok());
  EXPECT_EQ(Value(cache, "b"), "<absent>");
  ASSERT_TRUE(
      cache.Write({{WriteOp::Kind::kPut, "b", "w"}, {WriteOp::Kind::kDelete, "a/1", ""}}).ok());
  EXPECT_EQ(Value(cache, "b"), "w");
  EXPECT_EQ(Value(cache, "a/1"), "<absent>");
  ASSERT_TRUE(cache.DeletePrefix("a/").ok());
  EXPECT_EQ(Value(cache, "a/2"), "<absent>");
  EXPECT_EQ(Value(cache, "b"), "w");
}

// The race a cache must not lose: a read takes the old value from the backend, a write lands
// and finishes, then the read would fill the cache with the old value. Every later read would
// see a value older than an acknowledged write.
TEST(CacheStorage, AReadOverlappingAWriteDoesNotCacheTheOlderValue) {
  MemoryStorage mem;
  HookStorage hook(&mem);
  CacheStorage cache(&hook);
  ASSERT_TRUE(cache.Put("k", "old").ok());
  hook.AfterNextGet("k", [&] { ASSERT_TRUE(cache.Put("k", "new").ok()); });
  EXPECT_EQ(Value(cache, "k"), "old");  // read before the write finished: fine to answer
  EXPECT_EQ(Value(cache, "k"), "new");  // but never cached over the write
  EXPECT_EQ(Value(cache, "k"), "new");

  // The same with a delete, a batch and a prefix delete, each on a key not cached yet.
  ASSERT_TRUE(cache.Put("d", "old").ok());
  hook.AfterNextGet("d", [&] { ASSERT_TRUE(cache.Delete("d").ok()); });
  EXPECT_EQ(Value(cache, "d"), "old");
  EXPECT_EQ(Value(cache, "d"), "<absent>");
  hook.AfterNextGet("w", [&] {
    ASSERT_TRUE(cache.Write({{WriteOp::Kind::kPut, "w", "batch"}}).ok());
  });
  EXPECT_EQ(Value(cache, "w"), "<absent>");
  EXPECT_EQ(Value(cache, "w"), "batch");
  ASSERT_TRUE(cache.Put("p/x", "old").ok());
  hook.AfterNextGet("p/x", [&] { ASSERT_TRUE(cache.DeletePrefix("p/").ok()); });
  EXPECT_EQ(Value(cache, "p/x"), "old");
  EXPECT_EQ(Value(cache, "p/x"), "<absent>");
}

// A store whose WriteAsync applies and answers only when told (a group commit still running).
class DeferringStorage final : public ForwardingStorage {
 public:
  explicit DeferringStorage(Storage* under) : ForwardingStorage(under) {}
  bool WritesAsync() const override { return true; }
  void WriteAsync(std::vector<WriteOp> ops, WriteDone done) override {
    held_.emplace_back(std::move(ops), std::move(done));
  }
  // Applies and answers the held writes, in order.
  void Commit() {
    for (auto& [ops, done] : held_) done(under()->Write(std::move(ops)));
    held_.clear();
  }

 private:
  std::vector<std::pair<std::vector<WriteOp>, WriteDone>> held_;
};

// A write in flight (WriteAsync, not yet answered) keeps its key out of the cache: a read
// meanwhile gets the older value from the store but does not cache it, and the next read after
// the write's answer sees the new value. With the keys released when WriteAsync returns, the
// older value would be cached and served after the write.
TEST(CacheStorage, AWriteInFlightKeepsItsKeyOutOfTheCache) {
  MemoryStorage mem;
  DeferringStorage deferring(&mem);
  CacheStorage cache(&deferring);
  EXPECT_TRUE(cache.WritesAsync());
  ASSERT_TRUE(cache.Put("k", "old").ok());
  EXPECT_EQ(Value(cache, "k"), "old");  // cached
  std::optional<absl::Status> answer;
  cache.WriteAsync({{WriteOp::Kind::kPut, "k", "new"}},
                   [&](absl::Status st) { answer = std::move(st); });
  EXPECT_FALSE(answer.has_value());
  EXPECT_EQ(Value(cache, "k"), "old");  // the store still has it; not cached again
  EXPECT_EQ(Value(cache, "k"), "old");
  deferring.Commit();
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(answer->ok());
  EXPECT_EQ(Value(cache, "k"), "new");
  EXPECT_EQ(Value(cache, "k"), "new");
}

// A token's revocation deletes its cubbyhole prefix: that must not empty the whole cache.
TEST(CacheStorage, APrefixDeleteDropsOnlyThatPrefix) {
  MemoryStorage mem;
  CountingStorage counting(&mem);
  CacheStorage cache(&counting);
  for (const char* k : {"a/1", "a/2/x", "ab", "b/1"}) {
    ASSERT_TRUE(cache.Put(k, k).ok());
    EXPECT_EQ(Value(cache, k), k);
  }
  const int before = counting.gets.load();
  ASSERT_TRUE(cache.DeletePrefix("a/").ok());
  EXPECT_EQ(Value(cache, "ab"), "ab");
  EXPECT_EQ(Value(cache, "b/1"), "b/1");
  EXPECT_EQ(counting.gets.load(), before) << "keys outside the prefix stay cached";
  EXPECT_EQ(Value(cache, "a/1"), "<absent>");
  EXPECT_EQ(Value(cache, "a/2/x"), "<absent>");
  EXPECT_EQ(cache.entries(), 4u);
}

TEST(CacheStorage, StaysWithinItsBounds) {
  MemoryStorage mem;
  CountingStorage counting(&mem);
  CacheStorage cache(&counting, /*max_entries=*/64);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(cache.Put("k" + std::to_string(i), "v").ok());
    EXPECT_EQ(Value(cache, "k" + std::to_string(i)), "v");
  }
  EXPECT_LE(cache.entries(), 64u);
  // A value over 64 KiB is read through every time.
  ASSERT_TRUE(cache.Put("big", std::string(CacheStorage::kMaxValueBytes + 1, 'b')).ok());
  const int before = counting.gets.load();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Value(cache, "big").size(), CacheStorage::kMaxValueBytes + 1);
  EXPECT_EQ(counting.gets.load(), before + 3);
}

TEST(CacheStorage, ConcurrentReadersAndWritersEndOnTheLastWrite) {
  MemoryStorage mem;
  CacheStorage cache(&mem, /*max_entries=*/32);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int r = 0; r < 4; ++r)
    readers.emplace_back([&] {
      while (!stop) (void)cache.Get("k" + std::to_string(std::rand() % 8));
    });
  for (int i = 0; i < 2000; ++i)
    ASSERT_TRUE(cache.Put("k" + std::to_string(i % 8), std::to_string(i)).ok());
  stop = true;
  for (auto& t : readers) t.join();
  for (int k = 0; k < 8; ++k)
    EXPECT_EQ(Value(cache, "k" + std::to_string(k)), std::to_string(1992 + k));
}

TEST(SqliteStorage, ASecondServerOnTheSameFileIsRefused) {
  auto dir = fs::temp_directory_path() / ("coffer-lock-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "coffer.db").string();
  {
    auto first = SqliteStorage::Open(path);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = SqliteStorage::Open(path);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos)
        << second.status();
    ASSERT_TRUE((*first)->Put("k", "v").ok());
  }
  auto again = SqliteStorage::Open(path);  // the first one closed: free again
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)->Get("k").value(), "v");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace coffer::storage
