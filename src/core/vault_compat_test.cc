// Differences from Vault that hvac's own test suite found, each kept fixed here: mount options
// in any JSON type, sys/remount, sys/unseal on an unsealed server, token lookup of an unknown
// token, response wrapping with the cubbyhole, and leases.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "boost/json.hpp"
#include "registry/test_harness.h"
#include "util/status.h"

namespace coffer::core {
namespace {
namespace json = boost::json;
using testing::CoreHarness;

class VaultCompatTest : public CoreHarness {};

std::string Str(const json::object& o, std::string_view k) {
  return std::string(o.at(k).as_string());
}

TEST_F(VaultCompatTest, MountOptionsTakeNumbersAndBooleansAsVaultDoes) {
  // hvac sends {"version": 1} (a number); Vault stores the options as strings.
  Must(Operation::kUpdate, "sys/mounts/kvnum", {{"type", "kv"}, {"options", {{"version", 1}}}});
  auto read = Must(Operation::kRead, "sys/mounts/kvnum");
  EXPECT_EQ(json::serialize(read.data->at("options")), R"({"version":"1"})");
  Must(Operation::kUpdate, "sys/mounts/kvbool", {{"type", "kv"}, {"options", {{"x", true}}}});
  EXPECT_EQ(Str(Must(Operation::kRead, "sys/mounts/kvbool").data->at("options").as_object(), "x"),
            "true");
  // What cannot be an option's value is refused with the option's name.
  auto nested = Do(Operation::kUpdate, "sys/mounts/kvbad",
                   {{"type", "kv"}, {"options", {{"version", json::array{1}}}}});
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(HttpStatusFor(nested.status()), 400);
  EXPECT_NE(nested.status().message().find("options.version"), std::string::npos);
  auto word = Do(Operation::kUpdate, "sys/mounts/kvbad",
                 {{"type", "kv"}, {"options", {{"version", "two"}}}});
  ASSERT_FALSE(word.ok());
  EXPECT_NE(word.status().message().find("whole number"), std::string::npos);
  EXPECT_EQ(HttpStatusFor(Do(Operation::kRead, "sys/mounts/kvbad").status()), 404);
}

TEST_F(VaultCompatTest, RemountMovesTheMountWithItsData) {
  Must(Operation::kUpdate, "sys/mounts/old", {{"type", "kv"}});
  Must(Operation::kUpdate, "old/app", {{"password", "s3cr3t"}});
  auto moved = Must(Operation::kUpdate, "sys/remount", {{"from", "old"}, {"to", "new/place"}});
  const std::string id = Str(*moved.data, "migration_id");
  EXPECT_EQ(Str(Must(Operation::kRead, "new/place/app").data.value(), "password"), "s3cr3t");
  EXPECT_EQ(HttpStatusFor(Do(Operation::kRead, "old/app").status()), 404);
  auto status = Must(Operation::kRead, "sys/remount/status/" + id);
  const auto& info = status.data->at("migration_info").as_object();
  EXPECT_EQ(Str(info, "source_mount"), "old/");
  EXPECT_EQ(Str(info, "target_mount"), "new/place/");
  EXPECT_EQ(Str(info, "status"), "success");
  // The table is stored: still there after a restart.
  Restart();
  EXPECT_EQ(Str(Must(Operation::kRead, "new/place/app").data.value(), "password"), "s3cr3t");
  // Refused: a reserved target, a taken one, a missing source, built-ins.
  Must(Operation::kUpdate, "sys/mounts/other", {{"type", "kv"}});
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{"new/place", "sys/x"},
                                                        {"new/place", "other"},
                                                        {"nothing", "x"},
                                                        {"cubbyhole", "x"},
                                                        {"new/place", "auth/x"}}) {
    auto r = Do(Operation::kUpdate, "sys/remount", {{"from", from}, {"to", to}});
    ASSERT_FALSE(r.ok()) << from << " -> " << to;
    EXPECT_EQ(HttpStatusFor(r.status()), 400) << from << " -> " << to << ": " << r.status();
  }
  EXPECT_EQ(Str(Must(Operation::kRead, "new/place/app").data.value(), "password"), "s3cr3t");
}

TEST_F(VaultCompatTest, RemountNeedsSudo) {
  Must(Operation::kUpdate, "sys/mounts/old", {{"type", "kv"}});
  auto t = TokenFor(R"(path "sys/remount" { capabilities = ["update"] })");
  auto r = Do(Operation::kUpdate, "sys/remount", {{"from", "old"}, {"to", "new"}}, t);
  EXPECT_EQ(HttpStatusFor(r.status()), 403);
}

TEST_F(VaultCompatTest, UnsealOnAnUnsealedServerAnswersTheStatus) {
  auto r = Do(Operation::kUpdate, "sys/unseal", {{"key", "not-even-a-key"}});
  ASSERT_TRUE(r.ok()) << r.status();
  auto v = json::parse(r->raw_body).as_object();
  EXPECT_FALSE(v.at("sealed").as_bool());
  EXPECT_EQ(v.at("t").as_int64(), 1);
}

TEST_F(VaultCompatTest, LookingUpAnUnknownTokenIsForbidden) {
  auto r = Do(Operation::kUpdate, "auth/token/lookup", {{"token", "hvs.doesnotexist"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 403);
}

// --- Response wrapping -------------------------------------------------------------------

TEST_F(VaultCompatTest, AWrappedSecretUnwrapsOnceOnly) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"db", "hunter2"}}, std::nullopt, {}, 120);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(w->wrap_info);
  EXPECT_FALSE(w->data);
  const auto& info = *w->wrap_info;
  EXPECT_EQ(info.at("ttl").as_int64(), 120);
  EXPECT_EQ(Str(info, "creation_path"), "sys/wrapping/wrap");
  const std::string wt = Str(info, "token");
  // Lookup does not spend it.
  auto look = Must(Operation::kUpdate, "sys/wrapping/lookup", {{"token", wt}}, "");
  EXPECT_EQ(Str(*look.data, "creation_path"), "sys/wrapping/wrap");
  EXPECT_EQ(look.data->at("creation_ttl").as_int64(), 120);
  // Unwrapped with the wrapping token as the client token (no other token needed).
  auto u = Must(Operation::kUpdate, "sys/wrapping/unwrap", {}, wt);
  EXPECT_EQ(Str(*u.data, "db"), "hunter2");
  // A second time: refused, by any route.
  auto again = Do(Operation::kUpdate, "sys/wrapping/unwrap", {}, wt);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(HttpStatusFor(again.status()), 400);
  EXPECT_EQ(again.status().message(), "wrapping token is not valid or does not exist");
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}).ok());
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/wrapping/lookup", {{"token", wt}}, "").ok());
  // Nothing of it is left in storage.
  EXPECT_TRUE(PhysicalKeys(std::string(kCubbyholePrefix)).empty());
}

TEST_F(VaultCompatTest, ConcurrentUnwrapsLetExactlyOneThrough) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 60);
  ASSERT_TRUE(w.ok());
  const std::string wt = Str(*w->wrap_info, "token");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      if (Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}).ok()) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
}

TEST_F(VaultCompatTest, AWrappingTokenExpiresAtItsTtl) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 30);
  ASSERT_TRUE(w.ok());
  const std::string wt = Str(*w->wrap_info, "token");
  clock_.Advance(absl::Seconds(29));
  EXPECT_TRUE(Do(Operation::kUpdate, "sys/wrapping/lookup", {{"token", wt}}, "").ok());
  clock_.Advance(absl::Seconds(2));
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}).ok());
  // The tidy revokes it, and revoking deletes the wrapped response's bytes.
  EXPECT_FALSE(PhysicalKeys(std::string(kCubbyholePrefix)).empty());
  ASSERT_TRUE(core_->TidyNow().ok());
  EXPECT_TRUE(PhysicalKeys(std::string(kCubbyholePrefix)).empty());
}

TEST_F(VaultCompatTest, WrapTtlHeaderWrapsAnyResponse) {
  // A token created with wrapping: the client token is never in the response.
  auto c = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"default"}}},
              std::nullopt, {}, 60);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->auth);
  ASSERT_TRUE(c->wrap_info);
  EXPECT_EQ(Str(*c->wrap_info, "creation_path"), "auth/token/create");
  const std::string accessor = Str(*c->wrap_info, "wrapped_accessor");
  auto u =
      Must(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", Str(*c->wrap_info, "token")}});
  ASSERT_TRUE(u.auth);
  EXPECT_EQ(Str(*u.auth, "accessor"), accessor);
  const std::string client = Str(*u.auth, "client_token");
  EXPECT_TRUE(Do(Operation::kRead, "auth/token/lookup-self", {}, client).ok());
  // A kv read, wrapped.
  Must(Operation::kUpdate, "sys/mounts/kv", {{"type", "kv"}});
  Must(Operation::kUpdate, "kv/a", {{"x", "1"}});
  auto r = Do(Operation::kRead, "kv/a", {}, std::nullopt, {}, 60);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->wrap_info);
  EXPECT_FALSE(r->data);
  auto back =
      Must(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", Str(*r->wrap_info, "token")}});
  EXPECT_EQ(Str(*back.data, "x"), "1");
  // An empty (204) answer has nothing to wrap.
  auto none = Do(Operation::kUpdate, "kv/b", {{"y", "2"}}, std::nullopt, {}, 60);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->wrap_info);
}

TEST_F(VaultCompatTest, RewrapGivesANewTokenAndSpendsTheOld) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 90);
  ASSERT_TRUE(w.ok());
  const std::string old = Str(*w->wrap_info, "token");
  auto rw = Do(Operation::kUpdate, "sys/wrapping/rewrap", {{"token", old}});
  ASSERT_TRUE(rw.ok()) << rw.status();
  ASSERT_TRUE(rw->wrap_info);
  const std::string fresh = Str(*rw->wrap_info, "token");
  EXPECT_NE(fresh, old);
  EXPECT_EQ(rw->wrap_info->at("ttl").as_int64(), 90);
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", old}}).ok());
  EXPECT_EQ(Str(*Must(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", fresh}}).data, "k"),
            "v");
}

TEST_F(VaultCompatTest, UnwrappingForSomeoneElseNeedsAValidTokenOfOurOwn) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 60);
  ASSERT_TRUE(w.ok());
  const std::string wt = Str(*w->wrap_info, "token");
  auto bad = Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}, "hvs.notatoken");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(HttpStatusFor(bad.status()), 403);
  // The failed attempt did not spend it.
  EXPECT_TRUE(Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}).ok());
}

TEST_F(VaultCompatTest, AnOrdinaryTokenIsNotAWrappingToken) {
  auto c = Must(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"default"}}});
  auto r = Do(Operation::kUpdate, "sys/wrapping/unwrap", {}, Str(*c.auth, "client_token"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 400);
}

TEST_F(VaultCompatTest, TheCubbyholeIsPrivateToItsTokenAndDiesWithIt) {
  auto a = Str(
      *Must(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"default"}}}).auth,
      "client_token");
  auto b = Str(
      *Must(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"default"}}}).auth,
      "client_token");
  Must(Operation::kUpdate, "cubbyhole/note", {{"text", "mine"}}, a);
  EXPECT_EQ(Str(*Must(Operation::kRead, "cubbyhole/note", {}, a).data, "text"), "mine");
  EXPECT_EQ(HttpStatusFor(Do(Operation::kRead, "cubbyhole/note", {}, b).status()), 404);
  EXPECT_EQ(json::serialize(Must(Operation::kList, "cubbyhole/", {}, a).data->at("keys")),
            R"(["note"])");
  EXPECT_EQ(PhysicalKeys(std::string(kCubbyholePrefix)).size(), 1u);
  Must(Operation::kUpdate, "auth/token/revoke", {{"token", a}});
  EXPECT_TRUE(PhysicalKeys(std::string(kCubbyholePrefix)).empty());
  // Listed as Vault lists it, and not removable.
  auto mounts = Must(Operation::kRead, "sys/mounts");
  EXPECT_EQ(Str(mounts.data->at("cubbyhole/").as_object(), "type"), "cubbyhole");
  EXPECT_FALSE(Do(Operation::kDelete, "sys/mounts/cubbyhole").ok());
}

// --- Leases ------------------------------------------------------------------------------

class LeaseTest : public CoreHarness {
 protected:
  void SetUp() override {
    CoreHarness::SetUp();
    Must(Operation::kUpdate, "sys/mounts/pki", {{"type", "pki"}});
    Must(Operation::kUpdate, "pki/root/generate/internal",
         {{"common_name", "hvac.com"}, {"ttl", "8760h"}, {"key_type", "ec"}});
    Must(Operation::kUpdate, "pki/roles/my-role",
         {{"allowed_domains", "hvac.com"},
          {"allow_subdomains", true},
          {"generate_lease", true},
          {"key_type", "ec"},
          {"ttl", "1h"}});
  }
  // Issues a certificate; returns {lease_id, serial_number}.
  std::pair<std::string, std::string> Issue() {
    auto r = Must(Operation::kUpdate, "pki/issue/my-role", {{"common_name", "test.hvac.com"}});
    return {r.lease_id, r.data ? Str(*r.data, "serial_number") : ""};
  }
  bool Revoked(const std::string& serial) {
    auto c = Must(Operation::kRead, "pki/cert/" + serial);
    return c.data && c.data->at("revocation_time").to_number<int64_t>() > 0;
  }
};

TEST_F(LeaseTest, AnIssuedCertificateHasALeaseToLookUpAndList) {
  auto r = Must(Operation::kUpdate, "pki/issue/my-role", {{"common_name", "test.hvac.com"}});
  ASSERT_EQ(r.lease_id.rfind("pki/issue/my-role/", 0), 0u) << r.lease_id;
  EXPECT_EQ(r.lease_duration, 3600);
  EXPECT_FALSE(r.renewable);
  auto look = Must(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", r.lease_id}});
  EXPECT_EQ(Str(*look.data, "id"), r.lease_id);
  EXPECT_EQ(look.data->at("ttl").as_int64(), 3600);
  EXPECT_FALSE(look.data->at("renewable").as_bool());
  EXPECT_EQ(json::serialize(Must(Operation::kList, "sys/leases/lookup/pki/").data->at("keys")),
            R"(["issue/"])");
  // A role without generate_lease: no lease.
  Must(Operation::kUpdate, "pki/roles/plain", {{"allow_any_name", true}, {"key_type", "ec"}});
  EXPECT_TRUE(Must(Operation::kUpdate, "pki/issue/plain", {{"common_name", "x"}}).lease_id.empty());
  // Unknown lease: 400.
  auto bad = Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", "pki/issue/my-role/nope"}});
  EXPECT_EQ(HttpStatusFor(bad.status()), 400);
  // Listing leases needs sudo.
  auto t = TokenFor(R"(path "sys/leases/lookup/*" { capabilities = ["list"] })");
  EXPECT_EQ(HttpStatusFor(Do(Operation::kList, "sys/leases/lookup/pki/", {}, t).status()), 403);
}

TEST_F(LeaseTest, RevokingTheLeaseRevokesTheCertificate) {
  auto [lease, serial] = Issue();
  EXPECT_FALSE(Revoked(serial));
  Must(Operation::kUpdate, "sys/leases/revoke", {{"lease_id", lease}});
  EXPECT_TRUE(Revoked(serial));
  EXPECT_EQ(HttpStatusFor(Do(Operation::kList, "sys/leases/lookup/pki/").status()), 404);
  EXPECT_TRUE(PhysicalKeys("sys/expire/").empty());
}

TEST_F(LeaseTest, RevokePrefixAndForce) {
  auto [l1, s1] = Issue();
  auto [l2, s2] = Issue();
  auto [l3, s3] = Issue();
  // A prefix naming one lease exactly revokes that one.
  Must(Operation::kUpdate, "sys/leases/revoke-prefix/" + l1);
  EXPECT_TRUE(Revoked(s1));
  EXPECT_FALSE(Revoked(s2));
  // hvac sends the prefix in the body too.
  Must(Operation::kUpdate, "sys/leases/revoke-prefix/pki/issue", {{"prefix", "pki/issue"}});
  EXPECT_TRUE(Revoked(s2));
  EXPECT_TRUE(Revoked(s3));
  auto [l4, s4] = Issue();
  Must(Operation::kUpdate, "sys/leases/revoke-force/pki/");
  EXPECT_TRUE(Revoked(s4));
  EXPECT_TRUE(PhysicalKeys("sys/expire/").empty());
  // Both need sudo.
  auto t = TokenFor(R"(path "sys/leases/*" { capabilities = ["update"] })");
  EXPECT_EQ(HttpStatusFor(Do(Operation::kUpdate, "sys/leases/revoke-prefix/pki/", {}, t).status()),
            403);
}

TEST_F(LeaseTest, ALeaseExpiresOnTimeEvenAcrossARestart) {
  auto [lease, serial] = Issue();
  clock_.Advance(absl::Minutes(59));
  ASSERT_TRUE(core_->TidyNow().ok());
  EXPECT_FALSE(Revoked(serial));
  EXPECT_TRUE(Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", lease}}).ok());
  Restart();
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(core_->TidyNow().ok());
  // The lease lives as long as the certificate: at expiry there is nothing left to put on the
  // CRL (Vault's behaviour too), and the lease is gone.
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", lease}}).ok());
  EXPECT_TRUE(PhysicalKeys("sys/expire/").empty());
}

TEST_F(LeaseTest, ANonRenewableLeaseIsNotRenewed) {
  auto [lease, serial] = Issue();
  auto r = Do(Operation::kUpdate, "sys/leases/renew", {{"lease_id", lease}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 400);
  EXPECT_NE(r.status().message().find("not renewable"), std::string::npos);
}

TEST_F(LeaseTest, DisablingTheMountDropsItsLeases) {
  Issue();
  EXPECT_FALSE(PhysicalKeys("sys/expire/").empty());
  Must(Operation::kDelete, "sys/mounts/pki");
  EXPECT_TRUE(PhysicalKeys("sys/expire/").empty());
}

}  // namespace
}  // namespace coffer::core

namespace coffer::core {
namespace {

// --- Tuning a kv mount from version 1 to 2 -------------------------------------------------

TEST_F(VaultCompatTest, TuningKvToVersion2KeepsEverySecret) {
  Must(Operation::kUpdate, "sys/mounts/app", {{"type", "kv"}});
  Must(Operation::kUpdate, "app/db", {{"password", "s3cr3t"}});
  Must(Operation::kUpdate, "app/team/api", {{"key", "k1"}});
  // A v1 secret whose name is one of v2's own path prefixes survives as that secret.
  Must(Operation::kUpdate, "app/metadata/x", {{"v", "odd"}});
  auto tuned = Must(Operation::kUpdate, "sys/mounts/app/tune", {{"options", {{"version", 2}}}});
  ASSERT_EQ(tuned.warnings.size(), 1u);
  EXPECT_NE(tuned.warnings[0].find("Upgrading mount from version 1 to version 2"),
            std::string::npos);
  EXPECT_EQ(json::serialize(Must(Operation::kRead, "sys/mounts/app").data->at("options")),
            R"({"version":"2"})");
  for (const auto& [path, key, value] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"db", "password", "s3cr3t"}, {"team/api", "key", "k1"}, {"metadata/x", "v", "odd"}}) {
    auto r = Do(Operation::kRead, "app/data/" + path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(Str(r->data->at("data").as_object(), key), value) << path;
    EXPECT_EQ(r->data->at("metadata").at("version").as_int64(), 1) << path;
  }
  // The old paths are v2's now; a restart keeps the converted mount.
  Restart();
  EXPECT_EQ(Str(Must(Operation::kRead, "app/data/db").data->at("data").as_object(), "password"),
            "s3cr3t");
  // No way back.
  auto down = Do(Operation::kUpdate, "sys/mounts/app/tune", {{"options", {{"version", "1"}}}});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(HttpStatusFor(down.status()), 400);
  EXPECT_NE(down.status().message().find("cannot downgrade"), std::string::npos);
}

TEST_F(VaultCompatTest, WritesAcknowledgedDuringTheUpgradeAreNotLost) {
  Must(Operation::kUpdate, "sys/mounts/app", {{"type", "kv"}});
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::string>> acked(4);
  std::vector<std::thread> writers;
  writers.reserve(4);
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
        // A v1 write: once the mount is version 2 this path is refused, and nothing is acked.
        // (Version 2 answers it with a 404 and a warning, as Vault.)
        auto r = Do(Operation::kUpdate, "app/" + key, {{"n", key}});
        if (r.ok() && r->http_status == 0) acked[w].push_back(key);
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Must(Operation::kUpdate, "sys/mounts/app/tune", {{"options", {{"version", "2"}}}});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  for (auto& t : writers) t.join();
  size_t total = 0;
  for (const auto& keys : acked) {
    total += keys.size();
    for (const auto& key : keys) {
      auto r = Do(Operation::kRead, "app/data/" + key);
      ASSERT_TRUE(r.ok()) << key << " was acknowledged and is gone: " << r.status();
      EXPECT_EQ(Str(r->data->at("data").as_object(), "n"), key);
    }
  }
  EXPECT_GT(total, 0u);
}

}  // namespace
}  // namespace coffer::core

namespace coffer::core {
namespace {

// --- Found in review -----------------------------------------------------------------------

TEST_F(VaultCompatTest, ADefaultPolicyTokenUnwrapsSomeoneElsesWrappingToken) {
  auto w = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 60);
  ASSERT_TRUE(w.ok());
  const std::string wt = Str(*w->wrap_info, "token");
  auto user = Str(
      *Must(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"default"}}}).auth,
      "client_token");
  auto look = Do(Operation::kUpdate, "sys/wrapping/lookup", {{"token", wt}}, user);
  EXPECT_TRUE(look.ok()) << look.status();
  auto u = Do(Operation::kUpdate, "sys/wrapping/unwrap", {{"token", wt}}, user);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(Str(*u->data, "k"), "v");
  // rewrap is not in the default policy (as in Vault).
  auto w2 = Do(Operation::kUpdate, "sys/wrapping/wrap", {{"k", "v"}}, std::nullopt, {}, 60);
  auto rw = Do(Operation::kUpdate, "sys/wrapping/rewrap", {{"token", Str(*w2->wrap_info, "token")}},
               user);
  EXPECT_EQ(HttpStatusFor(rw.status()), 403);
}

TEST_F(VaultCompatTest, WithoutATokenOnlyLoginsAreWrapped) {
  Must(Operation::kUpdate, "sys/mounts/pki", {{"type", "pki"}});
  Must(Operation::kUpdate, "pki/root/generate/internal",
       {{"common_name", "R"}, {"key_type", "ec"}});
  auto r = Do(Operation::kRead, "pki/cert/ca", {}, "", {}, 3600);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 400);
  EXPECT_TRUE(PhysicalKeys(std::string(kCubbyholePrefix)).empty());
  // An AppRole login is wrapped.
  Must(Operation::kUpdate, "sys/auth/approle", {{"type", "approle"}});
  Must(Operation::kUpdate, "auth/approle/role/r", {{"token_policies", "default"}});
  auto role_id = Str(*Must(Operation::kRead, "auth/approle/role/r/role-id").data, "role_id");
  auto secret_id =
      Str(*Must(Operation::kUpdate, "auth/approle/role/r/secret-id").data, "secret_id");
  auto login = Do(Operation::kUpdate, "auth/approle/login",
                  {{"role_id", role_id}, {"secret_id", secret_id}}, "", {}, 60);
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_TRUE(login->wrap_info);
  EXPECT_FALSE(login->auth);
}

TEST_F(VaultCompatTest, TheResponseWrappingPolicyIsReserved) {
  EXPECT_EQ(HttpStatusFor(Do(Operation::kUpdate, "sys/policies/acl/response-wrapping",
                             {{"policy", R"(path "*" { capabilities = ["read"] })"}})
                              .status()),
            400);
  EXPECT_EQ(HttpStatusFor(Do(Operation::kDelete, "sys/policies/acl/response-wrapping").status()),
            400);
}

TEST_F(VaultCompatTest, UiMountsAnswersCallersWithAccessOnly) {
  Must(Operation::kUpdate, "sys/mounts/kv", {{"type", "kv"}, {"options", {{"version", "2"}}}});
  Must(Operation::kUpdate, "sys/mounts/other", {{"type", "kv"}});
  auto t = TokenFor(R"(path "kv/data/app/*" { capabilities = ["read"] })");
  auto r = Do(Operation::kRead, "sys/internal/ui/mounts/kv/app/db", {}, t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Str(*r->data, "path"), "kv/");
  EXPECT_EQ(Str(r->data->at("options").as_object(), "version"), "2");
  EXPECT_EQ(HttpStatusFor(Do(Operation::kRead, "sys/internal/ui/mounts/other/x", {}, t).status()),
            403);
  EXPECT_EQ(HttpStatusFor(Do(Operation::kRead, "sys/internal/ui/mounts/kv/x", {}, "").status()),
            403);
  // A mount that does not exist answers as one the caller cannot see: guessing lists nothing.
  const auto missing = Do(Operation::kRead, "sys/internal/ui/mounts/no-such-mount/x", {}, t);
  EXPECT_EQ(HttpStatusFor(missing.status()), 403);
  EXPECT_EQ(missing.status().message(), "permission denied");
}

TEST_F(LeaseTest, ListIsOnlyForLookup) {
  auto [lease, serial] = Issue();
  auto r = Do(Operation::kList, "sys/leases/revoke/", {{"lease_id", lease}});
  EXPECT_EQ(HttpStatusFor(r.status()), 405);
  EXPECT_FALSE(Revoked(serial));
}

TEST_F(LeaseTest, RevokingATokenRevokesItsLeases) {
  auto t = TokenFor(R"(path "pki/issue/*" { capabilities = ["update"] })");
  auto r = Must(Operation::kUpdate, "pki/issue/my-role", {{"common_name", "a.hvac.com"}}, t);
  const std::string serial = Str(*r.data, "serial_number");
  EXPECT_FALSE(Revoked(serial));
  Must(Operation::kUpdate, "auth/token/revoke", {{"token", t}});
  ASSERT_TRUE(core_->TidyNow().ok());
  EXPECT_TRUE(Revoked(serial));
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", r.lease_id}}).ok());
  EXPECT_TRUE(PhysicalKeys("sys/expire/").empty());
}

TEST_F(LeaseTest, RemountMovesTheLeases) {
  auto [lease, serial] = Issue();
  Must(Operation::kUpdate, "sys/remount", {{"from", "pki"}, {"to", "pki2"}});
  const std::string moved = "pki2/" + lease.substr(4);
  EXPECT_TRUE(Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", moved}}).ok());
  EXPECT_FALSE(Do(Operation::kUpdate, "sys/leases/lookup", {{"lease_id", lease}}).ok());
  Must(Operation::kUpdate, "sys/leases/revoke", {{"lease_id", moved}});
  auto c = Must(Operation::kRead, "pki2/cert/" + serial);
  EXPECT_GT(c.data->at("revocation_time").to_number<int64_t>(), 0);
}

TEST_F(LeaseTest, ANoStoreCertificateIsRevokedThroughItsLease) {
  Must(
      Operation::kUpdate, "pki/roles/ephemeral",
      {{"allow_any_name", true}, {"generate_lease", true}, {"no_store", true}, {"key_type", "ec"}});
  auto r = Must(Operation::kUpdate, "pki/issue/ephemeral", {{"common_name", "x"}});
  Must(Operation::kUpdate, "sys/leases/revoke", {{"lease_id", r.lease_id}});
  auto revoked = Must(Operation::kList, "pki/certs/revoked");
  std::string serial = Str(*r.data, "serial_number");
  for (char& c : serial)
    if (c == ':') c = '-';
  EXPECT_NE(json::serialize(revoked.data->at("keys")).find(serial), std::string::npos);
}

}  // namespace
}  // namespace coffer::core

namespace coffer::core {
namespace {

TEST_F(VaultCompatTest, ATuneTheEngineRefusesLeavesTheMountAsItWas) {
  Must(Operation::kUpdate, "sys/mounts/app", {{"type", "kv"}});
  Must(Operation::kUpdate, "app/db", {{"password", "s3cr3t"}});
  auto bad = Do(Operation::kUpdate, "sys/mounts/app/tune", {{"options", {{"version", 3}}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(HttpStatusFor(bad.status()), 400);
  EXPECT_NE(bad.status().message().find("unknown kv version"), std::string::npos);
  // Served by a fresh instance of the old engine, with the old entry, also after a restart.
  EXPECT_EQ(Str(*Must(Operation::kRead, "app/db").data, "password"), "s3cr3t");
  EXPECT_TRUE(Must(Operation::kRead, "sys/mounts/app").data->at("options").is_null());
  Restart();
  EXPECT_EQ(Str(*Must(Operation::kRead, "app/db").data, "password"), "s3cr3t");
}

}  // namespace
}  // namespace coffer::core
