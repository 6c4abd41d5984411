#include "seal/seal.h"

#include <openssl/crypto.h>

#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "crypto/shamir.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::seal {
namespace {

// A field of a stored object that must be a whole number in [lo, hi]; absent is 0.
bool ReadCount(const boost::json::object& o, std::string_view key, int lo, int hi, int* out) {
  const auto* v = o.if_contains(key);
  if (!v) {
    *out = 0;
    return true;
  }
  if (!v->is_int64() || v->as_int64() < lo || v->as_int64() > hi) return false;
  *out = static_cast<int>(v->as_int64());
  return true;
}

}  // namespace

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

absl::StatusOr<SealConfig> ParseSealConfig(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return absl::DataLossError("seal configuration is corrupt");
  const auto& o = v.as_object();
  SealConfig c;
  if (const auto* t = o.if_contains("type")) {
    if (!t->is_string() || t->as_string().empty() || t->as_string().size() > 64)
      return absl::DataLossError("seal configuration is corrupt: bad type");
    c.type = std::string(t->as_string());
  }
  if (!ReadCount(o, "secret_shares", 1, 255, &c.secret_shares) ||
      !ReadCount(o, "secret_threshold", 1, 255, &c.secret_threshold) ||
      !ReadCount(o, "recovery_shares", 1, 255, &c.recovery_shares) ||
      !ReadCount(o, "recovery_threshold", 1, 255, &c.recovery_threshold))
    return absl::DataLossError("seal configuration is corrupt: a share count is out of range");
  // An auto seal stores the root key itself: its secret_* are 1 whether written or not (the
  // serializer always writes them, so a parsed config serializes to one that parses again).
  if (c.recovery()) {
    if (c.secret_shares == 0) c.secret_shares = 1;
    if (c.secret_threshold == 0) c.secret_threshold = 1;
  }
  if (c.shares() < 1 || c.threshold() < 1 || c.threshold() > c.shares())
    return absl::DataLossError("seal configuration is corrupt: no valid shares and threshold");
  return c;
}

std::string SerializeSealConfig(const SealConfig& c) {
  boost::json::object o{{"type", c.type},
                        {"secret_shares", c.secret_shares},
                        {"secret_threshold", c.secret_threshold}};
  if (c.recovery()) {
    o["recovery_shares"] = c.recovery_shares;
    o["recovery_threshold"] = c.recovery_threshold;
  }
  return boost::json::serialize(o);
}

absl::StatusOr<std::optional<SealConfig>> ReadSealConfig(storage::Storage* physical) {
  ASSIGN_OR_RETURN(auto raw, physical->Get(kSealConfigPath));
  if (!raw) return std::optional<SealConfig>();
  ASSIGN_OR_RETURN(auto c, ParseSealConfig(*raw));
  return std::optional<SealConfig>(std::move(c));
}

absl::StatusOr<WrappedBlob> ParseWrappedBlob(std::string_view text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return absl::DataLossError("wrapped key is corrupt: not JSON");
  const auto& o = v.as_object();
  WrappedBlob b;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"seal", &b.seal},
                          {"key_id", &b.key_id},
                          {"ciphertext", &b.ciphertext}}) {
    const auto* f = o.if_contains(key);
    if (!f || !f->is_string())
      return absl::DataLossError(Cat("wrapped key is corrupt: no \"", key, "\""));
    *out = std::string(f->as_string());
  }
  auto raw = Base64Decode(b.ciphertext);
  if (b.seal.empty() || !raw || raw->empty())
    return absl::DataLossError("wrapped key is corrupt: empty seal type or ciphertext");
  b.ciphertext = std::move(*raw);
  return b;
}

std::string SerializeWrappedBlob(const WrappedBlob& b) {
  return boost::json::serialize(boost::json::object{
      {"seal", b.seal}, {"key_id", b.key_id}, {"ciphertext", Base64Encode(b.ciphertext)}});
}

absl::StatusOr<std::pair<crypto::SecretBytes, std::vector<crypto::SecretBytes>>> Seal::NewShares(
    int shares, int threshold) {
  RETURN_IF_ERROR(ValidateShares(shares, threshold));
  ASSIGN_OR_RETURN(auto key, crypto::SecretBytes::Random(crypto::kAesKeySize));
  std::vector<crypto::SecretBytes> out;
  if (shares == 1) {
    out.push_back(key.Clone());  // Vault hands out the key itself for a single share.
  } else {
    ASSIGN_OR_RETURN(out, crypto::ShamirSplit(key, shares, threshold));
  }
  return std::make_pair(std::move(key), std::move(out));
}

absl::StatusOr<std::vector<crypto::SecretBytes>> Seal::Initialize(
    int shares, int threshold, const crypto::SecretBytes& root_key) {
  ASSIGN_OR_RETURN(auto made, NewShares(shares, threshold));
  RETURN_IF_ERROR(Commit(made.first, shares, threshold, root_key));
  Reset();
  return std::move(made.second);
}

absl::Status Seal::CheckShare(std::string_view share) {
  ASSIGN_OR_RETURN(auto cfg, Config());
  if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
  const size_t want = cfg->shares() == 1 ? crypto::kAesKeySize : crypto::kAesKeySize + 1;
  if (share.size() != want)
    return absl::InvalidArgumentError(Cat(cfg->recovery() ? "recovery key" : "key",
                                          " has the wrong length: ", share.size(),
                                          " bytes decoded, ", want, " expected"));
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> Seal::Combine(const std::vector<crypto::SecretBytes>& parts) {
  if (parts.empty()) return absl::InvalidArgumentError("no key shares");
  if (parts.size() == 1) return parts[0].Clone();
  auto combined = crypto::ShamirCombine(parts);
  if (!combined.ok())
    return absl::InvalidArgumentError(Cat("the keys do not combine: ", Msg(combined.status())));
  return std::move(*combined);
}

absl::StatusOr<crypto::SecretBytes> Seal::RootKeyFromShares(
    const std::vector<crypto::SecretBytes>& parts) {
  ASSIGN_OR_RETURN(auto key, Combine(parts));
  return OpenWithKey(key);
}

absl::StatusOr<UnsealStep> Seal::Submit(std::string_view share) {
  ASSIGN_OR_RETURN(auto cfg, Config());
  if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
  RETURN_IF_ERROR(CheckShare(share));
  UnsealStep step;
  std::vector<crypto::SecretBytes> parts;
  {
    MutexLock l(&mu_);
    if (shares_.empty()) nonce_ = crypto::RandomUuid();
    bool dup = false;
    for (auto& s : shares_) dup = dup || crypto::ConstantTimeEquals(s.view(), share);
    // A share submitted twice is ignored (as Vault does); progress does not move.
    if (!dup) shares_.emplace_back(share);
    if (static_cast<int>(shares_.size()) < cfg->threshold()) {
      step.progress = {static_cast<int>(shares_.size()), nonce_};
      return step;
    }
    parts = std::move(shares_);
    shares_.clear();
    nonce_.clear();
  }
  auto key = Combine(parts);
  if (!key.ok())
    return absl::InvalidArgumentError(
        Cat("unseal failed: ", Msg(key.status()), "; progress was reset"));
  auto root = OpenWithKey(*key);
  if (!root.ok()) {
    if (root.status().code() != absl::StatusCode::kInvalidArgument) return root.status();
    return absl::InvalidArgumentError(
        Cat("unseal failed: ", Msg(root.status()), "; progress was reset, submit the keys again"));
  }
  step.root_key = std::move(*root);
  step.share_key = std::move(*key);
  return step;
}

void Seal::Reset() {
  MutexLock l(&mu_);
  shares_.clear();
  nonce_.clear();
}

Progress Seal::CurrentProgress() {
  MutexLock l(&mu_);
  return {static_cast<int>(shares_.size()), nonce_};
}

}  // namespace coffer::seal
