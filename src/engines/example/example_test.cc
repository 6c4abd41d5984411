// The example engine through a real core: the framework's behaviour end to end (declared special
// paths, existence check and create capability, lifecycle hooks), as a new engine sees it.
#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "core/core.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"

namespace coffer::engines::example {
namespace {
namespace json = boost::json;
using core::Operation;

class ExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o, /*with_examples=*/true);
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    key_ = HexEncode(res->keys[0].view());
    ASSERT_TRUE(core_->Unseal(key_, false).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/ex", {{"type", "example"}}).ok());
  }
  absl::StatusOr<core::Response> Do(Operation op, std::string path, json::object data = {},
                                    const std::optional<std::string>& token = std::nullopt) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = token.value_or(root_);
    return core_->Handle(r);
  }
  std::string TokenFor(const std::string& policy_hcl) {
    EXPECT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/p", {{"policy", policy_hcl}}).ok());
    auto r = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"p"}}});
    return std::string(r->auth->at("client_token").as_string());
  }
  std::string Uuid() {
    auto r = Do(Operation::kRead, "sys/mounts/ex");
    return std::string(r->data->at("uuid").as_string());
  }
  storage::MemoryStorage phys_;
  std::unique_ptr<core::Core> core_;
  std::string root_, key_;
};

TEST_F(ExampleTest, FieldsArriveTypedAndWrongTypesNameTheField) {
  ASSERT_TRUE(Do(Operation::kUpdate, "ex/items/a",
                 {{"value", "v"}, {"count", "3"}, {"ttl", "2m"}, {"tags", "x, y"}})
                  .ok());
  auto r = Do(Operation::kRead, "ex/items/a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::serialize(*r->data), R"({"value":"v","count":3,"ttl":120,"tags":["x","y"]})");
  auto bad = Do(Operation::kUpdate, "ex/items/a", {{"value", "v"}, {"count", "many"}});
  EXPECT_EQ(core::HttpStatusFor(bad.status()), 400);
  EXPECT_EQ(bad.status().message(), "field \"count\" must be an integer, got string \"many\"");
  auto list = Do(Operation::kList, "ex/items/");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(json::serialize(*list->data), R"({"keys":["a"]})");
  auto gone = Do(Operation::kList, "ex/public/hello");
  EXPECT_EQ(core::HttpStatusFor(gone.status()), 405);
  auto echo = Do(Operation::kRead, "ex/echo/upper/a/b/c");
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(echo->data->at("echo").as_string(), "A/B/C");
  EXPECT_EQ(core::HttpStatusFor(Do(Operation::kRead, "ex/echo/lower/a").status()), 404);
}

TEST_F(ExampleTest, DeclaredRootAndUnauthenticatedPathsAreEnforced) {
  // public/* needs no token.
  auto hello = Do(Operation::kRead, "ex/public/hello", {}, "");
  ASSERT_TRUE(hello.ok()) << hello.status();
  EXPECT_EQ(hello->data->at("message").as_string(), "hello");
  // config is root-protected: update without sudo is 403 even with update capability.
  const std::string t = TokenFor(R"(path "ex/*" { capabilities = ["read", "update", "create"] })");
  auto denied = Do(Operation::kUpdate, "ex/config", {{"greeting", "hi"}}, t);
  EXPECT_EQ(core::HttpStatusFor(denied.status()), 403);
  EXPECT_TRUE(Do(Operation::kRead, "ex/items/none", {}, t).status().code() ==
              absl::StatusCode::kNotFound);
  const std::string s =
      TokenFor(R"(path "ex/*" { capabilities = ["read", "update", "create", "sudo"] })");
  EXPECT_TRUE(Do(Operation::kUpdate, "ex/config", {{"greeting", "hi"}}, s).ok());
  EXPECT_EQ(Do(Operation::kRead, "ex/public/hello", {}, "")->data->at("message").as_string(), "hi");
}

TEST_F(ExampleTest, ExistenceCheckAsksForCreateOrUpdate) {
  const std::string update_only = TokenFor(R"(path "ex/items/*" { capabilities = ["update"] })");
  // The item does not exist: the write needs "create".
  auto r = Do(Operation::kUpdate, "ex/items/new", {{"value", "v"}}, update_only);
  EXPECT_EQ(core::HttpStatusFor(r.status()), 403);
  ASSERT_TRUE(Do(Operation::kUpdate, "ex/items/new", {{"value", "v"}}).ok());
  // Now it exists: "update" is enough.
  EXPECT_TRUE(Do(Operation::kUpdate, "ex/items/new", {{"value", "w"}}, update_only).ok());
}

TEST_F(ExampleTest, InvalidateKeyDropsTheCacheAndSealCleansUp) {
  auto loads = [&] { return Do(Operation::kRead, "ex/config")->data->at("loads").as_int64(); };
  EXPECT_EQ(loads(), 1);  // Initialize loaded it once; reads come from the cache
  EXPECT_EQ(loads(), 1);
  // Another node changes the config behind this one's back: the cache is stale ...
  storage::Storage* view = core_->MountStorage("ex/");
  ASSERT_NE(view, nullptr);
  ASSERT_TRUE(view->Put("config", "changed elsewhere").ok());
  EXPECT_EQ(Do(Operation::kRead, "ex/public/hello", {}, "")->data->at("message").as_string(),
            "hello");
  // ... until storage reports the key changed.
  ASSERT_TRUE(core_->InvalidateKey("logical/" + Uuid() + "/config").ok());
  EXPECT_EQ(Do(Operation::kRead, "ex/public/hello", {}, "")->data->at("message").as_string(),
            "changed elsewhere");
  EXPECT_EQ(loads(), 2);
  // Keys of other mounts do not touch it.
  ASSERT_TRUE(core_->InvalidateKey("logical/not-a-mount/config").ok());
  EXPECT_EQ(loads(), 2);
  // Seal runs Cleanup; unseal builds the backend again and Initialize loads once more.
  ASSERT_TRUE(core_->Seal().ok());
  ASSERT_TRUE(core_->Unseal(key_, false).ok());
  EXPECT_EQ(loads(), 1);
}

TEST_F(ExampleTest, HelpAndOpenApiDescribeTheEngine) {
  core::Request r;
  r.op = Operation::kRead;
  r.path = "ex/items/a";
  r.query = {{"help", "1"}};
  r.client_token = root_;
  auto help = core_->Handle(r);
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->data->at("fields").at("tags").at("type").as_string(), "comma-string-slice");
  auto spec = Do(Operation::kRead, "sys/internal/specs/openapi");
  ASSERT_TRUE(spec.ok());
  auto doc = json::parse(spec->raw_body);
  EXPECT_TRUE(doc.at("paths").as_object().contains("/ex/items/{name}"));
  EXPECT_TRUE(doc.at("paths").as_object().contains("/ex/echo/{kind}/{rest}"));
}

}  // namespace
}  // namespace coffer::engines::example
