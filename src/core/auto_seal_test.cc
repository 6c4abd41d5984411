// Auto seals in the core, with an in-process wrapper (AES-GCM under a key the test holds, which
// can be made unreachable): init hands out recovery keys and unseals; a restarted core unseals
// itself, or stays sealed saying why while the seal is down; the recovery keys authorize a
// manual unseal, and a migration Shamir -> auto seal -> Shamir keeps every entry and the keys.
#include <gtest/gtest.h>

#include <atomic>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"

namespace coffer::core {
namespace {
namespace json = boost::json;

// Shared between the wrappers of successive cores (the "remote" key and its availability).
struct FakeKms {
  crypto::SecretBytes key = std::move(*crypto::SecretBytes::Random(32));
  std::atomic<bool> up{true};
  std::atomic<bool> can_decrypt{true};  // false: wraps, but every unwrap fails
  std::atomic<int> calls{0};
};

class FakeWrapper final : public seal::Wrapper {
 public:
  FakeWrapper(FakeKms* kms, std::string type) : kms_(kms), type_(std::move(type)) {}
  std::string_view Type() const override { return type_; }
  absl::Status Init() override {
    if (!kms_->up) return absl::UnavailableError("fake kms is down");
    return absl::OkStatus();
  }
  absl::StatusOr<Sealed> Encrypt(std::string_view pt, std::string_view aad) override {
    ++kms_->calls;
    if (!kms_->up) return absl::UnavailableError("fake kms is down");
    auto ct = crypto::AesGcmSeal(kms_->key, pt, aad);
    if (!ct.ok()) return ct.status();
    return Sealed{*ct, "fake:v1"};
  }
  absl::StatusOr<crypto::SecretBytes> Decrypt(std::string_view ct, std::string_view aad) override {
    ++kms_->calls;
    if (!kms_->up) return absl::UnavailableError("fake kms is down");
    if (!kms_->can_decrypt) return absl::PermissionDeniedError("fake kms: decrypt not allowed");
    auto pt = crypto::AesGcmOpen(kms_->key, ct, aad);
    if (!pt.ok()) return absl::InvalidArgumentError("fake kms: cannot decrypt");
    return crypto::SecretBytes(*pt);
  }

 private:
  FakeKms* kms_;
  std::string type_;
};

class AutoSealCoreTest : public ::testing::Test {
 protected:
  // seal: "" Shamir, else the auto seal's type; disabled: the disabled stanza's type.
  void Start(const std::string& seal, const std::string& disabled = "") {
    core_.reset();
    CoreOptions o;
    o.physical = &phys_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o, /*with_examples=*/true);
    if (!seal.empty()) o.seal_wrapper = std::make_unique<FakeWrapper>(&kms_, seal);
    if (!disabled.empty()) o.disabled_seal_wrapper = std::make_unique<FakeWrapper>(&kms_, disabled);
    auto c = Core::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status();
    core_ = std::move(*c);
  }
  absl::StatusOr<Response> Do(Operation op, std::string path, json::object data = {}) {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = root_;
    return core_->Handle(r);
  }
  json::object Status() {
    auto s = core_->SealStatus();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : json::object{};
  }
  void WriteEntries(int n) {
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/mounts/kv", {{"type", "kv"}}).ok());
    for (int i = 0; i < n; ++i)
      ASSERT_TRUE(
          Do(Operation::kUpdate, "kv/e" + std::to_string(i), {{"v", std::to_string(i)}}).ok());
  }
  void ExpectEntries(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = Do(Operation::kRead, "kv/e" + std::to_string(i));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_TRUE(r->data.has_value());
      ASSERT_EQ(r->data->at("v").as_string(), std::to_string(i));
    }
  }

  storage::MemoryStorage phys_;
  FakeKms kms_;
  std::unique_ptr<Core> core_;
  std::string root_;
};

TEST_F(AutoSealCoreTest, InitGivesRecoveryKeysAndUnseals) {
  Start("transit");
  auto s = Status();
  EXPECT_EQ(s["type"].as_string(), "transit");
  EXPECT_EQ(s["initialized"].as_bool(), false);
  auto res = core_->Initialize(5, 3);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_TRUE(res->keys.empty());
  EXPECT_EQ(res->recovery_keys.size(), 5u);
  EXPECT_FALSE(core_->Sealed());
  s = Status();
  EXPECT_EQ(s["type"].as_string(), "transit");
  EXPECT_EQ(s["recovery_seal"].as_bool(), true);
  EXPECT_EQ(s["t"].as_int64(), 3);
  EXPECT_EQ(s["n"].as_int64(), 5);
  // The stored root key is the wrapper's blob, not the Shamir format.
  auto blob = phys_.Get(seal::kRootKeyPath);
  ASSERT_TRUE(blob.ok() && blob->has_value());
  auto parsed = seal::ParseWrappedBlob(**blob);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->seal, "transit");
  EXPECT_EQ(parsed->key_id, "fake:v1");
  // Recovery limits are Vault's, named as recovery_*.
  Start("transit");
  EXPECT_EQ(core_->Initialize(5, 3).status().message(), "Vault is already initialized");
}

TEST_F(AutoSealCoreTest, RestartUnsealsItselfOrSaysWhyWhileTheSealIsDown) {
  Start("transit");
  auto res = core_->Initialize(3, 2);
  ASSERT_TRUE(res.ok()) << res.status();
  root_ = res->root_token;
  WriteEntries(5);

  Start("transit");
  EXPECT_TRUE(core_->Sealed());
  ASSERT_TRUE(core_->AutoUnseal().ok());
  EXPECT_FALSE(core_->Sealed());
  ExpectEntries(5);

  kms_.up = false;
  Start("transit");
  auto st = core_->AutoUnseal();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_TRUE(core_->Sealed());
  auto s = Status();
  ASSERT_TRUE(s.contains("seal_error"));
  EXPECT_NE(std::string(s["seal_error"].as_string()).find("fake kms is down"), std::string::npos);
  kms_.up = true;
  ASSERT_TRUE(core_->AutoUnseal().ok());
  EXPECT_FALSE(Status().contains("seal_error"));
  ExpectEntries(5);

  // Sealed by an operator: the recovery keys unseal it (the seal unwraps the root key); a wrong
  // recovery key does not.
  ASSERT_TRUE(core_->Seal().ok());
  auto wrong = crypto::SecretBytes::Random(33);
  auto step = core_->Unseal(HexEncode(res->recovery_keys[0].view()), false);
  ASSERT_TRUE(step.ok()) << step.status();
  auto bad = core_->Unseal(HexEncode(wrong->view()), false);
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(core_->Sealed());
  ASSERT_TRUE(core_->Unseal(HexEncode(res->recovery_keys[0].view()), false).ok());
  ASSERT_TRUE(core_->Unseal(HexEncode(res->recovery_keys[2].view()), false).ok());
  EXPECT_FALSE(core_->Sealed());
  ExpectEntries(5);
}

TEST_F(AutoSealCoreTest, WrongSealTypeIsRefusedWithTheReason) {
  Start("transit");
  ASSERT_TRUE(core_->Initialize(1, 1).ok());
  Start("pkcs11");
  auto st = core_->AutoUnseal();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("\"transit\" seal"), std::string_view::npos) << st;
  EXPECT_TRUE(core_->Sealed());
}

TEST_F(AutoSealCoreTest, MigratesShamirToAutoAndBackKeepingDataAndKeys) {
  Start("");
  auto res = core_->Initialize(3, 2);
  ASSERT_TRUE(res.ok());
  root_ = res->root_token;
  std::vector<std::string> keys;
  for (auto& k : res->keys) keys.push_back(HexEncode(k.view()));
  ASSERT_TRUE(core_->Unseal(keys[0], false).ok());
  ASSERT_TRUE(core_->Unseal(keys[1], false).ok());
  WriteEntries(20);
  const int calls_before = kms_.calls;

  // Shamir -> transit: the stored seal is Shamir, the configured one transit.
  Start("transit");
  auto s = Status();
  EXPECT_EQ(s["migration"].as_bool(), true);
  EXPECT_EQ(s["type"].as_string(), "shamir");
  EXPECT_EQ(core_->AutoUnseal().code(), absl::StatusCode::kFailedPrecondition);
  auto no_flag = core_->Unseal(keys[0], false, /*migrate=*/false);
  EXPECT_EQ(no_flag.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_flag.status().message().find("migrate"), std::string_view::npos);
  ASSERT_TRUE(core_->Unseal(keys[2], false, true).ok());
  EXPECT_EQ(Status()["progress"].as_int64(), 1);
  // A seal that wraps but cannot unwrap fails the step: nothing is written, the Shamir root key
  // stays (it would otherwise be replaced by one no restart can open).
  kms_.can_decrypt = false;
  auto stored_before = phys_.Get(seal::kRootKeyPath);
  ASSERT_TRUE(stored_before.ok());
  ASSERT_TRUE(core_->Unseal(keys[2], false, true).ok());
  auto refused = core_->Unseal(keys[0], false, true);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("cannot unwrap"), std::string_view::npos)
      << refused.status();
  EXPECT_TRUE(core_->Sealed());
  EXPECT_EQ(*phys_.Get(seal::kRootKeyPath), *stored_before);
  EXPECT_EQ(Status()["type"].as_string(), "shamir");
  kms_.can_decrypt = true;
  // The seal being unreachable at the end fails the step and changes nothing.
  ASSERT_TRUE(core_->Unseal(keys[2], false, true).ok());
  kms_.up = false;
  EXPECT_FALSE(core_->Unseal(keys[0], false, true).ok());
  EXPECT_TRUE(core_->Sealed());
  kms_.up = true;
  ASSERT_TRUE(core_->Unseal(keys[2], false, true).ok());
  auto done = core_->Unseal(keys[0], false, true);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(core_->Sealed());
  EXPECT_GT(kms_.calls, calls_before);
  s = Status();
  EXPECT_EQ(s["type"].as_string(), "transit");
  EXPECT_EQ(s["recovery_seal"].as_bool(), true);
  EXPECT_EQ(s["n"].as_int64(), 3);
  ExpectEntries(20);

  // Restart: unseals by itself; the old unseal keys are now the recovery keys.
  Start("transit");
  ASSERT_TRUE(core_->AutoUnseal().ok());
  ExpectEntries(20);
  ASSERT_TRUE(core_->Seal().ok());
  ASSERT_TRUE(core_->Unseal(keys[1], false).ok());
  ASSERT_TRUE(core_->Unseal(keys[2], false).ok());
  EXPECT_FALSE(core_->Sealed());

  // transit -> Shamir: the transit stanza is disabled; the recovery keys become unseal keys.
  Start("", "transit");
  EXPECT_EQ(Status()["migration"].as_bool(), true);
  ASSERT_TRUE(core_->Unseal(keys[0], false, true).ok());
  ASSERT_TRUE(core_->Unseal(keys[1], false, true).ok());
  EXPECT_FALSE(core_->Sealed());
  EXPECT_EQ(Status()["type"].as_string(), "shamir");
  auto rec = phys_.Get(seal::kRecoveryKeyPath);
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());  // the recovery key went with the auto seal

  Start("");
  kms_.up = false;  // no longer needed
  ASSERT_TRUE(core_->Unseal(keys[2], false).ok());
  ASSERT_TRUE(core_->Unseal(keys[0], false).ok());
  EXPECT_FALSE(core_->Sealed());
  ExpectEntries(20);
}

TEST_F(AutoSealCoreTest, AutoSealWithoutItsStanzaSaysWhatToAdd) {
  Start("transit");
  ASSERT_TRUE(core_->Initialize(1, 1).ok());
  Start("");
  auto st = core_->Unseal(std::string(64, 'a'), false, true);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.status().message().find("disabled"), std::string_view::npos) << st.status();
}

}  // namespace
}  // namespace coffer::core
