// PKI engine through the core, with a clock the tests move: issuer expiry behaviour, paging,
// tidy, rotation and default issuers, bundle import, revocation with a key.
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/x509.h"
#include "engines/pki/pki_backend.h"
#include "registry/builtin.h"
#include "storage/forwarding_storage.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::pki {
namespace {
namespace json = boost::json;
using core::Operation;

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    registry::AddBackends(o);  // the PKI engine gets o.clock through its BackendConfig
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
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
  std::string Err(Operation op, const std::string& path, json::object data = {}) {
    auto r = Do(op, path, std::move(data));
    EXPECT_FALSE(r.ok()) << path;
    return r.ok() ? "" : std::string(r.status().message());
  }
  int64_t Now() const { return clock_.NowUnix(); }

  FakeClock clock_;
  storage::MemoryStorage phys_;
  std::unique_ptr<core::Core> core_;
  std::string root_;
};

TEST_F(PkiTest, LeafNotAfterBehaviorErrTruncatePermit) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Short Root"}, {"key_type", "ec"}, {"ttl", "10h"}});
  const int64_t ca_end = root["expiration"].as_int64();
  EXPECT_NEAR(ca_end, Now() + int64_t{10} * 3600, 2);
  Ok(Operation::kUpdate, "pki/roles/web",
     {{"allow_any_name", true}, {"key_type", "ec"}, {"ttl", "24h"}, {"max_ttl", "48h"}});
  EXPECT_NE(Err(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}})
                .find("beyond the expiration of the CA certificate"),
            std::string::npos);
  Ok(Operation::kUpdate, "pki/issuer/default", {{"leaf_not_after_behavior", "truncate"}});
  auto leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["expiration"].as_int64(), ca_end);
  Ok(Operation::kUpdate, "pki/issuer/default", {{"leaf_not_after_behavior", "permit"}});
  leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["expiration"].as_int64(), Now() + int64_t{24} * 3600);
  EXPECT_NE(Err(Operation::kUpdate, "pki/issuer/default", {{"leaf_not_after_behavior", "maybe"}})
                .find("not one of err, truncate, permit"),
            std::string::npos);
}

TEST_F(PkiTest, CertsPageThroughStorageAndTidyRemovesExpired) {
  const std::string root_serial = std::string(
      Ok(Operation::kUpdate, "pki/root/generate/internal",
         {{"common_name", "Root"}, {"key_type", "ec"}, {"ttl", "8760h"}})["serial_number"]
          .as_string());
  // The root is listed among the certificates, as Vault lists it.
  std::string root_key = root_serial;
  for (char& c : root_key)
    if (c == ':') c = '-';
  EXPECT_EQ(json::serialize(Ok(Operation::kList, "pki/certs")["keys"]),
            json::serialize(json::array{json::value(root_key)}));
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  std::vector<std::string> serials;
  serials.reserve(25);
  for (int i = 0; i < 25; ++i)
    serials.emplace_back(
        std::string(Ok(Operation::kUpdate, "pki/issue/web",
                       {{"common_name", "a.example.com"}, {"ttl", "1h"}})["serial_number"]
                        .as_string()));
  auto page1 = Ok(Operation::kList, "pki/certs", {{"limit", "10"}})["keys"].as_array();
  ASSERT_EQ(page1.size(), 10u);
  auto page2 = Ok(Operation::kList, "pki/certs",
                  {{"limit", "10"}, {"after", page1.back().as_string()}})["keys"]
                   .as_array();
  ASSERT_EQ(page2.size(), 10u);
  EXPECT_LT(page1.back().as_string(), page2.front().as_string());
  auto rest =
      Ok(Operation::kList, "pki/certs", {{"after", page2.back().as_string()}})["keys"].as_array();
  EXPECT_EQ(rest.size(), 6u);  // 25 leaves and the root
  Ok(Operation::kUpdate, "pki/revoke", {{"serial_number", serials[3]}});

  // Not yet past notAfter + safety buffer: tidy keeps everything.
  clock_.Advance(absl::Hours(2));
  auto started =
      Do(Operation::kUpdate, "pki/tidy", {{"tidy_cert_store", true}, {"tidy_revoked_certs", true}});
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->http_status, 202);
  auto wait_done = [&] {
    for (int i = 0; i < 500; ++i) {
      auto st = Ok(Operation::kRead, "pki/tidy-status");
      if (st["state"].as_string() != "Running") return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return json::object();
  };
  auto st = wait_done();
  EXPECT_EQ(st["state"].as_string(), "Finished");
  EXPECT_EQ(st["cert_store_deleted_count"].as_int64(), 0);
  EXPECT_EQ(Ok(Operation::kList, "pki/certs")["keys"].as_array().size(), 26u);

  clock_.Advance(absl::Hours(72));
  ASSERT_TRUE(
      Do(Operation::kUpdate, "pki/tidy", {{"tidy_cert_store", true}, {"tidy_revoked_certs", true}})
          .ok());
  st = wait_done();
  EXPECT_EQ(st["state"].as_string(), "Finished");
  EXPECT_EQ(st["cert_store_deleted_count"].as_int64(), 25);
  EXPECT_EQ(st["revoked_cert_deleted_count"].as_int64(), 1);
  // Only the root, still valid, is left.
  EXPECT_EQ(json::serialize(Ok(Operation::kList, "pki/certs")["keys"]),
            json::serialize(json::array{json::value(root_key)}));
  EXPECT_EQ(Do(Operation::kList, "pki/certs/revoked").status().code(), absl::StatusCode::kNotFound);
  // The CRL was rebuilt without the tidied entry.
  auto crl = Do(Operation::kRead, "pki/crl/pem");
  ASSERT_TRUE(crl.ok());
  EXPECT_NE(crl->raw_body.find("BEGIN X509 CRL"), std::string::npos);
  // Nothing asked for: accepted with a warning (Vault's 202), nothing runs.
  auto nothing = Do(Operation::kUpdate, "pki/tidy", {});
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_EQ(nothing->http_status, 202);
  ASSERT_EQ(nothing->warnings.size(), 1u);
  EXPECT_NE(nothing->warnings[0].find("nothing to do"), std::string::npos);
}

TEST_F(PkiTest, RotateKeepsDefaultUntilReplaced) {
  auto first = Ok(Operation::kUpdate, "pki/root/generate/internal",
                  {{"common_name", "Root 1"}, {"key_type", "ec"}, {"issuer_name", "one"}});
  auto second = Ok(Operation::kUpdate, "pki/root/rotate/internal",
                   {{"common_name", "Root 2"}, {"key_type", "ec"}, {"issuer_name", "two"}});
  EXPECT_NE(first["issuer_id"].as_string(), second["issuer_id"].as_string());
  EXPECT_NE(first["key_id"].as_string(), second["key_id"].as_string());
  EXPECT_EQ(Ok(Operation::kRead, "pki/config/issuers")["default"], first["issuer_id"]);
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["issuing_ca"], first["certificate"]);
  Ok(Operation::kUpdate, "pki/root/replace", {{"default", "two"}});
  leaf = Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["issuing_ca"], second["certificate"]);
  // issuer/:ref/issue picks an issuer explicitly.
  leaf = Ok(Operation::kUpdate, "pki/issuer/one/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["issuing_ca"], first["certificate"]);
  EXPECT_EQ(Ok(Operation::kList, "pki/issuers")["keys"].as_array().size(), 2u);
  EXPECT_EQ(Ok(Operation::kList, "pki/keys")["keys"].as_array().size(), 2u);
  EXPECT_NE(Err(Operation::kDelete, "pki/key/" + std::string(first["key_id"].as_string()))
                .find("in use by issuer"),
            std::string::npos);
  EXPECT_NE(Err(Operation::kUpdate, "pki/root/generate/internal",
                {{"common_name", "Root 3"}, {"issuer_name", "one"}})
                .find("already in use"),
            std::string::npos);
}

TEST_F(PkiTest, ImportBundleMapsKeysAndRefusesLeaves) {
  auto exported = Ok(Operation::kUpdate, "pki/root/generate/exported",
                     {{"common_name", "Exported Root"}, {"key_type", "ed25519"}});
  EXPECT_EQ(exported["private_key_type"].as_string(), "ed25519");
  std::string bundle = std::string(exported["certificate"].as_string()) + "\n" +
                       std::string(exported["private_key"].as_string());
  Ok(Operation::kUpdate, "sys/mounts/other", {{"type", "pki"}});
  auto imp = Ok(Operation::kUpdate, "other/config/ca", {{"pem_bundle", bundle}});
  ASSERT_TRUE(imp["imported_issuers"].is_array());
  ASSERT_TRUE(imp["imported_keys"].is_array());
  std::string issuer_id(imp["imported_issuers"].as_array()[0].as_string());
  EXPECT_EQ(imp["mapping"].as_object()[issuer_id], imp["imported_keys"].as_array()[0]);
  auto again = Ok(Operation::kUpdate, "other/issuers/import/bundle", {{"pem_bundle", bundle}});
  EXPECT_TRUE(again["imported_issuers"].is_null());
  EXPECT_EQ(again["existing_issuers"].as_array()[0].as_string(), issuer_id);
  // The imported CA issues.
  Ok(Operation::kUpdate, "other/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto leaf = Ok(Operation::kUpdate, "other/issue/web", {{"common_name", "a.example.com"}});
  EXPECT_EQ(leaf["issuing_ca"], exported["certificate"]);
  std::string leaf_pem(leaf["certificate"].as_string());
  EXPECT_NE(
      Err(Operation::kUpdate, "other/config/ca", {{"pem_bundle", leaf_pem}}).find("is not a CA"),
      std::string::npos);
  EXPECT_NE(Err(Operation::kUpdate, "other/config/ca", {{"pem_bundle", "not pem"}})
                .find("no PEM certificate or key"),
            std::string::npos);
  // Revocation with the leaf's key: the wrong key is refused.
  EXPECT_NE(Err(Operation::kUpdate, "other/revoke-with-key",
                {{"certificate", leaf_pem}, {"private_key", exported["private_key"]}})
                .find("private key matches"),
            std::string::npos);
  auto rv = Ok(Operation::kUpdate, "other/revoke-with-key",
               {{"certificate", leaf_pem}, {"private_key", leaf["private_key"]}});
  EXPECT_EQ(rv["state"].as_string(), "revoked");
  EXPECT_NE(Err(Operation::kUpdate, "other/revoke", {{"serial_number", exported["serial_number"]}})
                .find("to its own CRL is not allowed"),
            std::string::npos);
}

TEST_F(PkiTest, IntermediatePathLengthAndCaFields) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}, {"max_path_length", 1}});
  Ok(Operation::kUpdate, "sys/mounts/int", {{"type", "pki"}});
  auto csr = Ok(Operation::kUpdate, "int/intermediate/generate/internal",
                {{"common_name", "Int"}, {"key_type", "ec"}})["csr"];
  auto signed_ = Ok(Operation::kUpdate, "pki/root/sign-intermediate",
                    {{"csr", csr}, {"common_name", "Int"}, {"ttl", "8760h"}});
  auto cert = crypto::ParseCertPem(std::string(signed_["certificate"].as_string()));
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(crypto::IsCa(cert->get()));
  EXPECT_EQ(X509_get_pathlen(cert->get()), 0);  // capped below the root's pathLen 1
  Ok(Operation::kUpdate, "int/intermediate/set-signed", {{"certificate", signed_["certificate"]}});
  // An intermediate with pathLen 0 cannot sign another CA.
  Ok(Operation::kUpdate, "sys/mounts/int2", {{"type", "pki"}});
  auto csr2 = Ok(Operation::kUpdate, "int2/intermediate/generate/internal",
                 {{"common_name", "Int2"}, {"key_type", "ec"}})["csr"];
  EXPECT_NE(Err(Operation::kUpdate, "int/root/sign-intermediate",
                {{"csr", csr2}, {"common_name", "Int2"}})
                .find("max path length of 0"),
            std::string::npos);
  // sign-verbatim refuses CSRs that ask for a CA.
  auto ca_csr =
      Ok(Operation::kUpdate, "int2/intermediate/generate/internal",
         {{"common_name", "Int3"}, {"key_type", "ec"}, {"add_basic_constraints", true}})["csr"];
  EXPECT_NE(Err(Operation::kUpdate, "int/sign-verbatim", {{"csr", ca_csr}}).find("asks for a CA"),
            std::string::npos);
}

TEST_F(PkiTest, TrailingSlashReachesNoHandlerPastTheSudoCheck) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Root"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "sys/policies/acl/nosudo",
     {{"policy",
       R"(path "pki/*" { capabilities = ["create", "read", "update", "delete", "list"] })"}});
  auto token = Do(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"nosudo"}}});
  ASSERT_TRUE(token.ok() && token->auth) << token.status();
  core::Request r;
  r.op = Operation::kDelete;
  r.client_token = std::string(token->auth->at("client_token").as_string());
  // "root" needs sudo; "root/" is another path, which no handler serves.
  r.path = "pki/root";
  EXPECT_EQ(core_->Handle(r).status().code(), absl::StatusCode::kPermissionDenied);
  r.path = "pki/root/";
  auto slash = core_->Handle(r);
  EXPECT_EQ(slash.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(slash.status().message(), "unsupported path \"root/\" on a pki mount");
  // The CA is still there; a LIST keeps its slash.
  EXPECT_EQ(Ok(Operation::kRead, "pki/cert/ca")["certificate"], root["certificate"]);
  EXPECT_EQ(Ok(Operation::kList, "pki/issuers/")["keys"].as_array().size(), 1u);
}

TEST(X509Test, SerialFormsRoundTrip) {
  auto b = crypto::ParseSerial("1f:03:8a");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(crypto::SerialColonFromBytes(*b), "1f:03:8a");
  EXPECT_EQ(crypto::SerialColonFromBytes(*crypto::ParseSerial("1F-03-8A")), "1f:03:8a");
  EXPECT_EQ(crypto::SerialColonFromBytes(*crypto::ParseSerial("00:1f")), "1f");
  EXPECT_FALSE(crypto::ParseSerial("zz").ok());
  EXPECT_FALSE(crypto::ParseSerial("").ok());
  EXPECT_FALSE(crypto::ParseSerial(std::string(100, 'a')).ok());
}

TEST(X509Test, KeySpecsAndWeakKeys) {
  EXPECT_EQ(crypto::ParseKeySpec("rsa", 0)->bits, 2048);
  EXPECT_EQ(crypto::ParseKeySpec("ec", 0)->bits, 256);
  EXPECT_FALSE(crypto::ParseKeySpec("rsa", 1024).ok());
  EXPECT_FALSE(crypto::ParseKeySpec("ec", 224).ok());
  EXPECT_FALSE(crypto::ParseKeySpec("dsa", 0).ok());
  auto k = crypto::GenerateKey({crypto::KeyType::kEc, 384});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(crypto::DescribeKey(k->get())->bits, 384);
  auto pem = crypto::PrivateKeyPem(k->get(), "");
  ASSERT_TRUE(pem.ok());
  EXPECT_NE(pem->view().find("BEGIN EC PRIVATE KEY"), std::string::npos);
  auto back = crypto::ParsePrivateKeyPem(pem->view());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(crypto::SameKey(back->get(), k->get()));
}

// A store whose asynchronous writes are held until the test lets them finish, or fail.
class HeldWritesStorage final : public storage::ForwardingStorage {
 public:
  HeldWritesStorage() : ForwardingStorage(&mem_) {}
  std::string_view Type() const override { return "held"; }
  bool WritesAsync() const override { return true; }
  void WriteAsync(std::vector<storage::WriteOp> ops, WriteDone done) override {
    held_.emplace_back(std::move(ops), std::move(done));
  }
  size_t held() const { return held_.size(); }
  // Applies and answers the held writes; with `fail`, answers them with an error instead.
  void Finish(bool fail = false) {
    for (auto& [ops, done] : held_)
      done(fail ? absl::UnavailableError("disk full") : mem_.Write(std::move(ops)));
    held_.clear();
  }
  storage::MemoryStorage mem_;

 private:
  std::vector<std::pair<std::vector<storage::WriteOp>, WriteDone>> held_;
};

// Signing on a role that stores its certificates, on a store that writes asynchronously: the
// core admits it to run where its answer can wait (defer_write, not may_wait), the response
// carries the record's write, which completes with the store; a failed write is the answer's
// error; without defer_write the record is written before Handle returns.
TEST(PkiDeferredWrite, TheAnswerWaitsForTheCertificateRecord) {
  HeldWritesStorage phys;
  core::CoreOptions o;
  o.physical = &phys;
  registry::AddBackends(o);
  auto core = std::move(*core::Core::Create(std::move(o)));
  auto init = core->Initialize(1, 1);
  ASSERT_TRUE(init.ok());
  ASSERT_TRUE(core->Unseal(HexEncode(init->keys[0].view()), false).ok());
  auto run = [&](Operation op, const std::string& path, json::object data, bool defer) {
    core::Request r;
    r.op = op;
    r.path = path;
    r.data = std::move(data);
    r.client_token = init->root_token;
    r.defer_write = defer;
    return core->Handle(r);
  };
  ASSERT_TRUE(run(Operation::kUpdate, "sys/mounts/pki", {{"type", "pki"}}, false).ok());
  ASSERT_TRUE(run(Operation::kUpdate, "pki/root/generate/internal",
                  {{"common_name", "Held Root"}, {"key_type", "ec"}, {"ttl", "87600h"}}, false)
                  .ok());
  ASSERT_TRUE(run(Operation::kUpdate, "pki/roles/web",
                  {{"allow_any_name", true}, {"key_type", "ec"}, {"ttl", "1h"}}, false)
                  .ok());
  auto key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  crypto::CsrRequest q;
  q.common_name = "held.example.com";
  auto csr = crypto::MakeCsrPem(key->get(), q);
  ASSERT_TRUE(csr.ok());
  const json::object sign{{"csr", *csr}, {"common_name", "held.example.com"}};
  auto stored = [&](const core::Response& r) {
    const std::string serial(r.data->at("serial_number").as_string());
    return run(Operation::kRead, "pki/cert/" + serial, {}, false).ok();
  };

  // Without defer_write (and the first time, the role not cached yet): stored before answering.
  auto first = run(Operation::kUpdate, "pki/sign/web", sign, false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->durable);
  EXPECT_TRUE(stored(*first));

  core::Request probe;
  probe.op = Operation::kUpdate;
  probe.path = "pki/sign/web";
  probe.client_token = init->root_token;
  auto admission = core->Admit(probe, true);
  ASSERT_TRUE(admission.ok());
  EXPECT_TRUE(admission->defer_write);
  EXPECT_FALSE(admission->may_wait);

  auto deferred = run(Operation::kUpdate, "pki/sign/web", sign, true);
  ASSERT_TRUE(deferred.ok()) << deferred.status();
  ASSERT_TRUE(deferred->durable);
  EXPECT_EQ(phys.held(), 1u);
  EXPECT_FALSE(stored(*deferred));  // not written yet: the answer must wait
  absl::Status result = absl::UnknownError("not completed");
  deferred->durable->OnComplete([&](absl::Status st) { result = std::move(st); });
  phys.Finish();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_TRUE(stored(*deferred));
  // The record went through the barrier: the store holds ciphertext.
  const std::string serial(deferred->data->at("serial_number").as_string());
  const std::string der(deferred->data->at("certificate").as_string());
  auto keys = phys.mem_.List("logical/", "", 0);
  ASSERT_TRUE(keys.ok());
  bool plaintext = false;
  for (const auto& mount : *keys) {
    const std::string certs = absl::StrCat("logical/", mount, "certs/");
    auto raw = phys.mem_.List(certs, "", 0);
    if (!raw.ok()) continue;
    for (const auto& k : *raw) {
      auto v = phys.mem_.Get(certs + k);
      if (v.ok() && *v && (*v)->find("not_after") != std::string::npos) plaintext = true;
    }
  }
  EXPECT_FALSE(plaintext);

  // A write that fails: the waiting answer gets the error (the HTTP layer answers with it).
  auto failing = run(Operation::kUpdate, "pki/sign/web", sign, true);
  ASSERT_TRUE(failing.ok());
  ASSERT_TRUE(failing->durable);
  phys.Finish(/*fail=*/true);
  EXPECT_EQ(failing->durable->Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(stored(*failing));
  // A bad response format is refused before anything is signed, stored or started.
  auto count = [&] {
    auto l = run(Operation::kList, "pki/certs", {}, false);
    return l.ok() && l->data ? l->data->at("keys").as_array().size() : 0;
  };
  const size_t certs = count();
  json::object bogus = sign;
  bogus["format"] = "bogus";
  for (bool defer : {false, true}) {
    auto refused = run(Operation::kUpdate, "pki/sign/web", bogus, defer);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(phys.held(), 0u);
  }
  EXPECT_EQ(count(), certs);

  // Completed before anyone asked: the continuation runs at once.
  bool ran = false;
  failing->durable->OnComplete([&](const absl::Status& st) { ran = !st.ok(); });
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace coffer::engines::pki

namespace coffer::engines::pki {
namespace {

// A self-issued CA certificate made outside the mount (another root).
crypto::Cert OtherRoot(bool ca, int64_t now) {
  auto key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  EXPECT_TRUE(key.ok());
  crypto::CertTemplate t;
  t.common_name = "Other Root";
  t.is_ca = ca;
  t.not_before = now - 60;
  t.not_after = now + int64_t{86400} * 30;
  auto c = crypto::SignCertificate(t, key->get(), nullptr, key->get());
  EXPECT_TRUE(c.ok()) << c.status();
  return std::move(*c);
}

TEST_F(PkiTest, SignSelfIssuedCrossSignsAnotherRoot) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Mount Root"}, {"key_type", "ec"}, {"ttl", "8760h"}});
  auto mount_root = crypto::ParseCertPem(std::string(root["certificate"].as_string()));
  ASSERT_TRUE(mount_root.ok());
  crypto::Cert other = OtherRoot(true, Now());
  auto out = Ok(Operation::kUpdate, "pki/root/sign-self-issued",
                {{"certificate", crypto::CertPem(other.get())}});
  ASSERT_TRUE(out.contains("certificate")) << json::serialize(out);
  EXPECT_EQ(out["issuing_ca"].as_string(), root["certificate"].as_string());
  auto cross = crypto::ParseCertPem(std::string(out["certificate"].as_string()));
  ASSERT_TRUE(cross.ok());
  // Same subject, serial and key; issued and signed by the mount's root.
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cross->get()), X509_get_subject_name(other.get())),
            0);
  EXPECT_EQ(crypto::SerialColon(cross->get()), crypto::SerialColon(other.get()));
  auto spki = [](X509* c) {
    unsigned char* der = nullptr;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der);
    std::string out(reinterpret_cast<char*>(der), n > 0 ? n : 0);
    OPENSSL_free(der);
    return out;
  };
  EXPECT_EQ(spki(cross->get()), spki(other.get()));
  EXPECT_TRUE(crypto::IssuedBy(cross->get(), mount_root->get()));
  EXPECT_EQ(X509_verify(cross->get(), X509_get0_pubkey(mount_root->get())), 1);
  EXPECT_EQ(crypto::SubjectKeyId(cross->get()), crypto::SubjectKeyId(other.get()));
  // Refused: a certificate that is not a CA, one that is not self-issued.
  EXPECT_NE(Err(Operation::kUpdate, "pki/root/sign-self-issued",
                {{"certificate", crypto::CertPem(OtherRoot(false, Now()).get())}})
                .find("not a CA"),
            std::string::npos);
  EXPECT_NE(Err(Operation::kUpdate, "pki/root/sign-self-issued",
                {{"certificate", std::string(out["certificate"].as_string())}})
                .find("not self-issued"),
            std::string::npos);
}

TEST_F(PkiTest, ARevokedIssuerIssuesNothingMore) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root 1"}, {"key_type", "ec"}, {"issuer_name", "one"}});
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto before = Ok(Operation::kRead, "pki/issuer/one");
  EXPECT_FALSE(before["revoked"].as_bool());
  auto r = Ok(Operation::kUpdate, "pki/issuer/one/revoke");
  EXPECT_TRUE(r["revoked"].as_bool());
  EXPECT_EQ(r["revocation_time"].as_int64(), Now());
  EXPECT_EQ(r["usage"].as_string(), "read-only,crl-signing");
  EXPECT_TRUE(Ok(Operation::kRead, "pki/issuer/one")["revoked"].as_bool());
  EXPECT_FALSE(Do(Operation::kUpdate, "pki/issue/web", {{"common_name", "a.example.com"}}).ok());
  // Nor does it sign anything else: intermediates, verbatim, cross-signs.
  Ok(Operation::kUpdate, "sys/mounts/int", {{"type", "pki"}});
  auto csr = Ok(Operation::kUpdate, "int/intermediate/generate/internal",
                {{"common_name", "Int"}, {"key_type", "ec"}})["csr"];
  EXPECT_NE(Err(Operation::kUpdate, "pki/root/sign-intermediate", {{"csr", csr}}).find("revoked"),
            std::string::npos);
  EXPECT_NE(Err(Operation::kUpdate, "pki/sign-verbatim", {{"csr", csr}}).find("revoked"),
            std::string::npos);
  EXPECT_NE(Err(Operation::kUpdate, "pki/root/sign-self-issued",
                {{"certificate", crypto::CertPem(OtherRoot(true, Now()).get())}})
                .find("revoked"),
            std::string::npos);
  // And cannot be given the issuing usage back.
  EXPECT_NE(Err(Operation::kUpdate, "pki/issuer/one",
                {{"usage", "read-only,issuing-certificates,crl-signing"}})
                .find("revoked"),
            std::string::npos);
  // Again: unchanged.
  EXPECT_EQ(Ok(Operation::kUpdate, "pki/issuer/one/revoke")["revocation_time"].as_int64(),
            r["revocation_time"].as_int64());
}

}  // namespace
}  // namespace coffer::engines::pki

namespace coffer::engines::pki {
namespace {

TEST_F(PkiTest, SignIntermediateTakesTheCsrNameAndMayOutliveTheIssuer) {
  auto root = Ok(Operation::kUpdate, "pki/root/generate/internal",
                 {{"common_name", "Root"}, {"key_type", "ec"}, {"ttl", "720h"}});
  Ok(Operation::kUpdate, "sys/mounts/int", {{"type", "pki"}});
  auto csr = Ok(Operation::kUpdate, "int/intermediate/generate/internal",
                {{"common_name", "From The CSR"}, {"key_type", "ec"}})["csr"];
  // No common_name: the CSR's (Vault's use_csr_common_name for intermediates). A TTL past the
  // root's expiry is kept (Vault permits it for intermediates; leaves follow the issuer's
  // leaf_not_after_behavior).
  auto signed_ =
      Ok(Operation::kUpdate, "pki/root/sign-intermediate", {{"csr", csr}, {"ttl", "8760h"}});
  auto cert = crypto::ParseCertPem(std::string(signed_["certificate"].as_string()));
  ASSERT_TRUE(cert.ok());
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert->get()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "From The CSR");
  EXPECT_EQ(crypto::NotAfterUnix(cert->get()), Now() + int64_t{8760} * 3600);
  EXPECT_GT(crypto::NotAfterUnix(cert->get()), root["expiration"].as_int64());
}

}  // namespace
}  // namespace coffer::engines::pki

namespace coffer::engines::pki {
namespace {

TEST_F(PkiTest, IssuerRefPicksTheSigningIssuer) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root One"}, {"key_type", "ec"}, {"issuer_name", "one"}});
  auto two = Ok(Operation::kUpdate, "pki/root/rotate/internal",
                {{"common_name", "Root Two"}, {"key_type", "ec"}, {"issuer_name", "two"}});
  auto two_cert = crypto::ParseCertPem(std::string(two["certificate"].as_string()));
  ASSERT_TRUE(two_cert.ok());
  Ok(Operation::kUpdate, "sys/mounts/int", {{"type", "pki"}});
  // The issuer name given with the CSR names the issuer set-signed imports.
  auto csr = Ok(Operation::kUpdate, "int/intermediate/generate/internal",
                {{"common_name", "Int"}, {"key_type", "ec"}, {"issuer_name", "int-2023"}})["csr"];
  // "one" is the default; issuer_ref asks for "two" (it was ignored before, and "one" signed).
  auto signed_ = Ok(Operation::kUpdate, "pki/root/sign-intermediate",
                    {{"csr", csr}, {"issuer_ref", "two"}, {"ttl", "24h"}});
  auto cert = crypto::ParseCertPem(std::string(signed_["certificate"].as_string()));
  ASSERT_TRUE(cert.ok());
  EXPECT_TRUE(crypto::IssuedBy(cert->get(), two_cert->get()));
  Ok(Operation::kUpdate, "int/intermediate/set-signed", {{"certificate", signed_["certificate"]}});
  EXPECT_EQ(Ok(Operation::kRead, "int/issuer/int-2023")["issuer_name"].as_string(), "int-2023");
  // A field the path does not have is refused, not ignored.
  EXPECT_NE(
      Err(Operation::kUpdate, "pki/root/sign-intermediate", {{"csr", csr}, {"isuer_ref", "two"}})
          .find("unknown field \"isuer_ref\""),
      std::string::npos);
}

}  // namespace
}  // namespace coffer::engines::pki

namespace coffer::engines::pki {
namespace {

json::array Names(size_t n, size_t pad = 0) {
  json::array out;
  for (size_t i = 0; i < n; ++i)
    out.emplace_back(std::string(pad, 'x') + Cat("n", i, ".example.com"));
  return out;
}

// issue/:role and sign/:role bound the certificate's SANs (Vault does not: 20,000 alt_names made
// a 527 KB certificate), counting every kind and the CSR's own names.
TEST_F(PkiTest, SubjectAlternativeNamesAreBounded) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "ec"}});
  auto refused = [&](const std::string& path, json::object data) {
    auto r = Do(Operation::kUpdate, path, std::move(data));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << path;
    return std::string(r.status().message());
  };
  EXPECT_EQ(
      refused("pki/issue/web", {{"common_name", "n0.example.com"}, {"alt_names", Names(1001)}}),
      "too many subject alternative names: 1001 given, the limit is 1000");
  // Every kind counts.
  json::array ips;
  for (int i = 0; i < 401; ++i) ips.emplace_back(Cat("10.0.", i / 256, ".", i % 256));
  EXPECT_EQ(
      refused("pki/issue/web",
              {{"common_name", "n0.example.com"}, {"alt_names", Names(600)}, {"ip_sans", ips}}),
      "too many subject alternative names: 1001 given, the limit is 1000");
  // 300 names of about 250 bytes: under the count, over the 64 KiB of names.
  EXPECT_NE(
      refused("pki/issue/web", {{"common_name", "n0.example.com"}, {"alt_names", Names(300, 236)}})
          .find("the limit is 65536 bytes of names in total"),
      std::string::npos);

  // 1,000 names: issued, all of them in the certificate (the common name is one of them).
  auto leaf = Ok(Operation::kUpdate, "pki/issue/web",
                 {{"common_name", "n0.example.com"}, {"alt_names", Names(1000)}});
  auto cert = crypto::ParseCertPem(std::string(leaf["certificate"].as_string()));
  ASSERT_TRUE(cert.ok());
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr));
  ASSERT_NE(sans, nullptr);
  EXPECT_EQ(sk_GENERAL_NAME_num(sans), 1000);
  GENERAL_NAMES_free(sans);

  // sign/:role counts the names the CSR brings (use_csr_sans).
  auto key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  crypto::CsrRequest q;
  q.common_name = "n0.example.com";
  for (const auto& n : Names(1001)) q.dns_names.emplace_back(n.as_string());
  auto csr = crypto::MakeCsrPem(key->get(), q);
  ASSERT_TRUE(csr.ok());
  EXPECT_EQ(refused("pki/sign/web", {{"csr", *csr}}),
            "too many subject alternative names: 1001 given, the limit is 1000");
  EXPECT_EQ(refused("pki/sign-verbatim", {{"csr", *csr}}),
            "too many subject alternative names: 1001 given, the limit is 1000");
}

// sign/:role takes exactly one request: a second one, text after it, or bytes after its DER
// are refused (the first request used to be signed).
TEST_F(PkiTest, SignRefusesACsrWithTrailingData) {
  Ok(Operation::kUpdate, "pki/root/generate/internal",
     {{"common_name", "Root"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "pki/roles/web", {{"allow_any_name", true}, {"key_type", "any"}});
  auto key = crypto::GenerateKey({crypto::KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  crypto::CsrRequest q;
  q.common_name = "a.example.com";
  auto csr = crypto::MakeCsrPem(key->get(), q);
  ASSERT_TRUE(csr.ok());
  auto refused = [&](const std::string& pem) {
    auto r = Do(Operation::kUpdate, "pki/sign/web", {{"csr", pem}});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  std::string b64;
  for (char c : csr->substr(csr->find('\n'), csr->find("-----END") - csr->find('\n')))
    if (c != '\n') b64 += c;
  auto der = Base64Decode(b64);
  ASSERT_TRUE(der.has_value());
  EXPECT_NE(refused(crypto::PemFromDer(*der + '\0', "CERTIFICATE REQUEST"))
                .find("followed by 1 more byte"),
            std::string::npos);
  EXPECT_NE(refused(*csr + "\n" + *csr).find("followed by a second PEM block"), std::string::npos);
  EXPECT_EQ(refused(*csr + "\nsigned-off-by: me"),
            "the CSR PEM is followed by other data: send exactly one CERTIFICATE REQUEST block, "
            "with nothing but whitespace after its END line");
  // Text before the block (openssl req -text) stays accepted.
  Ok(Operation::kUpdate, "pki/sign/web", {{"csr", "Certificate Request:\n    Data: ...\n" + *csr}});
}

}  // namespace
}  // namespace coffer::engines::pki
