// WriteAtomic: concurrent writers of one path never share a temporary file (each write lands
// whole), the mode is the one asked for, and no temporary file is left behind.
#include "util/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace
}  // namespace coffer::files
