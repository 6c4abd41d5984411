// Seal: protects the barrier's root key. The Shamir seal splits a random 256-bit unseal key into
// shares (Vault's share format); the root key is stored at `core/root-key` encrypted with the
// unseal key (AES-256-GCM, path as AAD), so the shares open the root key, never the data. An
// auto seal has a Wrapper (wrapper.h) wrap the root key instead, and operators hold shares of a
// recovery key. The seal configuration (type, shares, thresholds) is stored in plaintext at
// `core/seal-config`: it holds no secret and must be readable while sealed. docs/seals.md.
//
// Unseal progress (submitted shares) lives in memory only and is wiped on reset.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/secret_bytes.h"
#include "seal/wrapper.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::seal {

inline constexpr char kSealConfigPath[] = "core/seal-config";
inline constexpr char kRootKeyPath[] = "core/root-key";
// Auto seals: the recovery key, wrapped by the seal as the root key is.
inline constexpr char kRecoveryKeyPath[] = "core/recovery-key";

struct SealConfig {
  std::string type = "shamir";  // "shamir" or the auto seal's type ("transit", "pkcs11")
  int secret_shares = 0;        // always 1 under an auto seal (the stored root key)
  int secret_threshold = 0;
  int recovery_shares = 0;  // auto seals: the recovery key's shares
  int recovery_threshold = 0;
  bool recovery() const { return type != "shamir"; }
  // The shares operators hold: unseal keys under Shamir, recovery keys under an auto seal.
  int shares() const { return recovery() ? recovery_shares : secret_shares; }
  int threshold() const { return recovery() ? recovery_threshold : secret_threshold; }
};

// The stored seal configuration (plaintext JSON); DataLoss when it is not one.
absl::StatusOr<SealConfig> ParseSealConfig(std::string_view text);
std::string SerializeSealConfig(const SealConfig& c);
// nullopt: not initialized.
absl::StatusOr<std::optional<SealConfig>> ReadSealConfig(storage::Storage* physical);

// A value an auto seal wrapped, as stored: {"seal":"transit","key_id":"...","ciphertext":"b64"}.
struct WrappedBlob {
  std::string seal;
  std::string key_id;
  std::string ciphertext;
};
absl::StatusOr<WrappedBlob> ParseWrappedBlob(std::string_view text);  // DataLoss when corrupt
std::string SerializeWrappedBlob(const WrappedBlob& b);

struct Progress {
  int progress = 0;
  std::string nonce;
};

// Outcome of submitting one key share.
struct UnsealStep {
  Progress progress;
  // Set once the threshold is reached: the root key and the key the shares combine to (the
  // unseal key under Shamir, the recovery key under an auto seal).
  std::optional<crypto::SecretBytes> root_key;
  std::optional<crypto::SecretBytes> share_key;
};

// What the seals share: the configuration, collecting shares up to the threshold, combining them
// and making new ones. A seal says how a combined key opens the root key (OpenWithKey) and how
// a new one is stored (Commit). All methods are safe to call from several threads.
class Seal {
 public:
  explicit Seal(storage::Storage* physical) : physical_(physical) {}
  virtual ~Seal() = default;
  virtual std::string_view Type() const = 0;
  bool IsAuto() const { return Type() != "shamir"; }

  absl::StatusOr<std::optional<SealConfig>> Config() { return ReadSealConfig(physical_); }
  // Validates parameters as Vault does (the recovery key's under an auto seal), stores the
  // sealed root key and the config, and returns the shares operators keep.
  absl::StatusOr<std::vector<crypto::SecretBytes>> Initialize(int shares, int threshold,
                                                              const crypto::SecretBytes& root_key);
  // Unseal progress (in memory only, wiped on Reset).
  absl::StatusOr<UnsealStep> Submit(std::string_view share) ABSL_LOCKS_EXCLUDED(mu_);
  void Reset() ABSL_LOCKS_EXCLUDED(mu_);
  Progress CurrentProgress() ABSL_LOCKS_EXCLUDED(mu_);

  // Rekey and root token generation (sys/rekey, sys/generate-root). Each share has the length
  // the current config implies (InvalidArgument otherwise).
  absl::Status CheckShare(std::string_view share);
  // The root key the shares open; InvalidArgument when they do not combine to the key.
  absl::StatusOr<crypto::SecretBytes> RootKeyFromShares(
      const std::vector<crypto::SecretBytes>& shares);
  // A fresh key and its shares (the key itself for one share); nothing is stored.
  absl::StatusOr<std::pair<crypto::SecretBytes, std::vector<crypto::SecretBytes>>> NewShares(
      int shares, int threshold);

  // The root key `key` (combined from shares) opens; InvalidArgument when it is not this
  // server's key.
  virtual absl::StatusOr<crypto::SecretBytes> OpenWithKey(const crypto::SecretBytes& key) = 0;
  // Stores `root_key` sealed and `key` as the key operators' shares combine to, with the config,
  // in one atomic write; from then on only the new shares work. Also how a seal migration ends:
  // the new seal commits the old shares' key.
  virtual absl::Status Commit(const crypto::SecretBytes& key, int shares, int threshold,
                              const crypto::SecretBytes& root_key) = 0;

 protected:
  storage::Storage* const physical_;

 private:
  absl::StatusOr<crypto::SecretBytes> Combine(const std::vector<crypto::SecretBytes>& parts);

  Mutex mu_;
  std::vector<crypto::SecretBytes> shares_ ABSL_GUARDED_BY(mu_);
  std::string nonce_ ABSL_GUARDED_BY(mu_);
};

// Checks Vault's limits on secret_shares / secret_threshold; the message says which rule failed.
absl::Status ValidateShares(int shares, int threshold);

// The unseal key's shares open the root key, stored AES-256-GCM sealed with the unseal key.
class ShamirSeal final : public Seal {
 public:
  explicit ShamirSeal(storage::Storage* physical) : Seal(physical) {}
  std::string_view Type() const override { return "shamir"; }
  absl::StatusOr<crypto::SecretBytes> OpenWithKey(const crypto::SecretBytes& key) override;
  absl::Status Commit(const crypto::SecretBytes& key, int shares, int threshold,
                      const crypto::SecretBytes& root_key) override;
};

// An auto seal: the Wrapper (another server's Transit key, an HSM key) wraps the root key, so
// the server unseals itself (UnwrapRootKey). Operators hold recovery key shares: they authorize
// sys/generate-root and sys/rekey and a manual unseal, and become the unseal keys when the
// server migrates back to Shamir. The recovery key is stored wrapped by the seal too.
class AutoSeal final : public Seal {
 public:
  AutoSeal(storage::Storage* physical, Wrapper* wrapper) : Seal(physical), wrapper_(wrapper) {}
  std::string_view Type() const override { return wrapper_->Type(); }
  Wrapper* wrapper() const { return wrapper_; }
  absl::StatusOr<crypto::SecretBytes> UnwrapRootKey();
  absl::StatusOr<crypto::SecretBytes> OpenWithKey(const crypto::SecretBytes& key) override;
  absl::Status Commit(const crypto::SecretBytes& key, int shares, int threshold,
                      const crypto::SecretBytes& root_key) override;

 private:
  absl::StatusOr<crypto::SecretBytes> Unwrap(const char* path);
  Wrapper* const wrapper_;
};

}  // namespace coffer::seal
