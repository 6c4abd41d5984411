#include "core/core.h"

#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "engines/kv/kv_backend.h"
#include "registry/builtin.h"
#include "storage/fault_storage.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"

namespace coffer::core {
namespace {
namespace json = boost::json;

class CoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart(); }
  void Restart() {
    core_.reset();
    CoreOptions o;
    o.physical = &faulty_;
    registry::AddBackends(o, /*with_examples=*/true);
    core_ = std::move(*Core::Create(std::move(o)));
  }
  void InitAndUnseal(int n = 5, int t = 3) {
    auto res = core_->Initialize(n, t);
    ASSERT_TRUE(res.ok()) << res.status();
    root_ = res->root_token;
    keys_.clear();
    for (auto& k : res->keys) keys_.push_back(HexEncode(k.view()));
    for (int i = 0; i < t; ++i) ASSERT_TRUE(core_->Unseal(keys_[i], false).ok());
    ASSERT_FALSE(core_->Sealed());
  }
  absl::StatusOr<Response> Do(Operation op, std::string path, json::object data = {},
                              const std::string& token = "use-root") {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = token == "use-root" ? root_ : token;
    return core_->Handle(r);
  }
  storage::MemoryStorage phys_;
  storage::FaultStorage faulty_{&phys_};
  std::unique_ptr<Core> core_;
  std::string root_;
  std::vector<std::string> keys_;
};

TEST_F(CoreTest, InitLeavesServerSealedAndUnsealNeedsThreshold) {
  auto res = core_->Initialize(5, 3);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->keys.size(), 5u);
  EXPECT_EQ(res->root_token.substr(0, 4), "hvs.");
  EXPECT_TRUE(core_->Sealed());
  auto s1 = core_->Unseal(HexEncode(res->keys[4].view()), false);
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ((*s1)["progress"].as_int64(), 1);
  EXPECT_EQ((*s1)["t"].as_int64(), 3);
  EXPECT_EQ((*s1)["n"].as_int64(), 5);
  // The same key twice does not move progress.
  auto again = core_->Unseal(HexEncode(res->keys[4].view()), false);
  EXPECT_EQ((*again)["progress"].as_int64(), 1);
  // base64 is accepted as well as hex.
  ASSERT_TRUE(core_->Unseal(Base64Encode(res->keys[1].view()), false).ok());
  auto done = core_->Unseal(HexEncode(res->keys[2].view()), false);
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE((*done)["sealed"].as_bool());
  EXPECT_EQ((*done)["progress"].as_int64(), 0);
  // A key after unseal completed is refused with a clear message.
  auto extra = core_->Unseal(HexEncode(res->keys[0].view()), false);
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(extra.status().message()).find("already unsealed"), std::string::npos);
  EXPECT_EQ(core_->Initialize(5, 3).status().message(), "Vault is already initialized");
}

TEST_F(CoreTest, WrongKeysResetProgressAndKeepTheServerSealed) {
  auto res = core_->Initialize(3, 2);
  ASSERT_TRUE(res.ok());
  // A share of the right shape but from another server.
  std::string bogus = HexEncode(std::string(32, '\x11') + "\x07");
  ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
  auto bad = core_->Unseal(bogus, false);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("progress was reset"), std::string::npos);
  EXPECT_TRUE(core_->Sealed());
  EXPECT_EQ((*core_->SealStatus())["progress"].as_int64(), 0);
  EXPECT_EQ(core_->Unseal("not-hex-or-base64!", false).status().message(),
            "'key' must be a valid hex or base64 string");
  EXPECT_FALSE(core_->Unseal("abcd", false).ok());  // wrong length
  ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[2].view()), false).ok());
  ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[1].view()), false).ok());
  EXPECT_FALSE(core_->Sealed());
}

TEST_F(CoreTest, ShareLimitsAsVault) {
  EXPECT_EQ(core_->Initialize(5, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->Initialize(2, 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->Initialize(256, 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core_->Initialize(0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  auto one = core_->Initialize(1, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->keys[0].size(), 32u);
}

TEST_F(CoreTest, SealedServerRefusesRequests) {
  ASSERT_TRUE(core_->Initialize(1, 1).ok());
  auto r = Do(Operation::kRead, "secret/foo", {}, "x");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpStatusFor(r.status()), 503);
}

TEST_F(CoreTest, OnlyTheRootTokenIsAccepted) {
  InitAndUnseal();
  EXPECT_EQ(Do(Operation::kRead, "sys/mounts", {}, "").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Do(Operation::kRead, "sys/mounts", {}, "hvs.bogus").status().message(),
            "permission denied");
  EXPECT_TRUE(Do(Operation::kRead, "sys/mounts").ok());
  auto self = Do(Operation::kRead, "auth/token/lookup-self");
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(json::serialize((*self->data)["policies"]), R"(["root"])");
  EXPECT_EQ((*self->data)["id"].as_string(), root_);
  EXPECT_EQ(Do(Operation::kRead, "auth/token/lookup-self", {}, "nope").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(CoreTest, MountsEnableTuneDisableAndKvData) {
  InitAndUnseal();
  ASSERT_TRUE(
      Do(Operation::kUpdate, "sys/mounts/secret", {{"type", "kv"}, {"description", "app secrets"}})
          .ok());
  auto dup = Do(Operation::kUpdate, "sys/mounts/secret", {{"type", "kv"}});
  EXPECT_EQ(dup.status().message(), "path is already in use at secret/");
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/mounts/secret/nested", {{"type", "kv"}}).ok());
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/mounts/sys2/../x", {{"type", "kv"}}).ok());
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/mounts/auth/x", {{"type", "kv"}}).ok());
  auto bad_type = Do(Operation::kUpdate, "sys/mounts/x", {{"type", "nope"}});
  EXPECT_NE(std::string(bad_type.status().message()).find("unknown secrets engine type"),
            std::string::npos);

  ASSERT_TRUE(
      Do(Operation::kUpdate, "secret/app/db", {{"password", "hunter2"}, {"ttl", "1h"}}).ok());
  auto read = Do(Operation::kRead, "secret/app/db");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read->data)["password"].as_string(), "hunter2");
  EXPECT_EQ(read->lease_duration, 3600);
  auto list = Do(Operation::kList, "secret/");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(json::serialize((*list->data)["keys"]), R"(["app/"])");
  EXPECT_EQ(Do(Operation::kRead, "secret/missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Do(Operation::kUpdate, "secret/empty", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Do(Operation::kRead, "nomount/x").status().code(), absl::StatusCode::kNotFound);

  // Tune.
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/secret/tune",
                 {{"default_lease_ttl", "10m"}, {"max_lease_ttl", 7200}})
                  .ok());
  auto tune = Do(Operation::kRead, "sys/mounts/secret/tune");
  EXPECT_EQ((*tune->data)["default_lease_ttl"].as_int64(), 600);
  EXPECT_EQ((*tune->data)["max_lease_ttl"].as_int64(), 7200);
  EXPECT_FALSE(
      Do(Operation::kUpdate, "sys/mounts/secret/tune", {{"default_lease_ttl", "3h"}}).ok());
  EXPECT_FALSE(
      Do(Operation::kUpdate, "sys/mounts/secret/tune", {{"default_lease_ttl", "soon"}}).ok());
  EXPECT_EQ((*Do(Operation::kRead, "secret/app/db")->data)["password"].as_string(), "hunter2");

  // The mount table survives seal/unseal; disabling removes the data.
  ASSERT_TRUE(core_->Seal().ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(core_->Unseal(keys_[i], false).ok());
  EXPECT_TRUE(Do(Operation::kRead, "secret/app/db").ok());
  auto mounts = Do(Operation::kRead, "sys/mounts");
  EXPECT_EQ((*mounts->data)["secret/"].as_object()["description"].as_string(), "app secrets");
  EXPECT_EQ(
      (*mounts->data)["secret/"].as_object()["config"].as_object()["default_lease_ttl"].as_int64(),
      600);
  size_t before = phys_.List("logical/")->size();
  EXPECT_EQ(before, 1u);
  ASSERT_TRUE(Do(Operation::kDelete, "sys/mounts/secret").ok());
  EXPECT_TRUE(phys_.List("logical/")->empty());
  EXPECT_EQ(Do(Operation::kRead, "secret/app/db").status().code(), absl::StatusCode::kNotFound);
  // Re-enabling at the same path starts empty.
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/secret", {{"type", "generic"}}).ok());
  EXPECT_EQ(Do(Operation::kRead, "secret/app/db").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoreTest, RotateAddsTermAndOldDataStillReads) {
  InitAndUnseal();
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/kv", {{"type", "kv"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "kv/a", {{"v", "1"}}).ok());
  auto ks = Do(Operation::kRead, "sys/key-status");
  EXPECT_EQ((*ks->data)["term"].as_int64(), 1);
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/rotate").ok());
  ks = Do(Operation::kRead, "sys/key-status");
  EXPECT_EQ((*ks->data)["term"].as_int64(), 2);
  ASSERT_TRUE(Do(Operation::kUpdate, "kv/b", {{"v", "2"}}).ok());
  ASSERT_TRUE(core_->Seal().ok());
  Restart();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(core_->Unseal(keys_[i], false).ok());
  EXPECT_EQ((*Do(Operation::kRead, "kv/a")->data)["v"].as_string(), "1");
  EXPECT_EQ((*Do(Operation::kRead, "kv/b")->data)["v"].as_string(), "2");
  EXPECT_EQ((*Do(Operation::kRead, "sys/key-status")->data)["term"].as_int64(), 2);
}

TEST_F(CoreTest, SealRequestSealsAndMetricsCount) {
  InitAndUnseal();
  ASSERT_TRUE(Do(Operation::kRead, "sys/mounts").ok());
  Request m;
  m.op = Operation::kRead;
  m.path = "sys/metrics";
  m.client_token = root_;
  m.query = {{"format", "prometheus"}};
  auto prom = core_->Handle(m);
  ASSERT_TRUE(prom.ok());
  EXPECT_NE(
      prom->raw_body.find("coffer_requests_total{mount=\"sys/\",operation=\"read\",code=\"200\"}"),
      std::string::npos);
  EXPECT_NE(
      prom->raw_body.find(
          "coffer_request_duration_seconds_bucket{mount=\"sys/\",operation=\"read\",le=\"+Inf\"}"),
      std::string::npos);
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/seal").ok());
  EXPECT_TRUE(core_->Sealed());
}

TEST_F(CoreTest, FailedWritesLoseNothingAndLeaveTheTableConsistent) {
  InitAndUnseal();
  ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/kv", {{"type", "kv"}}).ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "kv/a", {{"v", "1"}}).ok());
  // The mount table write fails: the mount must not appear, now or after a restart.
  faulty_.FailWritesAfter(0);
  auto st = Do(Operation::kUpdate, "sys/mounts/other", {{"type", "kv"}});
  EXPECT_EQ(HttpStatusFor(st.status()), 503);
  EXPECT_EQ(faulty_.failed(), 1);
  EXPECT_FALSE((*Do(Operation::kRead, "sys/mounts")->data).contains("other/"));
  // A failed secret write leaves the old value.
  faulty_.FailWritesAfter(0);
  EXPECT_FALSE(Do(Operation::kUpdate, "kv/a", {{"v", "2"}}).ok());
  EXPECT_EQ((*Do(Operation::kRead, "kv/a")->data)["v"].as_string(), "1");
  // A failed tune keeps the old settings; the server keeps serving.
  faulty_.FailWritesAfter(0);
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/mounts/kv/tune", {{"default_lease_ttl", "1h"}}).ok());
  EXPECT_EQ((*Do(Operation::kRead, "sys/mounts/kv/tune")->data)["default_lease_ttl"].as_int64(),
            kSystemDefaultTtl);
  ASSERT_TRUE(core_->Seal().ok());
  Restart();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(core_->Unseal(keys_[i], false).ok());
  EXPECT_FALSE((*Do(Operation::kRead, "sys/mounts")->data).contains("other/"));
  EXPECT_EQ((*Do(Operation::kRead, "kv/a")->data)["v"].as_string(), "1");
}

TEST_F(CoreTest, InterruptedInitCanBeRetried) {
  // The seal config is written last; a failure before it leaves the server uninitialized and a
  // second init starts cleanly.
  // Writes of an init: 4 prefix wipes, keyring, token salt, default policy, root token, cluster
  // info, mount table, then the root key + seal config batch (the 11th), which fails here.
  faulty_.FailWritesAfter(10);
  EXPECT_FALSE(core_->Initialize(3, 2).ok());
  EXPECT_EQ(faulty_.failed(), 1);
  EXPECT_TRUE(phys_.Get("core/keyring")->has_value()) << "the half-done init left data behind";
  EXPECT_FALSE((*core_->SealStatus())["initialized"].as_bool());
  InitAndUnseal(3, 2);
  EXPECT_TRUE(Do(Operation::kRead, "sys/mounts").ok());
}

// HA standbys that serve (docs/ha.md): two cores on one store, as two servers on one etcd path.
// The standby runs what reads, refuses what writes before anything reaches the store (the
// server then forwards it whole), and drops what the active server changed when told
// (InvalidateKey, called by the server's etcd watch).
class StandbyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Core> Make() {
    CoreOptions o;
    o.physical = &phys_;
    o.ha_enabled = true;
    o.ha_leader = [] { return std::string("https://active.test:8200"); };
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o, /*with_examples=*/true);
    return std::move(*Core::Create(std::move(o)));
  }
  void SetUp() override {
    active_ = Make();
    ASSERT_TRUE(active_->Activate().ok());
    auto res = active_->Initialize(1, 1);
    ASSERT_TRUE(res.ok()) << res.status();
    root_ = res->root_token;
    key_ = HexEncode(res->keys[0].view());
    ASSERT_TRUE(active_->Unseal(key_, false).ok());
    ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/mounts/kv",
                   {{"type", "kv"}, {"options", json::object{{"version", "1"}}}})
                    .ok());
    ASSERT_TRUE(Do(*active_, Operation::kUpdate, "kv/a", {{"v", "1"}}).ok());
    standby_ = Make();
    ASSERT_TRUE(standby_->Unseal(key_, false).ok());
    ASSERT_TRUE(standby_->StandbyReady());
  }
  Request Req(Operation op, std::string path, json::object data, const std::string& token) {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = token.empty() ? root_ : token;
    return r;
  }
  absl::StatusOr<Response> Do(Core& c, Operation op, std::string path, json::object data = {},
                              const std::string& token = "") {
    Request r = Req(op, std::move(path), std::move(data), token);
    return c.Handle(r);
  }
  std::optional<std::string> Redirect(Operation op, std::string path) {
    Request r = Req(op, std::move(path), {}, "");
    return standby_->StandbyRedirect(r);
  }
  storage::MemoryStorage phys_;
  std::unique_ptr<Core> active_, standby_;
  std::string root_, key_;
};

TEST_F(StandbyTest, AStandbyServesReadsOnlyOnceLoadedAndCurrent) {
  // Holding the key only: everything goes to the active server.
  EXPECT_EQ(Redirect(Operation::kRead, "kv/a"), "https://active.test:8200");
  ASSERT_TRUE(standby_->LoadStandbyState().ok());
  EXPECT_TRUE(standby_->StandbyServing());
  // Loaded but its watch has not said it is current: still forwarded, and refused by Handle
  // itself should it get there (a request that waited while the watch went stale).
  EXPECT_EQ(Redirect(Operation::kRead, "kv/a"), "https://active.test:8200");
  EXPECT_TRUE(Core::IsStandbyWrite(Do(*standby_, Operation::kRead, "kv/a").status()));
  // Confirmed current as of two seconds ago only: too old.
  standby_->SetStandbyCurrent(Core::SteadyMillis() - 2000);
  EXPECT_EQ(Redirect(Operation::kRead, "kv/a"), "https://active.test:8200");
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  EXPECT_EQ(Redirect(Operation::kRead, "kv/a"), std::nullopt);
  standby_->SetStandbyStale();  // the watch failed
  EXPECT_EQ(Redirect(Operation::kRead, "kv/a"), "https://active.test:8200");
  EXPECT_TRUE(Core::IsStandbyWrite(Do(*standby_, Operation::kRead, "kv/a").status()));
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  // What the engine declares writes nothing (ServesOnStandby): token lookups, POSTed too.
  EXPECT_EQ(Redirect(Operation::kUpdate, "auth/token/lookup"), std::nullopt);
  EXPECT_EQ(Redirect(Operation::kList, "kv/"), std::nullopt);
  // Not declared: sent on without being tried.
  EXPECT_EQ(Redirect(Operation::kUpdate, "kv/a"), "https://active.test:8200");
  EXPECT_EQ(Redirect(Operation::kUpdate, "auth/token/create"), "https://active.test:8200");
  EXPECT_EQ(Redirect(Operation::kRead, "nomount/x"), "https://active.test:8200");
  // Never tried here: sys/ (but its own metrics), logins, deletes, wrapped answers.
  EXPECT_EQ(Redirect(Operation::kUpdate, "sys/mounts/x"), "https://active.test:8200");
  EXPECT_EQ(Redirect(Operation::kRead, "sys/metrics"), std::nullopt);
  EXPECT_EQ(Redirect(Operation::kUpdate, "auth/approle/login"), "https://active.test:8200");
  EXPECT_EQ(Redirect(Operation::kDelete, "kv/a"), "https://active.test:8200");
  Request wrapped = Req(Operation::kRead, "kv/a", {}, "");
  wrapped.wrap_ttl = 60;
  EXPECT_EQ(standby_->StandbyRedirect(wrapped), "https://active.test:8200");
  // Not declared: refused by Handle too, before anything runs (routed while active, say).
  EXPECT_TRUE(Core::IsStandbyWrite(
      Do(*standby_, Operation::kUpdate, "sys/mounts/x", {{"type", "kv"}}).status()));
  auto r = Do(*standby_, Operation::kRead, "kv/a");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(json::serialize(*r->data), R"({"v":"1"})");
}

TEST_F(StandbyTest, AWriteOnAStandbyReachesNothingAndIsMarkedForTheActiveServer) {
  ASSERT_TRUE(standby_->LoadStandbyState().ok());
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  auto w = Do(*standby_, Operation::kUpdate, "kv/b", {{"v", "2"}});
  EXPECT_TRUE(Core::IsStandbyWrite(w.status())) << w.status();
  EXPECT_EQ(Do(*active_, Operation::kRead, "kv/b").status().code(), absl::StatusCode::kNotFound);
  // A token with one use: counting the use is a write, so the read goes to the active server
  // and the use is still there for it.
  auto created = Do(*active_, Operation::kUpdate, "auth/token/create", {{"num_uses", 1}});
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string once = created->auth->at("client_token").as_string().c_str();
  auto read = Do(*standby_, Operation::kRead, "kv/a", {}, once);
  EXPECT_TRUE(Core::IsStandbyWrite(read.status())) << read.status();
  EXPECT_TRUE(Do(*active_, Operation::kRead, "kv/a", {}, once).ok());
  EXPECT_FALSE(Do(*active_, Operation::kRead, "kv/a", {}, once).ok());
  // Its tidy removes nothing: the active server's job.
  EXPECT_EQ(*standby_->TidyNow(), 0);
}

TEST_F(StandbyTest, WhatTheActiveServerChangesIsDroppedWhenInvalidated) {
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/policies/acl/reader",
                 {{"policy", R"(path "kv/*" { capabilities = ["read"] })"}})
                  .ok());
  auto created =
      Do(*active_, Operation::kUpdate, "auth/token/create", {{"policies", json::array{"reader"}}});
  ASSERT_TRUE(created.ok());
  const std::string tok = created->auth->at("client_token").as_string().c_str();
  ASSERT_TRUE(standby_->LoadStandbyState().ok());
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  ASSERT_TRUE(Do(*standby_, Operation::kRead, "kv/a", {}, tok).ok());  // cached now
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/policies/acl/reader",
                 {{"policy", R"(path "other/*" { capabilities = ["read"] })"}})
                  .ok());
  EXPECT_TRUE(Do(*standby_, Operation::kRead, "kv/a", {}, tok).ok());  // not told yet
  ASSERT_TRUE(standby_->InvalidateKey("sys/policy/reader").ok());
  EXPECT_EQ(Do(*standby_, Operation::kRead, "kv/a", {}, tok).status().code(),
            absl::StatusCode::kPermissionDenied);
  // A mount added on the active server: the standby loads the table again.
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/mounts/more",
                 {{"type", "kv"}, {"options", json::object{{"version", "1"}}}})
                  .ok());
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "more/x", {{"v", "3"}}).ok());
  EXPECT_FALSE(Do(*standby_, Operation::kRead, "more/x").ok());
  ASSERT_TRUE(standby_->InvalidateKey("core/mounts").ok());
  // Reloaded: stale until the watch has delivered what follows the reload.
  EXPECT_TRUE(Core::IsStandbyWrite(Do(*standby_, Operation::kRead, "more/x").status()));
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  auto more = Do(*standby_, Operation::kRead, "more/x");
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(json::serialize(*more->data), R"({"v":"3"})");
  // The keyring rotated: what the active server writes after it reads back here.
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/rotate").ok());
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "kv/after", {{"v", "4"}}).ok());
  ASSERT_TRUE(standby_->InvalidateKey("core/keyring").ok());
  EXPECT_TRUE(Do(*standby_, Operation::kRead, "kv/after").ok());
  // Read before being told: the barrier reloads the keyring itself on a newer term.
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "sys/rotate").ok());
  ASSERT_TRUE(Do(*active_, Operation::kUpdate, "kv/later", {{"v", "5"}}).ok());
  EXPECT_TRUE(Do(*standby_, Operation::kRead, "kv/later").ok());
}

TEST_F(StandbyTest, BecomingActiveLoadsAgainWritable) {
  ASSERT_TRUE(standby_->LoadStandbyState().ok());
  standby_->SetStandbyCurrent(Core::SteadyMillis());
  active_->StepDown();
  ASSERT_TRUE(standby_->Activate().ok());
  EXPECT_FALSE(standby_->Standby());
  EXPECT_TRUE(Do(*standby_, Operation::kUpdate, "kv/b", {{"v", "2"}}).ok());
  // The one that stepped down loads read-only again and sees it.
  ASSERT_TRUE(active_->LoadStandbyState().ok());
  active_->SetStandbyCurrent(Core::SteadyMillis());
  EXPECT_TRUE(Do(*active_, Operation::kRead, "kv/b").ok());
  EXPECT_TRUE(
      Core::IsStandbyWrite(Do(*active_, Operation::kUpdate, "kv/c", {{"v", "3"}}).status()));
}

}  // namespace
}  // namespace coffer::core
