// One conformance suite that every Storage backend passes (as OpenBao's ExerciseBackend).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "storage/memory_storage.h"
#include "storage/sqlite_storage.h"
#include "storage/storage_conformance.h"

namespace coffer::storage {
namespace {

TEST_P(StorageConformance, GetPutDelete) {
  EXPECT_FALSE(s_->Get("a")->has_value());
  ASSERT_TRUE(s_->Put("a", "1").ok());
  EXPECT_EQ(**s_->Get("a"), "1");
  ASSERT_TRUE(s_->Put("a", std::string("2\0x", 3)).ok());
  EXPECT_EQ(**s_->Get("a"), std::string("2\0x", 3));
  ASSERT_TRUE(s_->Delete("a").ok());
  EXPECT_FALSE(s_->Get("a")->has_value());
  EXPECT_TRUE(s_->Delete("missing").ok());
  ASSERT_TRUE(s_->Put("empty", "").ok());
  ASSERT_TRUE(s_->Get("empty")->has_value());
  EXPECT_EQ(**s_->Get("empty"), "");
}

TEST_P(StorageConformance, ListShowsDirectChildrenAndFoldersOnce) {
  for (const char* k :
       {"foo/a", "foo/b", "foo/sub/x", "foo/sub/y", "foo/sub/z/deep", "foo0", "fo", "bar/c"})
    ASSERT_TRUE(s_->Put(k, "v").ok());
  EXPECT_EQ(*s_->List("foo/"), (std::vector<std::string>{"a", "b", "sub/"}));
  EXPECT_EQ(*s_->List("foo/sub/"), (std::vector<std::string>{"x", "y", "z/"}));
  EXPECT_EQ(*s_->List(""), (std::vector<std::string>{"bar/", "fo", "foo/", "foo0"}));
  EXPECT_TRUE(s_->List("nothing/")->empty());
}

TEST_P(StorageConformance, ListPagesWithAfterAndLimit) {
  for (int i = 0; i < 700; ++i) {
    char k[32];
    snprintf(k, sizeof k, "p/%04d", i);
    ASSERT_TRUE(s_->Put(k, "v").ok());
  }
  ASSERT_TRUE(s_->Put("p/0100x/child", "v").ok());
  std::vector<std::string> all;
  std::string after;
  for (;;) {
    auto page = s_->List("p/", after, 64);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    EXPECT_LE(page->size(), 64u);
    all.insert(all.end(), page->begin(), page->end());
    after = page->back();
  }
  ASSERT_EQ(all.size(), 701u);
  EXPECT_EQ(all[0], "0000");
  EXPECT_EQ(all[101], "0100x/");
  EXPECT_EQ(all.back(), "0699");
  EXPECT_EQ(*s_->List("p/", "", 0), all);
}

TEST_P(StorageConformance, BatchedWritesAreAtomicAndOrdered) {
  std::vector<WriteOp> ops;
  ops.push_back({WriteOp::Kind::kPut, "x", "1"});
  ops.push_back({WriteOp::Kind::kPut, "y", "2"});
  ops.push_back({WriteOp::Kind::kDelete, "x", ""});
  ASSERT_TRUE(s_->Write(std::move(ops)).ok());
  EXPECT_FALSE(s_->Get("x")->has_value());
  EXPECT_EQ(**s_->Get("y"), "2");
}

TEST_P(StorageConformance, DeletePrefixRemovesOnlyThatSubtree) {
  for (const char* k : {"m/1/a", "m/1/b/c", "m/10/a", "m/2"}) ASSERT_TRUE(s_->Put(k, "v").ok());
  ASSERT_TRUE(s_->DeletePrefix("m/1/").ok());
  EXPECT_FALSE(s_->Get("m/1/a")->has_value());
  EXPECT_FALSE(s_->Get("m/1/b/c")->has_value());
  EXPECT_TRUE(s_->Get("m/10/a")->has_value());
  EXPECT_TRUE(s_->Get("m/2")->has_value());
}

TEST_P(StorageConformance, ConcurrentWritersAllLand) {
  std::vector<std::thread> ts;
  ts.reserve(16);
  for (int t = 0; t < 16; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(s_->Put("c/" + std::to_string(t) + "-" + std::to_string(i), "v").ok());
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s_->List("c/")->size(), 800u);
}

// WriteAsync answers each write once, and only when a read sees it.
TEST_P(StorageConformance, WriteAsyncAnswersOnceTheWriteIsReadable) {
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> answered{0}, readable{0};
  std::vector<std::thread> ts;
  ts.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "a/" + std::to_string(t) + "-" + std::to_string(i);
        std::vector<WriteOp> ops{{WriteOp::Kind::kPut, key, "v" + key}};
        s_->WriteAsync(std::move(ops), [&, key](const absl::Status& st) {
          EXPECT_TRUE(st.ok()) << st;
          auto got = s_->Get(key);
          if (got.ok() && *got == "v" + key) readable.fetch_add(1);
          answered.fetch_add(1);
        });
      }
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < 10000 && answered.load() < kThreads * kEach; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(answered.load(), kThreads * kEach);
  EXPECT_EQ(readable.load(), kThreads * kEach);
  EXPECT_EQ(s_->List("a/")->size(), static_cast<size_t>(kThreads * kEach));
}

INSTANTIATE_TEST_SUITE_P(
    Backends, StorageConformance,
    ::testing::Values(Backend{"memory",
                              [](const fs::path&) -> std::unique_ptr<Storage> {
                                return std::make_unique<MemoryStorage>();
                              }},
                      Backend{"sqlite",
                              [](const fs::path& d) -> std::unique_ptr<Storage> {
                                auto s = SqliteStorage::Open((d / "coffer.db").string());
                                return s.ok() ? std::move(*s) : nullptr;
                              }}),
    [](const auto& info) { return info.param.name; });

TEST(SqliteStorage, GroupCommitBatchesConcurrentWriters) {
  auto dir = fs::temp_directory_path() / ("coffer-gc-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    auto s = SqliteStorage::Open((dir / "db").string());
    ASSERT_TRUE(s.ok());
    std::vector<std::thread> ts;
    ts.reserve(32);
    for (int t = 0; t < 32; ++t)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 20; ++i) ASSERT_TRUE((*s)->Put(std::to_string(t * 100 + i), "v").ok());
      });
    for (auto& t : ts) t.join();
    // 640 writes from 32 threads: with group commit far fewer transactions than writes.
    EXPECT_LT((*s)->commits(), 640u);
    EXPECT_EQ(fs::status(dir / "db").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }
  // Reopen: everything acknowledged is there.
  auto s2 = SqliteStorage::Open((dir / "db").string());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ((*s2)->List("")->size(), 640u);
  fs::remove_all(dir);
}

// SQLite's WriteAsync returns before the commit; closing the store still commits and answers
// every queued write, and all of them are there after reopening.
TEST(SqliteStorage, WriteAsyncQueuedAtCloseIsCommittedAndAnswered) {
  auto dir = fs::temp_directory_path() / ("coffer-wa-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::atomic<int> ok{0};
  {
    auto s = SqliteStorage::Open((dir / "db").string());
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE((*s)->WritesAsync());
    for (int i = 0; i < 300; ++i)
      (*s)->WriteAsync({{WriteOp::Kind::kPut, "k/" + std::to_string(i), "v"}},
                       [&ok](const absl::Status& st) {
                         if (st.ok()) ok.fetch_add(1);
                       });
  }  // closed at once: the writer drains its queue first
  EXPECT_EQ(ok.load(), 300);
  auto s2 = SqliteStorage::Open((dir / "db").string());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ((*s2)->List("k/")->size(), 300u);
  EXPECT_FALSE(MemoryStorage().WritesAsync());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace coffer::storage
