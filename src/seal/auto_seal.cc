#include <tuple>

#include "crypto/crypto.h"
#include "seal/seal.h"
#include "util/status.h"

namespace coffer::seal {
namespace {

// The seal's credentials or key being refused is the server's configuration, not the caller's
// request: a 403 or 404 on sys/init or sys/unseal would read as the caller's fault.
absl::Status ForCaller(const absl::Status& st) {
  if (st.code() == absl::StatusCode::kPermissionDenied || st.code() == absl::StatusCode::kNotFound)
    return absl::FailedPreconditionError(st.message());
  return st;
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> AutoSeal::Unwrap(const char* path) {
  ASSIGN_OR_RETURN(auto raw, physical_->Get(path));
  if (!raw) return absl::DataLossError(Cat(path, " is missing from storage"));
  ASSIGN_OR_RETURN(auto blob, ParseWrappedBlob(*raw));
  if (blob.seal != wrapper_->Type())
    return absl::FailedPreconditionError(Cat(path, " was wrapped by a \"", blob.seal,
                                             "\" seal, but the configured seal is \"",
                                             wrapper_->Type(), "\""));
  RETURN_IF_ERROR(ForCaller(wrapper_->Init()));
  auto out = wrapper_->Decrypt(blob.ciphertext, path);
  if (!out.ok() && out.status().code() == absl::StatusCode::kInvalidArgument)
    return absl::FailedPreconditionError(
        Cat("the ", wrapper_->Type(), " seal could not unwrap ", path, " (key ", blob.key_id,
            "): ", Msg(out.status()), "; is the seal stanza pointing at the key that wrapped it?"));
  if (!out.ok()) return ForCaller(out.status());
  return out;
}

absl::StatusOr<crypto::SecretBytes> AutoSeal::UnwrapRootKey() { return Unwrap(kRootKeyPath); }

absl::StatusOr<crypto::SecretBytes> AutoSeal::OpenWithKey(const crypto::SecretBytes& key) {
  ASSIGN_OR_RETURN(auto recovery, Unwrap(kRecoveryKeyPath));
  if (!crypto::ConstantTimeEquals(recovery.view(), key.view()))
    return absl::InvalidArgumentError(
        "the submitted recovery keys do not combine to this server's recovery key (a wrong or "
        "mistyped key)");
  return UnwrapRootKey();
}

absl::Status AutoSeal::Commit(const crypto::SecretBytes& key, int shares, int threshold,
                              const crypto::SecretBytes& root_key) {
  RETURN_IF_ERROR(ValidateShares(shares, threshold));
  RETURN_IF_ERROR(ForCaller(wrapper_->Init()));
  auto wrap = [&](std::string_view pt, const char* path) -> absl::StatusOr<Wrapper::Sealed> {
    auto out = wrapper_->Encrypt(pt, path);
    if (!out.ok()) return ForCaller(out.status());
    return out;
  };
  ASSIGN_OR_RETURN(auto root, wrap(root_key.view(), kRootKeyPath));
  ASSIGN_OR_RETURN(auto recovery, wrap(key.view(), kRecoveryKeyPath));
  // Nothing is written until the seal has given both back: a seal that can wrap but not unwrap
  // (a token without decrypt, an HSM key without CKA_DECRYPT) would otherwise replace the
  // stored root key with one no restart can open.
  for (auto [sealed, want, path] : {std::tuple{&root, &root_key, kRootKeyPath},
                                    std::tuple{&recovery, &key, kRecoveryKeyPath}}) {
    auto back = wrapper_->Decrypt(sealed->ciphertext, path);
    if (!back.ok())
      return absl::FailedPreconditionError(
          Cat("the ", wrapper_->Type(), " seal wrapped ", path,
              " but cannot unwrap it, so nothing was written: ", Msg(back.status())));
    if (!crypto::ConstantTimeEquals(back->view(), want->view()))
      return absl::FailedPreconditionError(Cat("the ", wrapper_->Type(),
                                               " seal gave back other bytes for ", path,
                                               "; nothing was written"));
  }
  SealConfig c;
  c.type = std::string(wrapper_->Type());
  c.secret_shares = 1;  // the root key is stored (Vault's stored_shares = 1)
  c.secret_threshold = 1;
  c.recovery_shares = shares;
  c.recovery_threshold = threshold;
  std::vector<storage::WriteOp> ops;
  ops.push_back({storage::WriteOp::Kind::kPut, kRootKeyPath,
                 SerializeWrappedBlob({c.type, root.key_id, root.ciphertext})});
  ops.push_back({storage::WriteOp::Kind::kPut, kRecoveryKeyPath,
                 SerializeWrappedBlob({c.type, recovery.key_id, recovery.ciphertext})});
  ops.push_back({storage::WriteOp::Kind::kPut, kSealConfigPath, SerializeSealConfig(c)});
  RETURN_IF_ERROR(physical_->Write(std::move(ops)));
  Reset();
  return absl::OkStatus();
}

}  // namespace coffer::seal
