// Token lifecycle through the core, with a clock the test moves.
#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "core/core.h"
#include "engines/kv/kv_backend.h"
#include "registry/builtin.h"
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

// The token store on the framework: its path table describes each endpoint (?help=1, OpenAPI),
// declared fields are type-checked before any handler runs, and an operation a path does not
// declare is a 405. The answers it gave before the table (messages, 404s for unrouted trailing
// slashes, HEAD) are kept.
TEST_F(TokenTest, PathTableDescribesAndChecksTheEndpoints) {
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/token/roles/ci", {{"allowed_policies", "reader"}}).ok());
  Request help;
  help.op = Operation::kRead;
  help.path = "auth/token/roles/ci";
  help.query = {{"help", "1"}};
  help.client_token = root_;
  auto h = core_->Handle(help);
  ASSERT_TRUE(h.ok()) << h.status();
  const auto& fields = h->data->at("fields").as_object();
  EXPECT_EQ(fields.at("allowed_policies").at("type").as_string(), "comma-string-slice");
  EXPECT_EQ(fields.at("token_ttl").at("type").as_string(), "duration");
  EXPECT_EQ(fields.at("renewable").at("default").as_bool(), true);
  EXPECT_EQ(json::serialize(h->data->at("operations")), R"(["read","update","delete"])");

  auto spec = Do(Operation::kRead, "sys/internal/specs/openapi", {}, "");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto doc = json::parse(spec->raw_body);
  const auto& paths = doc.at("paths").as_object();
  ASSERT_TRUE(paths.contains("/auth/token/create/{role_name}"));
  EXPECT_TRUE(paths.at("/auth/token/create")
                  .at("post")
                  .at("requestBody")
                  .at("content")
                  .at("application/json")
                  .at("schema")
                  .at("properties")
                  .as_object()
                  .contains("policies"));

  // A wrong type for a declared field: 400 naming the field, before the handler runs.
  auto bad = Do(Operation::kUpdate, "auth/token/roles/ci", {{"token_num_uses", "many"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "field \"token_num_uses\" must be an integer, got string \"many\"");
  bad = Do(Operation::kUpdate, "auth/token/create", {{"display_name", 7}});
  EXPECT_EQ(bad.status().message(), "field \"display_name\" must be a string, got number");
  // The token store's own messages for lists and meta, as before the table.
  bad = Do(Operation::kUpdate, "auth/token/create", {{"policies", 5}});
  EXPECT_EQ(bad.status().message(),
            "\"policies\" must be a list of strings or a comma-separated string");
  bad = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"a", 1}}});
  EXPECT_EQ(bad.status().message(), "\"policies\" must be a list of strings");
  bad = Do(Operation::kUpdate, "auth/token/create", {{"meta", {{"team", 1}}}});
  EXPECT_EQ(bad.status().message(), "meta.team must be a string");

  // Policies are split, trimmed and lowercased; an empty duration is "not given".
  auto [tok, acc] = Create({{"policies", " Reader , ,"}, {"ttl", ""}, {"explicit_max_ttl", "2h"}});
  auto look = Do(Operation::kRead, "auth/token/lookup-self", {}, tok);
  ASSERT_TRUE(look.ok());
  EXPECT_EQ(json::serialize((*look->data)["policies"]), R"(["default","reader"])");
  EXPECT_EQ((*look->data)["ttl"].as_int64(), 7200) << "the mount default, capped at 2h";

  // Undeclared operations: 405 with Vault's bare message, HEAD included (not served as a read).
  for (auto [op, path] :
       std::vector<std::pair<Operation, std::string>>{{Operation::kDelete, "auth/token/create"},
                                                      {Operation::kRead, "auth/token/tidy"},
                                                      {Operation::kHead, "auth/token/lookup-self"},
                                                      {Operation::kList, "auth/token/create/"}}) {
    auto r = Do(op, path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented) << path;
    EXPECT_EQ(r.status().message(), "unsupported operation") << path;
  }
  // Paths no pattern takes, and trailing slashes the token store never routed, are 404s.
  for (const char* path : {"auth/token/nothing", "auth/token/tidy/"}) {
    auto r = Do(Operation::kList, path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << path;
  }
  EXPECT_EQ(Do(Operation::kRead, "auth/token/nothing").status().message(),
            "no handler for route \"auth/token/nothing\"");
  EXPECT_EQ(Do(Operation::kList, "auth/token/roles/ci/").status().message(),
            "role name must not be empty or contain '/'");
}

}  // namespace
}  // namespace coffer::core
