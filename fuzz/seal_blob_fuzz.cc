// Fuzzes what a server reads from storage before it is unsealed, where a tampered or truncated
// store must give an error and never a crash or a key: the seal configuration
// (core/seal-config), the wrapped-key blob an auto seal stores (core/root-key,
// core/recovery-key), and the Shamir seal's sealed root key. Parsed values must serialize back
// to the same value; nothing the fuzzer makes up opens under the auto seal's or the Shamir
// seal's key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "seal/seal.h"
#include "storage/memory_storage.h"

namespace {

using coffer::crypto::SecretBytes;

void Check(bool ok) {
  if (!ok) abort();
}

// An auto seal's wrapper under a fixed key: AES-256-GCM with the path as AAD.
class FixedWrapper final : public coffer::seal::Wrapper {
 public:
  std::string_view Type() const override { return "transit"; }
  absl::Status Init() override { return absl::OkStatus(); }
  absl::StatusOr<Sealed> Encrypt(std::string_view pt, std::string_view aad) override {
    auto ct = coffer::crypto::AesGcmSeal(Key(), pt, aad);
    if (!ct.ok()) return ct.status();
    return Sealed{*ct, "fixed:v1"};
  }
  absl::StatusOr<SecretBytes> Decrypt(std::string_view ct, std::string_view aad) override {
    auto pt = coffer::crypto::AesGcmOpen(Key(), ct, aad);
    if (!pt.ok()) return absl::InvalidArgumentError("cannot decrypt");
    return SecretBytes(*pt);
  }
  static const SecretBytes& Key() {
    static const SecretBytes* k = new SecretBytes(std::string(32, '\x42'));
    return *k;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto cfg = coffer::seal::ParseSealConfig(in);
  if (cfg.ok()) {
    Check(cfg->shares() >= 1 && cfg->threshold() >= 1 && cfg->threshold() <= cfg->shares());
    auto again = coffer::seal::ParseSealConfig(coffer::seal::SerializeSealConfig(*cfg));
    Check(again.ok() && again->type == cfg->type && again->shares() == cfg->shares() &&
          again->threshold() == cfg->threshold());
  } else {
    Check(cfg.status().code() == absl::StatusCode::kDataLoss);
  }

  auto blob = coffer::seal::ParseWrappedBlob(in);
  if (blob.ok()) {
    auto again = coffer::seal::ParseWrappedBlob(coffer::seal::SerializeWrappedBlob(*blob));
    Check(again.ok() && again->seal == blob->seal && again->key_id == blob->key_id &&
          again->ciphertext == blob->ciphertext);
  } else {
    Check(blob.status().code() == absl::StatusCode::kDataLoss);
  }

  // The bytes as the stored root key of an initialized server, under each seal.
  coffer::storage::MemoryStorage mem;
  Check(mem.Put(coffer::seal::kSealConfigPath,
                R"({"type":"transit","secret_shares":1,"secret_threshold":1,)"
                R"("recovery_shares":1,"recovery_threshold":1})")
            .ok());
  Check(mem.Put(coffer::seal::kRootKeyPath, std::string(in)).ok());
  Check(mem.Put(coffer::seal::kRecoveryKeyPath, std::string(in)).ok());
  FixedWrapper wrapper;
  coffer::seal::AutoSeal auto_seal(&mem, &wrapper);
  Check(!auto_seal.UnwrapRootKey().ok());
  Check(!auto_seal.OpenWithKey(SecretBytes(std::string(32, 'k'))).ok());
  coffer::seal::ShamirSeal shamir(&mem);
  Check(!shamir.OpenWithKey(SecretBytes(std::string(32, 'k'))).ok());
  return 0;
}
