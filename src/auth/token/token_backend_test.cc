// Token lifecycle through the core, with a clock the test moves.
#include <gtest/gtest.h>

#include "registry/builtin.h"
#include "boost/json.hpp"
#include "core/core.h"
#include "engines/kv/kv_backend.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"

namespace coffer::core {
namespace {
namespace json = boost::json;

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    core_ = std::move(*Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/secret", {{"type", "kv"}}).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "secret/x", {{"v", "1"}}).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/reader",
                   {{"policy", R"(path "secret/*" { capabilities = ["read", "list"] })"}})
                    .ok());
  }
  absl::StatusOr<Response> Do(Operation op, std::string path, json::object data = {},
                              std::string token = "") {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = token.empty() ? root_ : token;
    r.remote_address = "127.0.0.1";
    return core_->Handle(r);
  }
  // Creates a token; returns {token, accessor}.
  std::pair<std::string, std::string> Create(json::object params, std::string as = "",
                                             std::string path = "auth/token/create") {
    auto r = Do(Operation::kUpdate, path, std::move(params), as);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {std::string((*r->auth)["client_token"].as_string()),
            std::string((*r->auth)["accessor"].as_string())};
  }
  bool CanRead(const std::string& token) {
    return Do(Operation::kRead, "secret/x", {}, token).ok();
  }

  storage::MemoryStorage phys_;
  FakeClock clock_;
  std::unique_ptr<Core> core_;
  std::string root_;
};

TEST_F(TokenTest, TtlExpiryIsImmediateAndTidyRemovesTheToken) {
  auto [tok, acc] = Create({{"policies", json::array{"reader"}}, {"ttl", "1h"}});
  EXPECT_TRUE(CanRead(tok));
  auto look = Do(Operation::kRead, "auth/token/lookup-self", {}, tok);
  ASSERT_TRUE(look.ok());
  EXPECT_EQ((*look->data)["ttl"].as_int64(), 3600);
  EXPECT_EQ(json::serialize((*look->data)["policies"]), R"(["default","reader"])");
  clock_.Advance(absl::Seconds(3599));
  EXPECT_TRUE(CanRead(tok));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Do(Operation::kRead, "secret/x", {}, tok).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*core_->TidyNow(), 1);
  EXPECT_FALSE(Do(Operation::kUpdate, "auth/token/lookup-accessor", {{"accessor", acc}}).ok());
}

TEST_F(TokenTest, RenewalIsCappedByExplicitMaxTtlAndMountMax) {
  auto [tok, acc] =
      Create({{"policies", json::array{"reader"}}, {"ttl", "1h"}, {"explicit_max_ttl", "2h"}});
  clock_.Advance(absl::Minutes(50));
  auto r = Do(Operation::kUpdate, "auth/token/renew-self", {{"increment", "1h"}}, tok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r->auth)["lease_duration"].as_int64(), 3600);
  clock_.Advance(absl::Minutes(50));
  r = Do(Operation::kUpdate, "auth/token/renew-self", {{"increment", "1h"}}, tok);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r->auth)["lease_duration"].as_int64(), 20 * 60) << "capped at creation + 2h";
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("capped"), std::string::npos);
  clock_.Advance(absl::Minutes(20));
  EXPECT_FALSE(CanRead(tok));

  // The mount's max_lease_ttl caps non-periodic tokens too.
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/token/tune", {{"max_lease_ttl", "90m"}}).ok());
  auto [t2, a2] = Create({{"policies", json::array{"reader"}}, {"ttl", "4h"}});
  auto look = Do(Operation::kRead, "auth/token/lookup-self", {}, t2);
  EXPECT_EQ((*look->data)["ttl"].as_int64(), 90 * 60);
  clock_.Advance(absl::Minutes(60));
  r = Do(Operation::kUpdate, "auth/token/renew", {{"token", t2}, {"increment", "2h"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r->auth)["lease_duration"].as_int64(), 30 * 60);
}

TEST_F(TokenTest, PeriodicTokensRenewForeverButOnlyByPeriod) {
  auto [tok, acc] = Create({{"policies", json::array{"reader"}}, {"period", "1h"}});
  for (int i = 0; i < 50; ++i) {  // far past the 768h mount max
    clock_.Advance(absl::Minutes(59));
    auto r = Do(Operation::kUpdate, "auth/token/renew-self", {}, tok);
    ASSERT_TRUE(r.ok()) << i << r.status();
    EXPECT_EQ((*r->auth)["lease_duration"].as_int64(), 3600);
  }
  clock_.Advance(absl::Hours(24) * 40);
  EXPECT_FALSE(CanRead(tok));
  // Only root or sudo may make periodic tokens without a role.
  auto [plain, pa] = Create({{"policies", json::array{"reader"}}});
  auto denied = Do(Operation::kUpdate, "auth/token/create",
                   {{"period", "1h"}, {"policies", json::array{"reader"}}}, plain);
  EXPECT_FALSE(denied.ok());
}

TEST_F(TokenTest, NumUsesExhaustionRevokesTheToken) {
  auto [tok, acc] = Create({{"policies", json::array{"reader"}}, {"num_uses", 2}});
  EXPECT_TRUE(CanRead(tok));
  EXPECT_TRUE(CanRead(tok));  // the last use succeeds
  EXPECT_EQ(Do(Operation::kRead, "secret/x", {}, tok).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(Do(Operation::kUpdate, "auth/token/lookup-accessor", {{"accessor", acc}}).ok());
}

TEST_F(TokenTest, RevocationCascadesToChildrenButNotOrphans) {
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/maker",
                 {{"policy", R"(path "secret/*" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] })"}})
                  .ok());
  auto [parent, pacc] = Create({{"policies", json::array{"maker"}}});
  auto [child, cacc] = Create({{"policies", json::array{"maker"}}}, parent);
  auto [grandchild, gacc] = Create({{"policies", json::array{"maker"}}}, child);
  auto [orphan, oacc] =
      Create({{"policies", json::array{"maker"}}}, parent, "auth/token/create-orphan");
  auto look = Do(Operation::kUpdate, "auth/token/lookup-accessor", {{"accessor", oacc}});
  EXPECT_TRUE((*look->data)["orphan"].as_bool());
  EXPECT_EQ((*look->data)["id"].as_string(), "") << "lookup by accessor never reveals the token";
  // A child cannot hold a policy its parent lacks.
  auto escalate =
      Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"reader"}}}, parent);
  EXPECT_NE(std::string(escalate.status().message()).find("subset of parent"), std::string::npos);
  // Orphans need sudo through auth/token/create (no_parent).
  EXPECT_FALSE(Do(Operation::kUpdate, "auth/token/create", {{"no_parent", true}}, parent).ok());

  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/revoke", {{"token", parent}}).ok());
  EXPECT_FALSE(CanRead(parent));
  EXPECT_FALSE(CanRead(child));
  EXPECT_FALSE(CanRead(grandchild));
  EXPECT_TRUE(CanRead(orphan));

  // revoke-orphan keeps the children alive as orphans.
  auto [p2, p2a] = Create({{"policies", json::array{"maker"}}});
  auto [c2, c2a] = Create({{"policies", json::array{"maker"}}}, p2);
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/revoke-orphan", {{"token", p2}}).ok());
  EXPECT_FALSE(CanRead(p2));
  EXPECT_TRUE(CanRead(c2));
  EXPECT_TRUE((*Do(Operation::kRead, "auth/token/lookup-self", {}, c2)->data)["orphan"].as_bool());
  // revoke-orphan is root-protected.
  EXPECT_EQ(Do(Operation::kUpdate, "auth/token/revoke-orphan", {{"token", c2}}, c2).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenTest, AccessorsLookupRevokeAndList) {
  auto [tok, acc] = Create(
      {{"policies", json::array{"reader"}}, {"display_name", "ci job"}, {"meta", {{"team", "a"}}}});
  auto look = Do(Operation::kUpdate, "auth/token/lookup-accessor", {{"accessor", acc}});
  ASSERT_TRUE(look.ok());
  EXPECT_EQ((*look->data)["display_name"].as_string(), "token-ci-job");
  EXPECT_EQ((*look->data)["meta"].as_object()["team"].as_string(), "a");
  auto list = Do(Operation::kList, "auth/token/accessors/");
  ASSERT_TRUE(list.ok());
  EXPECT_NE(json::serialize((*list->data)["keys"]).find(acc), std::string::npos);
  EXPECT_EQ(Do(Operation::kList, "auth/token/accessors/", {}, tok).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/revoke-accessor", {{"accessor", acc}}).ok());
  EXPECT_FALSE(CanRead(tok));
}

TEST_F(TokenTest, RolesBoundPoliciesOrphanAndPathSuffix) {
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/roles/ci",
                 {{"allowed_policies", "reader,writer"},
                  {"disallowed_policies", json::array{"admin"}},
                  {"orphan", true},
                  {"token_period", "30m"},
                  {"path_suffix", "v1"}})
                  .ok());
  auto r = Do(Operation::kUpdate, "auth/token/create/ci", {{"policies", json::array{"reader"}}});
  ASSERT_TRUE(r.ok()) << r.status();
  std::string tok(r->auth->at("client_token").as_string());
  auto look = Do(Operation::kRead, "auth/token/lookup-self", {}, tok);
  EXPECT_EQ((*look->data)["path"].as_string(), "auth/token/create/ci/v1");
  EXPECT_TRUE((*look->data)["orphan"].as_bool());
  EXPECT_EQ((*look->data)["period"].as_int64(), 1800);
  EXPECT_EQ((*look->data)["role"].as_string(), "ci");
  EXPECT_FALSE(
      Do(Operation::kUpdate, "auth/token/create/ci", {{"policies", json::array{"admin"}}}).ok());
  EXPECT_FALSE(
      Do(Operation::kUpdate, "auth/token/create/ci", {{"policies", json::array{"other"}}}).ok());
  EXPECT_FALSE(Do(Operation::kUpdate, "auth/token/create/nope", {}).ok());
  auto read = Do(Operation::kRead, "auth/token/roles/ci");
  EXPECT_EQ(json::serialize((*read->data)["allowed_policies"]), R"(["reader","writer"])");
  EXPECT_EQ(json::serialize((*Do(Operation::kList, "auth/token/roles/")->data)["keys"]),
            R"(["ci"])");
}

TEST_F(TokenTest, RevokedTokenIsRefusedByARequestQueuedBeforeRevocation) {
  auto [tok, acc] = Create({{"policies", json::array{"reader"}}});
  // The request object is built (as the HTTP layer queues it) before the revocation lands.
  Request queued;
  queued.op = Operation::kRead;
  queued.path = "secret/x";
  queued.client_token = tok;
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/revoke-self", {}, tok).ok());
  EXPECT_EQ(core_->Handle(queued).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenTest, StoredOnlyAsSaltedHash) {
  auto [tok, acc] = Create({{"policies", json::array{"reader"}}});
  std::string all;
  for (const auto& prefix : {"sys/token/id/", "sys/token/accessor/"}) {
    auto keys = phys_.List(prefix);
    ASSERT_TRUE(keys.ok());
    ASSERT_FALSE(keys->empty());
    for (const auto& k : *keys) all += k + **phys_.Get(std::string(prefix) + k);
  }
  EXPECT_EQ(all.find(tok), std::string::npos);
  EXPECT_EQ(all.find(acc), std::string::npos)
      << "accessors are salted in keys and encrypted in values";
}

}  // namespace
}  // namespace coffer::core
