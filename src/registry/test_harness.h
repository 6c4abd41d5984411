// Test support: a real Core with every built-in backend, initialized and unsealed over in-memory
// storage, with a fake clock. For tests only (included by *_test.cc files).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "boost/json.hpp"
#include "core/core.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/clock.h"
#include "util/encoding.h"

namespace coffer::testing {

class CoreHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    // The tidy loop (expired tokens and leases) runs only when a test calls TidyNow().
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    auto c = core::Core::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status();
    core_ = std::move(*c);
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok()) << res.status();
    root_ = res->root_token;
    unseal_key_ = HexEncode(res->keys[0].view());
    ASSERT_TRUE(core_->Unseal(unseal_key_, false).ok());
  }

  absl::StatusOr<core::Response> Do(core::Operation op, std::string path,
                                    boost::json::object data = {},
                                    const std::optional<std::string>& token = std::nullopt,
                                    std::vector<std::pair<std::string, std::string>> query = {},
                                    int64_t wrap_ttl = 0) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.query = std::move(query);
    r.client_token = token.value_or(root_);
    r.wrap_ttl = wrap_ttl;
    return core_->Handle(r);
  }

  // The request must succeed; its response.
  core::Response Must(core::Operation op, std::string path, boost::json::object data = {},
                      const std::optional<std::string>& token = std::nullopt) {
    auto r = Do(op, path, std::move(data), token);
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    return r.ok() ? std::move(*r) : core::Response();
  }

  // A token with one policy holding `policy_hcl`.
  std::string TokenFor(const std::string& policy_hcl, const std::string& name = "p") {
    EXPECT_TRUE(
        Do(core::Operation::kUpdate, "sys/policies/acl/" + name, {{"policy", policy_hcl}}).ok());
    auto r = Do(core::Operation::kUpdate, "auth/token/create",
                {{"policies", boost::json::array{boost::json::value(name)}}});
    EXPECT_TRUE(r.ok() && r->auth) << r.status();
    return std::string(r->auth->at("client_token").as_string());
  }

  // Seals and unseals again: everything in memory is rebuilt from storage.
  void Restart() {
    ASSERT_TRUE(core_->Seal().ok());
    ASSERT_TRUE(core_->Unseal(unseal_key_, false).ok());
  }

  // Storage keys (physical, encrypted values) under `prefix`, recursively.
  std::vector<std::string> PhysicalKeys(const std::string& prefix) {
    std::vector<std::string> out;
    Walk(prefix, &out);
    return out;
  }

  storage::MemoryStorage phys_;
  FakeClock clock_;
  std::unique_ptr<core::Core> core_;
  std::string root_;
  std::string unseal_key_;

 private:
  void Walk(const std::string& prefix, std::vector<std::string>* out) {
    auto names = phys_.List(prefix);
    if (!names.ok()) return;
    for (const auto& n : *names) {
      if (!n.empty() && n.back() == '/')
        Walk(prefix + n, out);
      else
        out->push_back(prefix + n);
    }
  }
};

// One request to a backend alone, over `storage`, as the core hands it on after routing to a
// mount at `mount_point`: no token, ACL or audit. For tests of a backend's storage layout.
inline absl::StatusOr<core::Response> BackendRequest(core::Backend& backend,
                                                     storage::Storage& storage, core::Operation op,
                                                     std::string path,
                                                     boost::json::object data = {},
                                                     std::string mount_point = "") {
  core::Request r;
  r.op = op;
  r.path = std::move(path);
  r.data = std::move(data);
  r.storage = &storage;
  r.mount_point = std::move(mount_point);
  r.remote_address = "127.0.0.1";
  return backend.Handle(r);
}

}  // namespace coffer::testing
