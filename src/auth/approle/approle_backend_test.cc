// AppRole through a real core: its path table (help, OpenAPI, typed fields, 405s), the answers
// it gave before the table, and SecretID use counts under concurrent logins.
#include "auth/approle/approle_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "boost/json.hpp"
#include "core/core.h"
#include "registry/builtin.h"
#include "registry/test_harness.h"
#include "storage/memory_storage.h"
#include "util/clock.h"
#include "util/encoding.h"

namespace coffer::auth::approle {
namespace {
namespace json = boost::json;
using core::Operation;

class AppRoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.tidy_interval = std::chrono::milliseconds(0);
    o.clock = &clock_;
    registry::AddBackends(o);
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/auth/approle", {{"type", "approle"}}).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web",
                   {{"token_policies", "app, ops"}, {"token_ttl", "20m"}})
                    .ok());
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
    r.remote_address = "127.0.0.1";
    return core_->Handle(r);
  }
  std::string RoleId() {
    auto r = Do(Operation::kRead, "auth/approle/role/web/role-id");
    return r.ok() ? std::string(r->data->at("role_id").as_string()) : "";
  }
  std::string SecretId(json::object params = {}) {
    auto r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", std::move(params));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::string(r->data->at("secret_id").as_string()) : "";
  }

  FakeClock clock_;  // 2027-01-15T08:00:00Z until advanced
  storage::MemoryStorage phys_;
  std::unique_ptr<core::Core> core_;
  std::string root_;
};

TEST_F(AppRoleTest, HelpAndOpenApiDescribeThePathTable) {
  auto help =
      Do(Operation::kRead, "auth/approle/role/web/secret-id", {}, std::nullopt, {{"help", "1"}});
  ASSERT_TRUE(help.ok()) << help.status();
  const auto& fields = help->data->at("fields").as_object();
  EXPECT_EQ(fields.at("cidr_list").at("type").as_string(), "comma-string-slice");
  EXPECT_EQ(fields.at("ttl").at("type").as_string(), "duration");
  EXPECT_EQ(fields.at("num_uses").at("type").as_string(), "int");
  EXPECT_EQ(json::serialize(help->data->at("operations")), R"(["update","list"])");
  // The SecretID is marked sensitive: described, never given an example value.
  help = Do(Operation::kRead, "auth/approle/login", {}, std::nullopt, {{"help", "1"}});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_TRUE(help->data->at("fields").as_object().contains("secret_id"));

  auto spec = Do(Operation::kRead, "sys/internal/specs/openapi");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto doc = json::parse(spec->raw_body);
  const auto& paths = doc.at("paths").as_object();
  for (const char* p : {"/auth/approle/login", "/auth/approle/role/{role_name}",
                        "/auth/approle/role/{role_name}/token-ttl",
                        "/auth/approle/role/{role_name}/secret-id-accessor/destroy"})
    EXPECT_TRUE(paths.contains(p)) << p;
  EXPECT_TRUE(paths.at("/auth/approle/login")
                  .at("post")
                  .at("requestBody")
                  .at("content")
                  .at("application/json")
                  .at("schema")
                  .at("properties")
                  .as_object()
                  .contains("role_id"));
}

TEST_F(AppRoleTest, FieldsAreTypeCheckedWithTheMessagesAppRoleAlwaysGave) {
  auto bad = Do(Operation::kUpdate, "auth/approle/role/web", {{"secret_id_num_uses", "x"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "field \"secret_id_num_uses\" must be an integer, got string \"x\"");
  bad = Do(Operation::kUpdate, "auth/approle/role/web", {{"token_policies", 5}});
  EXPECT_EQ(bad.status().message(), "\"token_policies\" must be a list of strings");
  bad = Do(Operation::kUpdate, "auth/approle/role/web", {{"token_ttl", {{"m", 20}}}});
  EXPECT_EQ(bad.status().message(),
            "token_ttl: duration must be a number of seconds or a string such as \"1h\"");
  bad = Do(Operation::kUpdate, "auth/approle/role/web/role-id", {{"role_id", 5}});
  EXPECT_EQ(bad.status().message(), "field \"role_id\" must be a string, got number");
  // Nothing was changed by the refused writes.
  auto role = Do(Operation::kRead, "auth/approle/role/web");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(json::serialize(role->data->at("token_policies")), R"(["app","ops"])");
  EXPECT_EQ(role->data->at("token_ttl").as_int64(), 1200);

  // A single-field endpoint reads and writes its own field.
  ASSERT_TRUE(
      Do(Operation::kUpdate, "auth/approle/role/web/token-ttl", {{"token_ttl", "30m"}}).ok());
  auto ttl = Do(Operation::kRead, "auth/approle/role/web/token-ttl");
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(json::serialize(*ttl->data), R"({"token_ttl":1800})");
}

// An ACL that grants one single-field path grants that field alone: a holder of update on
// role/web/secret-id-ttl cannot set the role's policies, turn off bind_secret_id or widen its
// CIDRs through it (Vault's field paths take only their field).
TEST_F(AppRoleTest, ASingleFieldPathWritesThatFieldOnly) {
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/ttl-only",
                 {{"policy", R"(path "auth/approle/role/web/secret-id-ttl" {
                                  capabilities = ["update"] })"}})
                  .ok());
  auto tok = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"ttl-only"}}});
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string limited(tok->auth->at("client_token").as_string());
  auto sneak = Do(Operation::kUpdate, "auth/approle/role/web/secret-id-ttl",
                  {{"secret_id_ttl", "10m"},
                   {"token_policies", "root-ish"},
                   {"bind_secret_id", false},
                   {"token_bound_cidrs", "0.0.0.0/0"}},
                  limited);
  ASSERT_FALSE(sneak.ok());
  EXPECT_EQ(core::HttpStatusFor(sneak.status()), 400);
  EXPECT_NE(sneak.status().message().find("unknown field"), std::string::npos) << sneak.status();
  auto role = Do(Operation::kRead, "auth/approle/role/web");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(json::serialize(role->data->at("token_policies")), R"(["app","ops"])");
  EXPECT_TRUE(role->data->at("bind_secret_id").as_bool());
  EXPECT_EQ(json::serialize(role->data->at("token_bound_cidrs")), "[]");
  EXPECT_EQ(role->data->at("secret_id_ttl").as_int64(), 0);
  // Its own field it may write.
  auto own = Do(Operation::kUpdate, "auth/approle/role/web/secret-id-ttl",
                {{"secret_id_ttl", "10m"}}, limited);
  ASSERT_TRUE(own.ok()) << own.status();
  role = Do(Operation::kRead, "auth/approle/role/web");
  ASSERT_TRUE(role.ok());
  EXPECT_EQ(role->data->at("secret_id_ttl").as_int64(), 600);
  EXPECT_EQ(json::serialize(role->data->at("token_policies")), R"(["app","ops"])");

  // The paths with a deprecated name take both and read both, as Vault's.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web/policies", {{"policies", "a,b"}}).ok());
  auto pol = Do(Operation::kRead, "auth/approle/role/web/policies");
  ASSERT_TRUE(pol.ok());
  EXPECT_EQ(json::serialize(*pol->data), R"({"token_policies":["a","b"],"policies":["a","b"]})");
  // token_period wins over the deprecated period when both are sent.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web/period",
                 {{"token_period", "1h"}, {"period", "2h"}})
                  .ok());
  auto period = Do(Operation::kRead, "auth/approle/role/web/period");
  ASSERT_TRUE(period.ok());
  EXPECT_EQ(json::serialize(*period->data), R"({"token_period":3600,"period":3600})");
}

// A RoleID names one role: taking another role's is refused, and that role still logs in; a
// SecretID's metadata cannot rename the role in the token's metadata.
TEST_F(AppRoleTest, ARoleIdBelongsToOneRole) {
  const std::string web_id = RoleId();
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/other", {{"token_policies", "x"}}).ok());
  auto take = Do(Operation::kUpdate, "auth/approle/role/other/role-id", {{"role_id", web_id}});
  ASSERT_FALSE(take.ok());
  EXPECT_EQ(core::HttpStatusFor(take.status()), 400);
  EXPECT_EQ(take.status().message(), "role_id already in use");
  // Setting a role's own RoleID again is no conflict.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web/role-id", {{"role_id", web_id}}).ok());
  // Deleting the other role leaves web's index entry alone.
  ASSERT_TRUE(Do(Operation::kDelete, "auth/approle/role/other").ok());
  const std::string secret = SecretId({{"metadata", R"({"role_name":"prod-admin","env":"ci"})"}});
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", web_id}, {"secret_id", secret}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->auth->at("metadata").at("role_name").as_string(), "web");
  EXPECT_EQ(login->auth->at("metadata").at("env").as_string(), "ci");
}

// A role's token_period is capped by the mount's max TTL at login, with Vault's warning.
TEST_F(AppRoleTest, APeriodIsCappedByTheMountsMaxTtl) {
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle/tune", {{"max_lease_ttl", "1h"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web", {{"token_period", "8760h"}}).ok());
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", RoleId()}, {"secret_id", SecretId()}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->auth->at("lease_duration").as_int64(), 3600);
  ASSERT_FALSE(login->warnings.empty());
  EXPECT_NE(login->warnings[0].find("capped"), std::string::npos) << login->warnings[0];
  // A renewal extends it by the capped period again, not by the role's year.
  const std::string token(login->auth->at("client_token").as_string());
  auto renewed = Do(Operation::kUpdate, "auth/token/renew-self", {}, token);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->auth->at("lease_duration").as_int64(), 3600);
}

// Role names are case-insensitive, as in Vault: "Deploy" and "DEPLOY" are the role "deploy",
// whose SecretIDs any spelling of the name reaches, and whose logins name it in lower case.
TEST_F(AppRoleTest, RoleNamesAreCaseInsensitive) {
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/Deploy", {{"token_policies", "ci"}}).ok());
  auto list = Do(Operation::kList, "auth/approle/role/");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(json::serialize(list->data->at("keys")), R"(["deploy","web"])");
  // A write under another spelling updates the same role.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/DEPLOY", {{"token_ttl", "5m"}}).ok());
  auto read = Do(Operation::kRead, "auth/approle/role/deploy");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(json::serialize(read->data->at("token_policies")), R"(["ci"])");
  EXPECT_EQ(read->data->at("token_ttl").as_int64(), 300);
  auto id = Do(Operation::kRead, "auth/approle/role/dEpLoY/role-id");
  ASSERT_TRUE(id.ok()) << id.status();
  const std::string role_id(id->data->at("role_id").as_string());
  auto sid = Do(Operation::kUpdate, "auth/approle/role/Deploy/secret-id");
  ASSERT_TRUE(sid.ok()) << sid.status();
  const std::string secret(sid->data->at("secret_id").as_string());
  const std::string accessor(sid->data->at("secret_id_accessor").as_string());
  auto ids = Do(Operation::kList, "auth/approle/role/deploy/secret-id/");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->data->at("keys").as_array().size(), 1u);
  auto lookup = Do(Operation::kUpdate, "auth/approle/role/DEPLOY/secret-id-accessor/lookup",
                   {{"secret_id_accessor", accessor}});
  ASSERT_TRUE(lookup.ok()) << lookup.status();
  ASSERT_TRUE(lookup->data.has_value());
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", role_id}, {"secret_id", secret}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->auth->at("metadata").at("role_name").as_string(), "deploy");
  // Deleting it under yet another spelling takes its SecretIDs along.
  ASSERT_TRUE(Do(Operation::kDelete, "auth/approle/role/DePlOy").ok());
  EXPECT_EQ(Do(Operation::kRead, "auth/approle/role/deploy").status().code(),
            absl::StatusCode::kNotFound);
  login = Do(Operation::kUpdate, "auth/approle/login",
             {{"role_id", role_id}, {"secret_id", secret}}, "");
  EXPECT_EQ(login.status().message(), "invalid role_id or secret_id");
}

// A SecretID may narrow the role's ttl and num_uses, never widen them (Vault: 400, not a silent
// cap); the mount's max lease TTL caps a ttl the role leaves open.
TEST_F(AppRoleTest, ASecretIdCannotOutliveOrOutlastItsRole) {
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web",
                 {{"secret_id_ttl", "10m"}, {"secret_id_num_uses", 3}})
                  .ok());
  auto r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", {{"ttl", "11m"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(core::HttpStatusFor(r.status()), 400);
  EXPECT_EQ(r.status().message(), "ttl cannot be longer than the role's secret_id_ttl");
  r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", {{"ttl", 0}});
  EXPECT_EQ(r.status().message(), "ttl cannot be longer than the role's secret_id_ttl");
  r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", {{"num_uses", 4}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(core::HttpStatusFor(r.status()), 400);
  EXPECT_EQ(r.status().message(), "num_uses cannot be higher than the role's secret_id_num_uses");
  r = Do(Operation::kUpdate, "auth/approle/role/web/custom-secret-id",
         {{"secret_id", "mine"}, {"num_uses", 0}});
  EXPECT_EQ(r.status().message(), "num_uses cannot be higher than the role's secret_id_num_uses");
  // Narrower is granted as asked; nothing asked is the role's.
  r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", {{"ttl", "5m"}, {"num_uses", 2}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data->at("secret_id_ttl").as_int64(), 300);
  EXPECT_EQ(r->data->at("secret_id_num_uses").as_int64(), 2);
  r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data->at("secret_id_ttl").as_int64(), 600);
  EXPECT_EQ(r->data->at("secret_id_num_uses").as_int64(), 3);
  // A role without limits: the mount's max lease TTL is the longest a SecretID lives.
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle/tune", {{"max_lease_ttl", "1h"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web",
                 {{"secret_id_ttl", 0}, {"secret_id_num_uses", 0}})
                  .ok());
  r = Do(Operation::kUpdate, "auth/approle/role/web/secret-id", {{"ttl", "48h"}, {"num_uses", 9}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data->at("secret_id_ttl").as_int64(), 3600);
  EXPECT_EQ(r->data->at("secret_id_num_uses").as_int64(), 9);
}

// What Vault answers for a SecretID lookup: RFC 3339 times (Go's zero time when it never
// expires), last_updated_time moving with each counted use, token_bound_cidrs.
TEST_F(AppRoleTest, ASecretIdLookupAnswersVaultsTimes) {
  auto lookup = [&](const std::string& secret) {
    auto r =
        Do(Operation::kUpdate, "auth/approle/role/web/secret-id/lookup", {{"secret_id", secret}});
    EXPECT_TRUE(r.ok() && r->data.has_value()) << r.status();
    return r.ok() && r->data ? *r->data : json::object();
  };
  const std::string forever = SecretId({{"num_uses", 3}});
  json::object o = lookup(forever);
  EXPECT_EQ(o.at("creation_time").as_string(), "2027-01-15T08:00:00Z");
  EXPECT_EQ(o.at("last_updated_time").as_string(), "2027-01-15T08:00:00Z");
  EXPECT_EQ(o.at("expiration_time").as_string(), "0001-01-01T00:00:00Z");
  EXPECT_EQ(json::serialize(o.at("token_bound_cidrs")), "[]");
  EXPECT_EQ(o.at("secret_id_num_uses").as_int64(), 3);

  const std::string brief = SecretId({{"ttl", 90}});
  o = lookup(brief);
  EXPECT_EQ(o.at("expiration_time").as_string(), "2027-01-15T08:01:30Z");

  // A counted use moves last_updated_time. Surrounding whitespace (an id read from a file) is no
  // part of either id.
  clock_.Advance(absl::Seconds(5));
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", RoleId() + "\n"}, {"secret_id", " " + forever + "\n"}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  o = lookup(forever);
  EXPECT_EQ(o.at("secret_id_num_uses").as_int64(), 2);
  EXPECT_EQ(o.at("creation_time").as_string(), "2027-01-15T08:00:00Z");
  EXPECT_EQ(o.at("last_updated_time").as_string(), "2027-01-15T08:00:05Z");

  // The token is named after the mount, as Vault names it: "approle", not "approle-approle".
  auto self = Do(Operation::kRead, "auth/token/lookup-self", {},
                 std::string(login->auth->at("client_token").as_string()));
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->data->at("display_name").as_string(), "approle");

  // A role that does not exist has no SecretIDs to look up or destroy.
  for (const char* path :
       {"auth/approle/role/ghost/secret-id/lookup", "auth/approle/role/ghost/secret-id/destroy"}) {
    auto r = Do(Operation::kUpdate, path, {{"secret_id", forever}});
    EXPECT_EQ(core::HttpStatusFor(r.status()), 400) << path;
    EXPECT_EQ(r.status().message(), "role \"ghost\" does not exist") << path;
  }
}

// A role that a Coffer before December 2026 stored under a name with capitals ("Web") keeps it:
// found under that spelling, never confused with a lower-case "web" (which cannot be made beside
// it), and its RoleID still logs in.
TEST(AppRoleLegacy, AMixedCaseRoleFromAnOlderCofferKeepsItsName) {
  FakeClock clock;
  core::BackendConfig config;
  config.clock = &clock;
  auto backend = Factory(config);
  ASSERT_TRUE(backend.ok()) << backend.status();
  storage::MemoryStorage mem;
  auto call = [&](Operation op, std::string path, json::object data = {}) {
    return coffer::testing::BackendRequest(**backend, mem, op, std::move(path), std::move(data),
                                           "auth/approle/");
  };
  // Lay the role out as the older Coffer did: made as "tmp", then moved to "role/Web" with its
  // RoleID index entry naming "Web".
  ASSERT_TRUE(call(Operation::kUpdate, "role/tmp", {{"token_policies", "legacy"}}).ok());
  auto raw = mem.Get("role/tmp");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  json::object stored = json::parse(**raw).as_object();
  stored["name"] = "Web";
  const std::string role_id(stored.at("role_id").as_string());
  ASSERT_TRUE(mem.Put("role/Web", json::serialize(stored)).ok());
  ASSERT_TRUE(mem.Delete("role/tmp").ok());
  auto index = mem.List("role_id/", "", 0);
  ASSERT_TRUE(index.ok() && index->size() == 1u);
  ASSERT_TRUE(mem.Put("role_id/" + (*index)[0], "Web").ok());

  auto read = call(Operation::kRead, "role/Web");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(json::serialize(read->data->at("token_policies")), R"(["legacy"])");
  auto twin = call(Operation::kUpdate, "role/web", {{"token_policies", "admin"}});
  ASSERT_FALSE(twin.ok());
  EXPECT_EQ(core::HttpStatusFor(twin.status()), 400);
  EXPECT_EQ(twin.status().message(),
            "role \"Web\" already exists with the same name in other letter case; use that "
            "name, or delete it first");
  EXPECT_EQ(call(Operation::kRead, "role/web").status().code(), absl::StatusCode::kNotFound);

  auto sid = call(Operation::kUpdate, "role/Web/secret-id");
  ASSERT_TRUE(sid.ok()) << sid.status();
  auto ids = mem.List("secret_id/Web/", "", 0);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 1u);
  auto login = call(Operation::kUpdate, "login",
                    {{"role_id", role_id}, {"secret_id", sid->data->at("secret_id")}});
  ASSERT_TRUE(login.ok()) << login.status();
  ASSERT_TRUE(login->login.has_value());
  EXPECT_EQ(login->login->metadata.at("role_name"), "Web");
  EXPECT_EQ(login->login->policies, std::vector<std::string>{"legacy"});
}

// Renewals of an AppRole token are bound by the approle mount as tuned at renewal time, as in
// Vault: tuning the mount down reaches the tokens it issued before.
TEST_F(AppRoleTest, RenewalsFollowTheAuthMountsMaxTtlAsTunedNow) {
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", RoleId()}, {"secret_id", SecretId()}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  const std::string token(login->auth->at("client_token").as_string());
  EXPECT_EQ(login->auth->at("lease_duration").as_int64(), 1200);
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle/tune", {{"max_lease_ttl", "30m"}}).ok());
  clock_.Advance(absl::Minutes(15));
  auto renewed = Do(Operation::kUpdate, "auth/token/renew-self", {{"increment", "1h"}}, token);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->auth->at("lease_duration").as_int64(), 900);  // 30m from its creation
  ASSERT_FALSE(renewed->warnings.empty());

  // A periodic token: each renewal is at most the mount's max TTL as it is now.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle/role/web", {{"token_period", "1h"}}).ok());
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle/tune", {{"max_lease_ttl", "2h"}}).ok());
  login = Do(Operation::kUpdate, "auth/approle/login",
             {{"role_id", RoleId()}, {"secret_id", SecretId()}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->auth->at("lease_duration").as_int64(), 3600);
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle/tune", {{"max_lease_ttl", "10m"}}).ok());
  renewed = Do(Operation::kUpdate, "auth/token/renew-self", {},
               std::string(login->auth->at("client_token").as_string()));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->auth->at("lease_duration").as_int64(), 600);

  // A moved auth method takes its tokens along: their renewals follow its max TTL at the new
  // path, and a renewal of a token it issued before the move works.
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/remount",
                 {{"from", "auth/approle"}, {"to", "auth/approle-moved"}})
                  .ok());
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/auth/approle-moved/tune", {{"max_lease_ttl", "5m"}}).ok());
  const std::string periodic(login->auth->at("client_token").as_string());
  renewed = Do(Operation::kUpdate, "auth/token/renew-self", {}, periodic);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->auth->at("lease_duration").as_int64(), 300);
  auto looked = Do(Operation::kRead, "auth/token/lookup-self", {}, periodic);
  ASSERT_TRUE(looked.ok()) << looked.status();
  EXPECT_EQ(looked->data->at("path").as_string(), "auth/approle-moved/login");
  // Disabling the method at its new path revokes the tokens it issued at the old one.
  ASSERT_TRUE(Do(Operation::kDelete, "sys/auth/approle-moved").ok());
  EXPECT_EQ(
      core::HttpStatusFor(Do(Operation::kRead, "auth/token/lookup-self", {}, periodic).status()),
      403);
}

// Vault's rule: disabling an auth method revokes every token it issued, with their children;
// tokens of other methods and of the token store stay valid.
TEST_F(AppRoleTest, DisablingTheAuthMethodRevokesItsTokens) {
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/auth/approle2", {{"type", "approle"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle2/role/web", {{"token_policies", "app"}}).ok());
  auto login_at = [&](const std::string& mount, const std::string& role_id,
                      const std::string& secret_id) {
    auto r = Do(Operation::kUpdate, mount + "/login",
                {{"role_id", role_id}, {"secret_id", secret_id}}, "");
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::string(r->auth->at("client_token").as_string()) : "";
  };
  const std::string a = login_at("auth/approle", RoleId(), SecretId());
  auto rid2 = Do(Operation::kRead, "auth/approle2/role/web/role-id");
  auto sid2 = Do(Operation::kUpdate, "auth/approle2/role/web/secret-id");
  ASSERT_TRUE(rid2.ok() && sid2.ok());
  const std::string b =
      login_at("auth/approle2", std::string(rid2->data->at("role_id").as_string()),
               std::string(sid2->data->at("secret_id").as_string()));
  // A child of the approle token: its policy "app" is given auth/token/create, and a token it
  // creates has it as parent.
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/app",
                 {{"policy", R"(path "auth/token/create" { capabilities = ["update"] })"}})
                  .ok());
  auto child = Do(Operation::kUpdate, "auth/token/create", {{"policies", "app"}, {"ttl", "1h"}}, a);
  ASSERT_TRUE(child.ok()) << child.status();
  const std::string c(child->auth->at("client_token").as_string());
  auto other = Do(Operation::kUpdate, "auth/token/create", {{"policies", "app"}, {"ttl", "1h"}});
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string d(other->auth->at("client_token").as_string());
  for (const auto& t : {a, b, c, d})
    ASSERT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, t).ok());

  ASSERT_TRUE(Do(Operation::kDelete, "sys/auth/approle").ok());
  for (const auto& t : {a, c}) {
    auto r = Do(Operation::kRead, "auth/token/lookup-self", {}, t);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(core::HttpStatusFor(r.status()), 403);
  }
  for (const auto& t : {b, d})
    EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, t).ok()) << t;
}

// Tokens of an auth method that is no longer mounted (left by a Coffer that did not revoke them
// on disable, or by a disable that failed partway) are revoked by sys/leases/tidy; the tokens of
// mounted methods and of the token store are kept.
TEST_F(AppRoleTest, TidyRevokesTokensOfAuthMethodsNoLongerMounted) {
  auto make = [&](const std::string& path) {
    core::TokenEntry e;
    e.policies = {"default"};
    e.path = path;
    e.ttl = 3600;
    auto c = core_->token_store()->Create(std::move(e));
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->token : "";
  };
  const std::string gone = make("auth/gone/login");
  const std::string mounted = make("auth/approle/login");
  const std::string store = make("auth/token/create");
  for (const auto& t : {gone, mounted, store})
    ASSERT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, t).ok());
  auto r = Do(Operation::kUpdate, "sys/leases/tidy", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->http_status, 202);
  EXPECT_NE(std::find(r->warnings.begin(), r->warnings.end(),
                      "tidy revoked 1 tokens of auth methods that are no longer mounted or left "
                      "half-revoked"),
            r->warnings.end());
  EXPECT_EQ(core::HttpStatusFor(Do(Operation::kRead, "auth/token/lookup-self", {}, gone).status()),
            403);
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, mounted).ok());
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, store).ok());
}

// sys/leases/revoke-prefix/auth/<method>/ revokes the tokens issued under that prefix (they are
// leases in Vault), not those of a method whose path merely starts with the same letters.
TEST_F(AppRoleTest, RevokePrefixReachesTheTokensUnderIt) {
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/auth/approle2", {{"type", "approle"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/approle2/role/web", {{"token_policies", "app"}}).ok());
  auto rid2 = Do(Operation::kRead, "auth/approle2/role/web/role-id");
  auto sid2 = Do(Operation::kUpdate, "auth/approle2/role/web/secret-id");
  ASSERT_TRUE(rid2.ok() && sid2.ok());
  auto la = Do(Operation::kUpdate, "auth/approle/login",
               {{"role_id", RoleId()}, {"secret_id", SecretId()}}, "");
  auto lb =
      Do(Operation::kUpdate, "auth/approle2/login",
         {{"role_id", rid2->data->at("role_id")}, {"secret_id", sid2->data->at("secret_id")}}, "");
  ASSERT_TRUE(la.ok() && lb.ok());
  const std::string a(la->auth->at("client_token").as_string());
  const std::string b(lb->auth->at("client_token").as_string());
  // Without sudo it is refused and nothing is revoked.
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/policies/acl/app",
                 {{"policy", R"(path "sys/leases/revoke-prefix/*" { capabilities = ["update"] })"}})
                  .ok());
  auto refused = Do(Operation::kUpdate, "sys/leases/revoke-prefix/auth/approle", {}, b);
  EXPECT_EQ(core::HttpStatusFor(refused.status()), 403);
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, a).ok());

  auto r = Do(Operation::kUpdate, "sys/leases/revoke-prefix/auth/approle", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(core::HttpStatusFor(Do(Operation::kRead, "auth/token/lookup-self", {}, a).status()),
            403);
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, b).ok());
  // The root token never expires: a prefix over the token store's paths does not revoke it,
  // but it does revoke the store's expiring tokens.
  auto made = Do(Operation::kUpdate, "auth/token/create", {{"policies", "app"}, {"ttl", "1h"}});
  ASSERT_TRUE(made.ok()) << made.status();
  const std::string expiring(made->auth->at("client_token").as_string());
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/leases/revoke-prefix/auth/token/", {}).ok());
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, root_).ok());
  EXPECT_EQ(
      core::HttpStatusFor(Do(Operation::kRead, "auth/token/lookup-self", {}, expiring).status()),
      403);
  // The method stays mounted and logs in again.
  EXPECT_TRUE(Do(Operation::kUpdate, "auth/approle/login",
                 {{"role_id", RoleId()}, {"secret_id", SecretId()}}, "")
                  .ok());
}

TEST_F(AppRoleTest, UndeclaredOperationsAre405AndAMissingRoleComesFirst) {
  for (auto [op, path] : std::vector<std::pair<Operation, std::string>>{
           {Operation::kRead, "auth/approle/login"},
           {Operation::kDelete, "auth/approle/role/web/role-id"},
           {Operation::kRead, "auth/approle/role/web/secret-id/lookup"},
           {Operation::kPatch, "auth/approle/role/web"},
           {Operation::kHead, "auth/approle/role/web"}}) {
    auto r =
        Do(op, path, {},
           op == Operation::kRead && path == "auth/approle/login" ? std::optional<std::string>("")
                                                                  : std::nullopt);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented) << path;
    EXPECT_EQ(r.status().message(), "unsupported operation") << path;
  }
  // The role's sub-paths look the role up before the operation and the fields.
  auto r = Do(Operation::kDelete, "auth/approle/role/ghost/role-id");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  r = Do(Operation::kUpdate, "auth/approle/role/ghost/secret-id", {{"ttl", "soon"}});
  EXPECT_EQ(r.status().message(), "role \"ghost\" does not exist");
  // Unknown routes, bad role names and unrouted trailing slashes, as before the table.
  EXPECT_EQ(Do(Operation::kRead, "auth/approle/role/web/nope").status().message(),
            "no handler for route \"auth/approle/role/web/nope\"");
  EXPECT_EQ(Do(Operation::kList, "auth/approle/role/bad!name").status().message(),
            "role name may only hold letters, digits, '-', '_', '.' and '@'");
  EXPECT_EQ(Do(Operation::kList, "auth/approle/login/").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(AppRoleTest, ASecretIdWithNUsesLogsInNTimesUnderConcurrency) {
  const std::string role_id = RoleId();
  const std::string secret_id = SecretId({{"num_uses", 5}, {"metadata", R"({"env":"ci"})"}});
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        auto r = Do(Operation::kUpdate, "auth/approle/login",
                    {{"role_id", role_id}, {"secret_id", secret_id}}, "");
        if (r.ok()) {
          ++ok;
          EXPECT_EQ(r->auth->at("metadata").at("env").as_string(), "ci");
          EXPECT_EQ(json::serialize(r->auth->at("policies")), R"(["app","default","ops"])");
        } else {
          EXPECT_EQ(r.status().message(), "invalid role_id or secret_id");
          ++refused;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(refused.load(), 19);
}

TEST_F(AppRoleTest, CustomSecretIdIsTheCallersAndLogsIn) {
  auto r = Do(Operation::kUpdate, "auth/approle/role/web/custom-secret-id",
              {{"secret_id", "my-own-secret-id"}, {"metadata", R"({"team":"ops"})"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->data->at("secret_id").as_string(), "my-own-secret-id");
  EXPECT_FALSE(r->data->at("secret_id_accessor").as_string().empty());
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", RoleId()}, {"secret_id", "my-own-secret-id"}}, "");
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_TRUE(login->auth);
  // The same id twice, or none: 400.
  auto again = Do(Operation::kUpdate, "auth/approle/role/web/custom-secret-id",
                  {{"secret_id", "my-own-secret-id"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(core::HttpStatusFor(again.status()), 400);
  EXPECT_NE(again.status().message().find("already registered"), std::string::npos);
  auto none = Do(Operation::kUpdate, "auth/approle/role/web/custom-secret-id", {});
  EXPECT_EQ(core::HttpStatusFor(none.status()), 400);
  // Registered at once from several threads: one wins.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      if (Do(Operation::kUpdate, "auth/approle/role/web/custom-secret-id",
             {{"secret_id", "raced-secret-id"}})
              .ok())
        ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
}

}  // namespace
}  // namespace coffer::auth::approle
