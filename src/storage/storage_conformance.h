// The storage conformance suite's fixture (its TEST_Ps are in storage_test.cc): a backend under
// test is a name and a factory given a fresh folder. Another layer runs the whole suite on its
// backend with INSTANTIATE_TEST_SUITE_P(Name, StorageConformance, ...) (etcd_storage_test.cc).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "storage/storage.h"

namespace coffer::storage {

namespace fs = std::filesystem;

struct Backend {
  std::string name;
  std::function<std::unique_ptr<Storage>(const fs::path& dir)> make;
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

class StorageConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("coffer-storage-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    s_ = GetParam().make(dir_);
    ASSERT_NE(s_, nullptr);
  }
  void TearDown() override {
    s_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<Storage> s_;
};

}  // namespace coffer::storage
