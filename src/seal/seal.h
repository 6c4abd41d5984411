// Seal: protects the barrier's root key. The Shamir seal splits a random 256-bit unseal key into
// shares (Vault's share format); the root key is stored at `core/root-key` encrypted with the
// unseal key (AES-256-GCM, path as AAD), so the shares open the root key, never the data.
// The seal configuration (type, shares, threshold) is stored in plaintext at
// `core/seal-config`: it holds no secret and must be readable while sealed.
//
// Unseal progress (submitted shares) lives in memory only and is wiped on reset.
// All methods are safe to call from several threads.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crypto/secret_bytes.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::seal {

inline constexpr char kSealConfigPath[] = "core/seal-config";
inline constexpr char kRootKeyPath[] = "core/root-key";

struct SealConfig {
  std::string type = "shamir";
  int secret_shares = 0;
  int secret_threshold = 0;
};

struct Progress {
  int progress = 0;
  std::string nonce;
};

// Outcome of submitting one unseal key share.
struct UnsealStep {
  Progress progress;
  std::optional<crypto::SecretBytes> root_key;  // set once the threshold is reached
};

class Seal {
 public:
  virtual ~Seal() = default;
  virtual std::string_view Type() const = 0;
  virtual absl::StatusOr<std::optional<SealConfig>> Config() = 0;
  // Validates parameters as Vault does, stores the encrypted root key and the config, and returns
  // the unseal key shares.
  virtual absl::StatusOr<std::vector<crypto::SecretBytes>> Initialize(
      int shares, int threshold, const crypto::SecretBytes& root_key) = 0;
  virtual absl::StatusOr<UnsealStep> Submit(std::string_view share) = 0;
  virtual void Reset() = 0;
  virtual Progress CurrentProgress() = 0;

  // Rekey and root token generation (sys/rekey, sys/generate-root). Each share has the length
  // the current config implies (InvalidArgument otherwise).
  virtual absl::Status CheckShare(std::string_view share) = 0;
  // The root key the shares open; InvalidArgument when they do not combine to the unseal key.
  virtual absl::StatusOr<crypto::SecretBytes> RootKeyFromShares(
      const std::vector<crypto::SecretBytes>& shares) = 0;
  // A fresh unseal key and its shares (the key itself for one share); nothing is stored.
  virtual absl::StatusOr<std::pair<crypto::SecretBytes, std::vector<crypto::SecretBytes>>>
  NewShares(int shares, int threshold) = 0;
  // Stores `root_key` sealed with `unseal_key` and the new config, in one atomic write; from
  // then on only the new shares open the root key.
  virtual absl::Status Commit(const crypto::SecretBytes& unseal_key, int shares, int threshold,
                              const crypto::SecretBytes& root_key) = 0;
};

// Checks Vault's limits on secret_shares / secret_threshold; the message says which rule failed.
absl::Status ValidateShares(int shares, int threshold);

class ShamirSeal final : public Seal {
 public:
  explicit ShamirSeal(storage::Storage* physical) : physical_(physical) {}
  std::string_view Type() const override { return "shamir"; }
  absl::StatusOr<std::optional<SealConfig>> Config() override;
  absl::StatusOr<std::vector<crypto::SecretBytes>> Initialize(
      int shares, int threshold, const crypto::SecretBytes& root_key) override;
  absl::StatusOr<UnsealStep> Submit(std::string_view share) override ABSL_LOCKS_EXCLUDED(mu_);
  void Reset() override ABSL_LOCKS_EXCLUDED(mu_);
  Progress CurrentProgress() override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckShare(std::string_view share) override;
  absl::StatusOr<crypto::SecretBytes> RootKeyFromShares(
      const std::vector<crypto::SecretBytes>& shares) override;
  absl::StatusOr<std::pair<crypto::SecretBytes, std::vector<crypto::SecretBytes>>> NewShares(
      int shares, int threshold) override;
  absl::Status Commit(const crypto::SecretBytes& unseal_key, int shares, int threshold,
                      const crypto::SecretBytes& root_key) override;

 private:
  storage::Storage* const physical_;
  Mutex mu_;
  std::vector<crypto::SecretBytes> shares_ ABSL_GUARDED_BY(mu_);
  std::string nonce_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::seal
