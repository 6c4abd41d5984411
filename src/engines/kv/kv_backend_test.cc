// kv version 1 through a real core: the catch-all {path*} path of its table (help, OpenAPI,
// existence check), the body kept as the secret, and the answers it gave before the table.
#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "core/core.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::kv {
namespace {
namespace json = boost::json;
using core::Operation;

class KvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/secret", {{"type", "kv"}}).ok());
  }
  absl::StatusOr<core::Response> Do(Operation op, std::string path, json::object data = {},
                                    const std::optional<std::string>& token = std::nullopt,
                                    std::vector<std::pair<std::string, std::string>> query = {}) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.query = std::move(query);
    r.client_token = token.value_or(root_);
    return core_->Handle(r);
  }
  std::string TokenFor(const std::string& policy_hcl) {
    EXPECT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/p", {{"policy", policy_hcl}}).ok());
    auto r = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"p"}}});
    return std::string(r->auth->at("client_token").as_string());
  }

  storage::MemoryStorage phys_;
  std::unique_ptr<core::Core> core_;
  std::string root_;
};

TEST_F(KvTest, HelpAndOpenApiDescribeTheCatchAllPath) {
  ASSERT_TRUE(Do(Operation::kUpdate, "secret/app/db", {{"password", "s3cr3t"}}).ok());
  // ?help=1 describes the path instead of reading the secret.
  auto help = Do(Operation::kRead, "secret/app/db", {}, std::nullopt, {{"help", "1"}});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_FALSE(help->data->contains("password"));
  EXPECT_EQ(help->data->at("fields").at("path").at("type").as_string(), "string");
  EXPECT_EQ(json::serialize(help->data->at("patterns")), R"(["{path*}"])");
  EXPECT_EQ(json::serialize(help->data->at("operations")), R"(["read","update","delete","list"])");

  auto spec = Do(Operation::kRead, "sys/internal/specs/openapi");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto doc = json::parse(spec->raw_body);
  const auto& item = doc.at("paths").at("/secret/{path}").as_object();
  for (const char* method : {"get", "post", "delete"}) EXPECT_TRUE(item.contains(method)) << method;
}

TEST_F(KvTest, TheBodyIsTheSecretAndTtlSetsTheLease) {
  // "path" is the URL's field; a body key of that name is data like any other.
  ASSERT_TRUE(Do(Operation::kUpdate, "secret/a", {{"path", "elsewhere"}, {"ttl", "30m"}}).ok());
  auto r = Do(Operation::kRead, "secret/a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::serialize(*r->data), R"({"path":"elsewhere","ttl":"30m"})");
  EXPECT_EQ(r->lease_duration, 1800);
  EXPECT_FALSE(Do(Operation::kRead, "secret/elsewhere").ok());

  auto bad = Do(Operation::kUpdate, "secret/a", {{"ttl", "soon"}});
  EXPECT_EQ(bad.status().message(),
            "ttl: invalid duration \"soon\": use seconds or a unit such as 30s, 15m, 12h, 7d");
  bad = Do(Operation::kUpdate, "secret/a", {});
  EXPECT_EQ(bad.status().message(), "missing data fields: write at least one key=value pair");
  bad = Do(Operation::kRead, "secret/dir/");
  EXPECT_EQ(bad.status().message(), "a secret path is required after the mount \"secret/\"");

  auto list = Do(Operation::kList, "secret/");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(json::serialize(list->data->at("keys")), R"(["a"])");
}

TEST_F(KvTest, UndeclaredOperationsAre405AndBadKeysAre400First) {
  for (Operation op : {Operation::kPatch, Operation::kHead}) {
    auto r = Do(op, "secret/a");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_EQ(r.status().message(), Cat("unsupported operation: kv version 1 does not support ",
                                        core::OperationName(op)));
  }
  // The key's rules come before the operation's.
  auto r = Do(Operation::kPatch, "secret/a/../b");
  EXPECT_EQ(r.status().message(), "path segments \".\" and \"..\" are not allowed");
}

TEST_F(KvTest, ExistenceCheckAsksForCreateOnNewKeys) {
  ASSERT_TRUE(Do(Operation::kUpdate, "secret/old", {{"v", "1"}}).ok());
  const std::string tok = TokenFor(R"(path "secret/*" { capabilities = ["update"] })");
  EXPECT_TRUE(Do(Operation::kUpdate, "secret/old", {{"v", "2"}}, tok).ok());
  EXPECT_EQ(Do(Operation::kUpdate, "secret/new", {{"v", "1"}}, tok).status().code(),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace coffer::engines::kv
