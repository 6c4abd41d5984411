#include <openssl/crypto.h>

#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "crypto/shamir.h"
#include "seal/seal.h"
#include "util/status.h"

namespace coffer::seal {

absl::Status ValidateShares(int shares, int threshold) {
  if (shares < 1) return absl::InvalidArgumentError("secret_shares must be at least 1");
  if (shares > 255) return absl::InvalidArgumentError("secret_shares must be at most 255");
  if (threshold < 1) return absl::InvalidArgumentError("secret_threshold must be at least 1");
  if (threshold > shares)
    return absl::InvalidArgumentError(Cat("secret_threshold (", threshold,
                                          ") cannot be larger than secret_shares (", shares, ")"));
  if (shares > 1 && threshold == 1)
    return absl::InvalidArgumentError(
        "secret_threshold must be greater than one for multiple shares: with threshold 1 every "
        "share alone is the whole key");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SealConfig>> ShamirSeal::Config() {
  ASSIGN_OR_RETURN(auto raw, physical_->Get(kSealConfigPath));
  if (!raw) return std::optional<SealConfig>();
  boost::system::error_code ec;
  auto v = boost::json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("seal configuration is corrupt");
  SealConfig c;
  auto& o = v.as_object();
  if (auto* t = o.if_contains("type"); t && t->is_string()) c.type = std::string(t->as_string());
  if (auto* s = o.if_contains("secret_shares"); s && s->is_int64())
    c.secret_shares = static_cast<int>(s->as_int64());
  if (auto* t = o.if_contains("secret_threshold"); t && t->is_int64())
    c.secret_threshold = static_cast<int>(t->as_int64());
  if (c.secret_shares < 1 || c.secret_threshold < 1)
    return absl::DataLossError("seal configuration is corrupt");
  return std::optional<SealConfig>(c);
}

absl::StatusOr<std::pair<crypto::SecretBytes, std::vector<crypto::SecretBytes>>>
ShamirSeal::NewShares(int shares, int threshold) {
  RETURN_IF_ERROR(ValidateShares(shares, threshold));
  ASSIGN_OR_RETURN(auto unseal_key, crypto::SecretBytes::Random(crypto::kAesKeySize));
  std::vector<crypto::SecretBytes> out;
  if (shares == 1) {
    out.push_back(unseal_key.Clone());  // Vault hands out the key itself for a single share.
  } else {
    ASSIGN_OR_RETURN(out, crypto::ShamirSplit(unseal_key, shares, threshold));
  }
  return std::make_pair(std::move(unseal_key), std::move(out));
}

absl::Status ShamirSeal::Commit(const crypto::SecretBytes& unseal_key, int shares, int threshold,
                                const crypto::SecretBytes& root_key) {
  RETURN_IF_ERROR(ValidateShares(shares, threshold));
  ASSIGN_OR_RETURN(std::string sealed_root,
                   crypto::AesGcmSeal(unseal_key, root_key.view(), kRootKeyPath));
  std::string config = boost::json::serialize(boost::json::object{
      {"type", "shamir"}, {"secret_shares", shares}, {"secret_threshold", threshold}});
  // The root key and the config land in one atomic batch: a crash leaves the old shares or the
  // new ones working, never neither.
  std::vector<storage::WriteOp> ops;
  ops.push_back({storage::WriteOp::Kind::kPut, kRootKeyPath, sealed_root});
  ops.push_back({storage::WriteOp::Kind::kPut, kSealConfigPath, config});
  RETURN_IF_ERROR(physical_->Write(std::move(ops)));
  Reset();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<crypto::SecretBytes>> ShamirSeal::Initialize(
    int shares, int threshold, const crypto::SecretBytes& root_key) {
  ASSIGN_OR_RETURN(auto made, NewShares(shares, threshold));
  RETURN_IF_ERROR(Commit(made.first, shares, threshold, root_key));
  return std::move(made.second);
}

absl::Status ShamirSeal::CheckShare(std::string_view share) {
  ASSIGN_OR_RETURN(auto cfg, Config());
  if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
  const size_t want = cfg->secret_shares == 1 ? crypto::kAesKeySize : crypto::kAesKeySize + 1;
  if (share.size() != want)
    return absl::InvalidArgumentError(
        Cat("key has the wrong length: ", share.size(), " bytes decoded, ", want, " expected"));
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> ShamirSeal::RootKeyFromShares(
    const std::vector<crypto::SecretBytes>& parts) {
  if (parts.empty()) return absl::InvalidArgumentError("no key shares");
  crypto::SecretBytes unseal_key;
  if (parts.size() == 1) {
    unseal_key = parts[0].Clone();
  } else {
    auto combined = crypto::ShamirCombine(parts);
    if (!combined.ok())
      return absl::InvalidArgumentError(Cat("the keys do not combine: ", Msg(combined.status())));
    unseal_key = std::move(*combined);
  }
  ASSIGN_OR_RETURN(auto sealed_root, physical_->Get(kRootKeyPath));
  if (!sealed_root) return absl::DataLossError("root key is missing from storage");
  auto root = crypto::AesGcmOpen(unseal_key, *sealed_root, kRootKeyPath);
  if (!root.ok())
    return absl::InvalidArgumentError(
        "the submitted keys do not combine to this server's unseal key (a wrong or mistyped "
        "key)");
  crypto::SecretBytes out(*root);
  OPENSSL_cleanse(root->data(), root->size());
  return out;
}

absl::StatusOr<UnsealStep> ShamirSeal::Submit(std::string_view share) {
  ASSIGN_OR_RETURN(auto cfg, Config());
  if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
  const size_t want = cfg->secret_shares == 1 ? crypto::kAesKeySize : crypto::kAesKeySize + 1;
  if (share.size() != want)
    return absl::InvalidArgumentError(Cat("unseal key has the wrong length: ", share.size(),
                                          " bytes decoded, ", want, " expected"));
  UnsealStep step;
  std::vector<crypto::SecretBytes> parts;
  {
    MutexLock l(&mu_);
    if (shares_.empty()) nonce_ = crypto::RandomUuid();
    bool dup = false;
    for (auto& s : shares_) dup = dup || crypto::ConstantTimeEquals(s.view(), share);
    // A share submitted twice is ignored (as Vault does); progress does not move.
    if (!dup) shares_.emplace_back(share);
    if (static_cast<int>(shares_.size()) < cfg->secret_threshold) {
      step.progress = {static_cast<int>(shares_.size()), nonce_};
      return step;
    }
    parts = std::move(shares_);
    shares_.clear();
    nonce_.clear();
  }
  crypto::SecretBytes unseal_key;
  if (cfg->secret_threshold == 1) {
    unseal_key = std::move(parts[0]);
  } else {
    auto combined = crypto::ShamirCombine(parts);
    if (!combined.ok())
      return absl::InvalidArgumentError(
          Cat("unseal failed: ", Msg(combined.status()), "; progress was reset"));
    unseal_key = std::move(*combined);
  }
  ASSIGN_OR_RETURN(auto sealed_root, physical_->Get(kRootKeyPath));
  if (!sealed_root) return absl::DataLossError("root key is missing from storage");
  auto root = crypto::AesGcmOpen(unseal_key, *sealed_root, kRootKeyPath);
  if (!root.ok())
    return absl::InvalidArgumentError(
        "unseal failed: the submitted keys do not combine to this server's unseal key (a wrong "
        "or mistyped key); progress was reset, submit the keys again");
  step.root_key = crypto::SecretBytes(*root);
  OPENSSL_cleanse(root->data(), root->size());
  return step;
}

void ShamirSeal::Reset() {
  MutexLock l(&mu_);
  shares_.clear();
  nonce_.clear();
}

Progress ShamirSeal::CurrentProgress() {
  MutexLock l(&mu_);
  return {static_cast<int>(shares_.size()), nonce_};
}

}  // namespace coffer::seal
