// The PKI engine's lifecycle hooks: InvalidateKey drops exactly what a changed storage key
// affects (roles, issuers and keys, the default issuer, config/urls, config/crl), Initialize
// fills the caches when a mount is loaded without letting a bad record keep the server sealed,
// and Cleanup stops a running tidy. Stored records are changed behind the engine's back, as
// another node or a restore would, through Core::MountStorage.
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/x509.h"
#include "engines/pki/pki_backend.h"
#include "registry/builtin.h"
#include "registry/test_harness.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::pki {
namespace {
namespace json = boost::json;
using core::Operation;

class PkiLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    key_ = HexEncode(res->keys[0].view());
    ASSERT_TRUE(core_->Unseal(key_, false).ok());
    Ok(Operation::kUpdate, "sys/mounts/pki",
       {{"type", "pki"}, {"config", json::object{{"max_lease_ttl", "87600h"}}}});
  }
  absl::StatusOr<core::Response> Do(Operation op, std::string path, json::object data = {}) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = root_;
    return core_->Handle(r);
  }
  json::object Ok(Operation op, const std::string& path, json::object data = {}) {
    auto r = Do(op, path, std::move(data));
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    if (!r.ok() || !r->data) return {};
    return *r->data;
  }
  std::string Str(const json::object& o, std::string_view k) {
    const json::value* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : "";
  }
  // The mount's storage view, as another node writing to shared storage would see it.
  storage::Storage* View() { return core_->MountStorage("pki/"); }
  json::object Stored(std::string_view key) {
    auto raw = View()->Get(key);
    EXPECT_TRUE(raw.ok() && raw->has_value()) << key;
    return raw.ok() && raw->has_value() ? json::parse(**raw).as_object() : json::object();
  }
  void Store(std::string_view key, const json::object& o) {
    ASSERT_TRUE(View()->Put(key, json::serialize(o)).ok()) << key;
  }
  // What Core::InvalidateKey is given when a key of the mount changes: the barrier path.
  void Invalidate(std::string_view key) {
    std::string uuid = Str(Ok(Operation::kRead, "sys/mounts/pki"), "uuid");
    ASSERT_FALSE(uuid.empty());
    ASSERT_TRUE(core_->InvalidateKey("logical/" + uuid + "/" + std::string(key)).ok());
  }
  int64_t IssuedTtl() {
    auto leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
    return leaf["expiration"].as_int64() - clock_.NowUnix();
  }

  FakeClock clock_;
  storage::MemoryStorage phys_;
  std::unique_ptr<core::Core> core_;
  std::string root_, key_;
};

TEST_F(PkiLifecycleTest, InvalidateKeyDropsAChangedRole) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "pki/roles/web",
     {{"allow_any_name", true}, {"key_type", "ec"}, {"ttl", "1h"}});
  ASSERT_EQ(IssuedTtl(), 3600);  // the role is cached now

  json::object role = Stored("role/web");
  role["ttl"] = 7200;
  Store("role/web", role);
  // Cached: the old role still answers, for reads and for issuance.
  EXPECT_EQ(Ok(Operation::kRead, "pki/roles/web")["ttl"].as_int64(), 3600);
  EXPECT_EQ(IssuedTtl(), 3600);
  // Another role's key, or a certificate's, does not touch it.
  Invalidate("role/other");
  Invalidate("certs/01-02");
  EXPECT_EQ(IssuedTtl(), 3600);

  Invalidate("role/web");
  EXPECT_EQ(Ok(Operation::kRead, "pki/roles/web")["ttl"].as_int64(), 7200);
  EXPECT_EQ(IssuedTtl(), 7200);

  // A role deleted elsewhere is gone once its key is reported.
  ASSERT_TRUE(View()->Delete("role/web").ok());
  Invalidate("role/web");
  auto gone = Do(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(gone.status().message(), "unknown role: web");
}

// Which requests the HTTP server hands to its blocking pool (Admission::may_wait): writes, except
// signing and issuing on a no_store role the engine has cached, and listings; reads never.
TEST_F(PkiLifecycleTest, OnlyRequestsThatStoreMayWaitOnStorage) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  for (const char* name : {"nostore", "store"})
    Ok(Operation::kUpdate, Cat("pki/roles/", name),
       {{"allow_any_name", true},
        {"key_type", "ec"},
        {"no_store", std::string_view(name) == "nostore"}});
  auto may_wait = [&](Operation op, std::string path) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    auto a = core_->Admit(r, false);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() && a->may_wait;
  };
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/sign/nostore"));  // not cached yet: may store
  Ok(Operation::kUpdate, "pki/issue/nostore", {{"common_name", "a.example.com"}});
  Ok(Operation::kUpdate, "pki/issue/store", {{"common_name", "a.example.com"}});
  EXPECT_FALSE(may_wait(Operation::kUpdate, "pki/sign/nostore"));
  EXPECT_FALSE(may_wait(Operation::kUpdate, "pki/issue/nostore"));
  EXPECT_FALSE(may_wait(Operation::kUpdate, "pki/issuer/default/sign/nostore"));
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/sign/store"));
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/issue/store"));
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/roles/other"));
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/sign-verbatim/nostore"));
  EXPECT_FALSE(may_wait(Operation::kRead, "pki/cert/ca"));
  EXPECT_TRUE(may_wait(Operation::kList, "pki/certs"));  // a listing may walk many keys
  EXPECT_TRUE(may_wait(Operation::kUpdate, "sys/policies/acl/x"));
  EXPECT_FALSE(may_wait(Operation::kRead, "sys/mounts"));
  // A lease is stored even when the certificate is not.
  Ok(Operation::kUpdate, "pki/roles/nostore",
     {{"allow_any_name", true}, {"key_type", "ec"}, {"no_store", true}, {"generate_lease", true}});
  Ok(Operation::kUpdate, "pki/issue/nostore", {{"common_name", "a.example.com"}});
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/sign/nostore"));
  // The role starts storing: its cached copy is dropped, so signing may wait again.
  Ok(Operation::kUpdate, "pki/roles/nostore",
     {{"allow_any_name", true}, {"key_type", "ec"}, {"no_store", false}});
  EXPECT_TRUE(may_wait(Operation::kUpdate, "pki/sign/nostore"));
}

TEST_F(PkiLifecycleTest, InvalidateKeyDropsADifferentDefaultIssuer) {
  auto first = Ok(Operation::kUpdate, "pki/root/generate/internal",
                  {{"common_name", "Root 1"}, {"key_type", "ec"}, {"issuer_name", "one"}});
  auto second = Ok(Operation::kUpdate, "pki/root/rotate/internal",
                   {{"common_name", "Root 2"}, {"key_type", "ec"}, {"issuer_name", "two"}});
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto issuing_ca = [&] {
    return Str(Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}}),
               "issuing_ca");
  };
  ASSERT_EQ(issuing_ca(), Str(first, "certificate"));

  Store("config/issuers",
        {{"default", second["issuer_id"]}, {"default_follows_latest_issuer", false}});
  EXPECT_EQ(issuing_ca(), Str(first, "certificate"));  // cached
  // Roles, URLs and the CRL configuration are other caches.
  Invalidate("role/web");
  Invalidate("config/urls");
  Invalidate("config/crl");
  EXPECT_EQ(issuing_ca(), Str(first, "certificate"));
  EXPECT_EQ(Ok(Operation::kRead, "pki/config/issuers")["default"], first["issuer_id"]);

  Invalidate("config/issuers");
  EXPECT_EQ(issuing_ca(), Str(second, "certificate"));
  EXPECT_EQ(Ok(Operation::kRead, "pki/config/issuers")["default"], second["issuer_id"]);
  auto ca = Do(Operation::kRead, "pki/ca/pem");
  ASSERT_TRUE(ca.ok());
  EXPECT_EQ(ca->raw_body, Str(second, "certificate") + "\n");
}

TEST_F(PkiLifecycleTest, InvalidateKeyDropsAChangedIssuerAndKey) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Root"}, {"key_type", "ec"}, {"ttl", "10h"}});
  const std::string issuer_id = Str(root, "issuer_id"), key_id = Str(root, "key_id");
  Ok(Operation::kUpdate, "pki/roles/web",
     {{"allow_any_name", true}, {"key_type", "ec"}, {"ttl", "24h"}});
  ASSERT_FALSE(Do(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}}).ok())
      << "a leaf may not outlive the CA under leaf_not_after_behavior err";

  json::object issuer = Stored("issuer/" + issuer_id);
  issuer["leaf_not_after_behavior"] = "truncate";
  Store("issuer/" + issuer_id, issuer);
  json::object key = Stored("key/" + key_id);
  key["key_name"] = "renamed";
  Store("key/" + key_id, key);
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/issuer/default"), "leaf_not_after_behavior"), "err");
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/key/" + key_id), "key_name"), "");

  Invalidate("issuer/" + issuer_id);
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/issuer/default"), "leaf_not_after_behavior"), "truncate");
  auto leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["expiration"], root["expiration"]);
  // Issuers and keys are loaded together: the key's change is in as well (a key/ change alone
  // drops them too, checked next).
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/key/" + key_id), "key_name"), "renamed");
  key["key_name"] = "again";
  Store("key/" + key_id, key);
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/key/" + key_id), "key_name"), "renamed");
  Invalidate("key/" + key_id);
  EXPECT_EQ(Str(Ok(Operation::kRead, "pki/key/again"), "key_id"), key_id);
}

TEST_F(PkiLifecycleTest, InvalidateKeyDropsUrlAndCrlConfiguration) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "pki/config/urls", {{"issuing_certificates", "http://a.example/ca"}});
  Ok(Operation::kUpdate, "pki/config/crl", {{"expiry", "48h"}});
  auto urls = [&] {
    return json::serialize(Ok(Operation::kRead, "pki/config/urls")["issuing_certificates"]);
  };
  auto expiry = [&] { return Str(Ok(Operation::kRead, "pki/config/crl"), "expiry"); };
  ASSERT_EQ(urls(), R"(["http://a.example/ca"])");
  ASSERT_EQ(expiry(), "48h");

  Store("config/urls", {{"issuing_certificates", json::array{"http://b.example/ca"}},
                        {"crl_distribution_points", json::array()},
                        {"ocsp_servers", json::array()}});
  json::object crl = Stored("config/crl");
  crl["expiry"] = 24 * 3600;
  Store("config/crl", crl);
  EXPECT_EQ(urls(), R"(["http://a.example/ca"])");
  EXPECT_EQ(expiry(), "48h");

  Invalidate("config/crl");  // the CRL configuration only
  EXPECT_EQ(urls(), R"(["http://a.example/ca"])");
  EXPECT_EQ(expiry(), "24h");

  Invalidate("config/urls");
  EXPECT_EQ(urls(), R"(["http://b.example/ca"])");
  // Issued certificates carry the new URL.
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  auto cert = crypto::ParseCertPem(Str(leaf, "certificate"));
  ASSERT_TRUE(cert.ok());
  auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(
      X509_get_ext_d2i(cert->get(), NID_info_access, nullptr, nullptr));
  ASSERT_NE(aia, nullptr);
  ASSERT_EQ(sk_ACCESS_DESCRIPTION_num(aia), 1);
  const GENERAL_NAME* where = sk_ACCESS_DESCRIPTION_value(aia, 0)->location;
  ASSERT_EQ(where->type, GEN_URI);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(
                            ASN1_STRING_get0_data(where->d.uniformResourceIdentifier)),
                        ASN1_STRING_length(where->d.uniformResourceIdentifier)),
            "http://b.example/ca");
  AUTHORITY_INFO_ACCESS_free(aia);
}

TEST_F(PkiLifecycleTest, InitializeLoadsTheIssuersWhenTheMountIsLoaded) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Root"}, {"key_type", "ec"}});
  // Seal and unseal: the mount's backend is built again, and Initialize() loads the issuers
  // before any request.
  ASSERT_TRUE(core_->Seal().ok());
  ASSERT_TRUE(core_->Unseal(key_, false).ok());
  // Take them out of storage before the first request: they are served from what Initialize
  // loaded (without it, the first request would load an empty mount).
  ASSERT_TRUE(View()->Delete("issuer/" + Str(root, "issuer_id")).ok());
  ASSERT_TRUE(View()->Delete("key/" + Str(root, "key_id")).ok());
  ASSERT_TRUE(View()->Delete("config/issuers").ok());
  auto ca = Do(Operation::kRead, "pki/ca/pem");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ca->raw_body, Str(root, "certificate") + "\n");
}

TEST_F(PkiLifecycleTest, ABadIssuerRecordDoesNotKeepTheServerSealed) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  ASSERT_TRUE(View()->Put("issuer/broken", "not json").ok());
  ASSERT_TRUE(core_->Seal().ok());
  // Initialize() cannot load the issuers; the mount loads anyway ...
  ASSERT_TRUE(core_->Unseal(key_, false).ok());
  // ... and the requests that need the issuers report the record, as before.
  auto ca = Do(Operation::kRead, "pki/ca/pem");
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ca.status().message(), "stored issuer/broken is not JSON");
  // Other paths still work.
  EXPECT_TRUE(Do(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}}).ok());
}

// A storage whose deletes are slow, counting the operations it serves.
class SlowStorage final : public storage::Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    ++ops;
    return mem_.Get(key);
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    ++ops;
    return mem_.Put(key, value);
  }
  absl::Status Delete(std::string_view key) override {
    ++ops;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return mem_.Delete(key);
  }
  absl::Status Write(std::vector<storage::WriteOp> w) override {
    ++ops;
    return mem_.Write(std::move(w));
  }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix, std::string_view after,
                                                size_t limit) override {
    ++ops;
    return mem_.List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    ++ops;
    return mem_.DeletePrefix(prefix);
  }
  std::string_view Type() const override { return "slow"; }

  std::atomic<int> ops{0};

 private:
  storage::MemoryStorage mem_;
};

TEST(PkiCleanupTest, CleanupStopsARunningTidy) {
  SlowStorage store;
  FakeClock clock;
  core::BackendConfig cfg;
  cfg.entry.path = "pki/";
  cfg.entry.type = "pki";
  cfg.storage = &store;
  cfg.clock = &clock;
  auto backend = Factory(cfg);
  ASSERT_TRUE(backend.ok());
  ASSERT_TRUE((*backend)->Initialize().ok());
  // 300 expired certificates: tidy deletes them one by one, 2 ms each.
  constexpr int kCerts = 300;
  for (int i = 0; i < kCerts; ++i) {
    char serial[16];
    std::snprintf(serial, sizeof(serial), "01-%02x-%02x", i / 256, i % 256);
    ASSERT_TRUE(store
                    .Put(std::string("certs/") + serial,
                         json::serialize(json::object{{"der", ""}, {"not_after", 1}}))
                    .ok());
  }
  auto call = [&](Operation op, std::string path, json::object data = {}) {
    return coffer::testing::BackendRequest(**backend, store, op, std::move(path), std::move(data));
  };
  auto started = call(Operation::kUpdate, "tidy", {{"tidy_cert_store", true}});
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_EQ(started->http_status, 202);
  auto deleted = [&] {
    auto st = call(Operation::kRead, "tidy-status");
    return st.ok() ? st->data->at("cert_store_deleted_count").as_int64() : -1;
  };
  const int before = store.ops;
  for (int i = 0; i < 1000 && store.ops < before + 10; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));

  (*backend)->Cleanup();
  // The tidy thread has ended: storage sees nothing more from it ...
  const int after_cleanup = store.ops;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store.ops, after_cleanup);
  // ... it was stopped, not run to its end (tidy-status reads no storage).
  auto st = call(Operation::kRead, "tidy-status");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->data->at("state").as_string(), "Cancelled");
  EXPECT_LT(deleted(), kCerts);
  auto remaining = store.List("certs/", "", 0);
  ASSERT_TRUE(remaining.ok());
  EXPECT_GT(remaining->size(), 0u);
  // No new tidy starts on a backend that was cleaned up.
  EXPECT_EQ(call(Operation::kUpdate, "tidy", {{"tidy_cert_store", true}}).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace coffer::engines::pki
