#include <openssl/crypto.h>

#include "crypto/crypto.h"
#include "seal/seal.h"
#include "util/status.h"

namespace coffer::seal {

absl::StatusOr<crypto::SecretBytes> ShamirSeal::OpenWithKey(const crypto::SecretBytes& key) {
  ASSIGN_OR_RETURN(auto sealed_root, physical_->Get(kRootKeyPath));
  if (!sealed_root) return absl::DataLossError("root key is missing from storage");
  auto root = crypto::AesGcmOpen(key, *sealed_root, kRootKeyPath);
  if (!root.ok())
    return absl::InvalidArgumentError(
        "the submitted keys do not combine to this server's unseal key (a wrong or mistyped "
        "key)");
  crypto::SecretBytes out(*root);
  OPENSSL_cleanse(root->data(), root->size());
  return out;
}

absl::Status ShamirSeal::Commit(const crypto::SecretBytes& key, int shares, int threshold,
                                const crypto::SecretBytes& root_key) {
  RETURN_IF_ERROR(ValidateShares(shares, threshold));
  ASSIGN_OR_RETURN(std::string sealed_root, crypto::AesGcmSeal(key, root_key.view(), kRootKeyPath));
  SealConfig c;
  c.secret_shares = shares;
  c.secret_threshold = threshold;
  // The root key and the config land in one atomic batch: a crash leaves the old shares or the
  // new ones working, never neither. A recovery key left by an auto seal this server migrated
  // from goes in the same batch.
  std::vector<storage::WriteOp> ops;
  ops.push_back({storage::WriteOp::Kind::kPut, kRootKeyPath, sealed_root});
  ops.push_back({storage::WriteOp::Kind::kPut, kSealConfigPath, SerializeSealConfig(c)});
  ops.push_back({storage::WriteOp::Kind::kDelete, kRecoveryKeyPath, ""});
  RETURN_IF_ERROR(physical_->Write(std::move(ops)));
  Reset();
  return absl::OkStatus();
}

}  // namespace coffer::seal
