// WriteAtomic: concurrent writers of one path never share a temporary file (each write lands
// whole), the mode is the one asked for, and no temporary file is left behind.
#include "util/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace coffer::files {
namespace {

namespace fs = std::filesystem;

TEST(WriteAtomic, ConcurrentWritersOfOnePathEachLandWhole) {
  const fs::path dir = fs::temp_directory_path() / ("coffer-files-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "key.pem").string();
  // Two threads of one process: with a temporary name per process they would truncate and
  // interleave each other's writes, and one rename would fail.
  const std::string a(size_t{64} * 1024, 'a'), b(size_t{64} * 1024, 'b');
  std::vector<std::thread> ts;
  ts.reserve(2);
  for (const std::string* data : {&a, &b})
    ts.emplace_back([&, data] {
      for (int i = 0; i < 50; ++i) ASSERT_TRUE(WriteAtomic(path, *data, {.mode = 0600}).ok());
    });
  for (auto& t : ts) t.join();
  std::string got;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) got.append(buf, n);
    std::fclose(f);
  }
  EXPECT_TRUE(got == a || got == b) << "a torn file of " << got.size() << " bytes";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);  // no temporary file left
  fs::remove_all(dir);
}

std::string Slurp(const fs::path& p) {
  std::string got;
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (f == nullptr) return "<absent>";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) got.append(buf, n);
  std::fclose(f);
  return got;
}

fs::path FreshDir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("coffer-files-" + name + "-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A service with UMask=0077 (the agent's units) still makes the folders it creates 0755: a
// daemon run as its own user (etcd) must be able to enter /etc/kubernetes/pki/etcd.
TEST(WriteAtomic, CreatedFoldersAre0755WhateverTheUmask) {
  const fs::path dir = FreshDir("umask");
  const mode_t old = ::umask(077);
  const auto st = WriteAtomic((dir / "pki/etcd/server.key").string(), "k", {.mode = 0600});
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st;
  for (const fs::path& d : {dir / "pki", dir / "pki/etcd"}) {
    struct stat sb {};
    ASSERT_EQ(::stat(d.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0755u) << d;
  }
  struct stat kb {};
  ASSERT_EQ(::stat((dir / "pki/etcd/server.key").c_str(), &kb), 0);
  EXPECT_EQ(kb.st_mode & 0777, 0600u);
  // A folder that exists keeps its mode.
  fs::create_directories(dir / "private");
  ASSERT_EQ(::chmod((dir / "private").c_str(), 0700), 0);
  ASSERT_TRUE(WriteAtomic((dir / "private/x").string(), "x", {.mode = 0600}).ok());
  struct stat pb {};
  ASSERT_EQ(::stat((dir / "private").c_str(), &pb), 0);
  EXPECT_EQ(pb.st_mode & 0777, 0700u);
  // A file where a folder should be: a clear error.
  ASSERT_TRUE(WriteAtomic((dir / "plain").string(), "f", {.mode = 0644}).ok());
  const auto bad = WriteAtomic((dir / "plain/sub/y").string(), "y", {.mode = 0644});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.message()).find("is not a folder"), std::string::npos) << bad;
  fs::remove_all(dir);
}

TEST(WriteAtomicTogether, ReplacesEveryFileAndLeavesNothingElse) {
  const fs::path dir = FreshDir("together");
  ASSERT_TRUE(WriteAtomic((dir / "tls.key").string(), "old key", {.mode = 0600}).ok());
  ASSERT_TRUE(WriteAtomic((dir / "tls.crt").string(), "old cert", {.mode = 0644}).ok());
  const std::string key = "new key", cert = "new cert", ca = "new ca";
  const auto st = WriteAtomicTogether({{(dir / "tls.key").string(), key, {.mode = 0600}},
                                       {(dir / "tls.crt").string(), cert, {.mode = 0644}},
                                       {(dir / "sub/ca.crt").string(), ca, {.mode = 0644}}});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(Slurp(dir / "tls.key"), "new key");
  EXPECT_EQ(Slurp(dir / "tls.crt"), "new cert");
  EXPECT_EQ(Slurp(dir / "sub/ca.crt"), "new ca");
  struct stat kb {};
  ASSERT_EQ(::stat((dir / "tls.key").c_str(), &kb), 0);
  EXPECT_EQ(kb.st_mode & 0777, 0600u);
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 2u);  // no temporary file or kept copy left
  fs::remove_all(dir);
}

// A kept copy left by a run that died midway (a hard link to an old private key) is removed by
// the next write of the set; a set naming one file twice is refused before anything is written.
TEST(WriteAtomicTogether, LeftCopiesAreRemovedAndAPathNamedTwiceIsRefused) {
  const fs::path dir = FreshDir("leftover");
  ASSERT_TRUE(WriteAtomic((dir / "tls.key").string(), "old key", {.mode = 0600}).ok());
  ASSERT_EQ(::link((dir / "tls.key").c_str(), (dir / "tls.key.coffer-old-1-dead").c_str()), 0);
  const std::string key = "new key", cert = "new cert";
  ASSERT_TRUE(WriteAtomicTogether({{(dir / "tls.key").string(), key, {.mode = 0600}},
                                   {(dir / "tls.crt").string(), cert, {.mode = 0644}}})
                  .ok());
  EXPECT_FALSE(fs::exists(dir / "tls.key.coffer-old-1-dead"));
  EXPECT_EQ(Slurp(dir / "tls.key"), "new key");
  const auto twice = WriteAtomicTogether({{(dir / "tls.crt").string(), key, {.mode = 0600}},
                                          {(dir / "tls.crt").string(), cert, {.mode = 0644}}});
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument) << twice;
  EXPECT_EQ(Slurp(dir / "tls.crt"), "new cert");
  fs::remove_all(dir);
}

// The certificate cannot be put in place (its path is a folder): the key already renamed is
// put back, so the pair on disk is still the old one, and no stray file is left.
TEST(WriteAtomicTogether, AFailedRenamePutsBackWhatWasReplaced) {
  const fs::path dir = FreshDir("rollback");
  ASSERT_TRUE(WriteAtomic((dir / "tls.key").string(), "old key", {.mode = 0600}).ok());
  fs::create_directories(dir / "tls.crt" / "in-the-way");
  const std::string key = "new key", cert = "new cert", fresh = "fresh";
  const auto st = WriteAtomicTogether({{(dir / "tls.key").string(), key, {.mode = 0600}},
                                       {(dir / "new.txt").string(), fresh, {.mode = 0644}},
                                       {(dir / "tls.crt").string(), cert, {.mode = 0644}}});
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Slurp(dir / "tls.key"), "old key");
  EXPECT_EQ(Slurp(dir / "new.txt"), "<absent>");  // did not exist before: removed again
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"tls.crt", "tls.key"}));
  // A write that cannot even start (a file where the folder should be) replaces nothing.
  ASSERT_TRUE(WriteAtomic((dir / "plain").string(), "f", {.mode = 0644}).ok());
  const auto early = WriteAtomicTogether({{(dir / "tls.key").string(), key, {.mode = 0600}},
                                          {(dir / "plain/x").string(), cert, {.mode = 0644}}});
  EXPECT_FALSE(early.ok());
  EXPECT_EQ(Slurp(dir / "tls.key"), "old key");
  fs::remove_all(dir);
}

// ReadIfExists reads every byte whatever the size (its buffer is 8 KiB: one byte less, exactly
// one buffer, more than two) and any kind of file; RegularFile refuses what is not a regular
// file at once (a FIFO would otherwise block the open) and tells a missing file from an error.
TEST(ReadIfExists, EveryByteOfAnyKindOfFile) {
  const fs::path dir = FreshDir("read");
  for (size_t n : {size_t{0}, size_t{8191}, size_t{8192}, size_t{20001}}) {
    std::string data(n, '\0');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 7 + n) % 256);
    const std::string path = (dir / ("f" + std::to_string(n))).string();
    ASSERT_TRUE(WriteAtomic(path, data, 0600).ok());
    auto got = ReadIfExists(path);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, data) << n;
    auto f = RegularFile::Open(path);
    ASSERT_TRUE(f.ok() && f->has_value()) << f.status();
    EXPECT_EQ((*f)->size(), n);
    std::string buf(n + 1, 'x');
    auto r = (*f)->Read(buf.data(), buf.size());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, n);
    EXPECT_EQ(buf.substr(0, n), data);
  }
  auto missing = ReadIfExists((dir / "none").string());
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto missing_regular = RegularFile::Open((dir / "none").string());
  ASSERT_TRUE(missing_regular.ok());
  EXPECT_FALSE(missing_regular->has_value());

  // A FIFO with a writer: ReadIfExists reads it to its end; RegularFile refuses it unread.
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto refused = RegularFile::Open(fifo);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(fifo + " is not a regular file"), std::string::npos)
      << refused.status();
  std::thread writer([&] {
    FILE* w = std::fopen(fifo.c_str(), "w");
    if (!w) return;
    std::fputs("through a pipe", w);
    std::fclose(w);
  });
  auto piped = ReadIfExists(fifo);
  writer.join();
  ASSERT_TRUE(piped.ok()) << piped.status();
  ASSERT_TRUE(piped->has_value());
  EXPECT_EQ(**piped, "through a pipe");

  auto folder = RegularFile::Open(dir.string());
  ASSERT_FALSE(folder.ok());
  EXPECT_NE(folder.status().message().find("not a regular file"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace coffer::files
