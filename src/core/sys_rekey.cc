// sys/rekey (new unseal key shares, optionally verified with the new shares before they replace
// the old ones) and sys/generate-root (a new root token from the unseal key shares, handed out
// XORed with a one-time pad), as Vault's. The key shares are the authorization: no token is
// needed, and a wrong share set resets the attempt's progress. Responses are Vault's bare JSON.
#include <openssl/crypto.h>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "crypto/shamir.h"
#include "util/encoding.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;

namespace {

// Vault's OTP length for "hvs." tokens (1.10 and later): the token's length.
constexpr size_t kOtpLength = 28;

std::optional<std::string> StringField(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

absl::StatusOr<int> IntField(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr || v->is_null()) return absl::InvalidArgumentError(Cat(k, " is required"));
  // 0 passes here and is refused by seal::ValidateShares with its own message.
  if (v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= 255)
    return static_cast<int>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= 255) return static_cast<int>(v->as_uint64());
  return absl::InvalidArgumentError(Cat(k, " must be an integer between 1 and 255"));
}

bool Refused(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v != nullptr && !v->is_null() && !(v->is_bool() && !v->as_bool()) &&
         !(v->is_string() && v->as_string().empty()) && !(v->is_array() && v->as_array().empty());
}

// Adds `share` unless already there (a share given twice is ignored, as by unseal).
void AddShare(std::vector<crypto::SecretBytes>& v, crypto::SecretBytes share) {
  for (const auto& s : v)
    if (crypto::ConstantTimeEquals(s.view(), share.view())) return;
  v.push_back(std::move(share));
}

json::array Hex(const std::vector<crypto::SecretBytes>& keys) {
  json::array a;
  for (const auto& k : keys) a.emplace_back(HexEncode(k.view()));
  return a;
}
json::array B64(const std::vector<crypto::SecretBytes>& keys) {
  json::array a;
  for (const auto& k : keys) a.emplace_back(Base64Encode(k.view()));
  return a;
}

std::string RawBase64(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

}  // namespace

absl::StatusOr<crypto::SecretBytes> DecodeKeyShare(std::string_view key) {
  std::optional<std::string> raw = HexDecode(key);
  if (!raw) raw = Base64Decode(key);
  if (!raw) return absl::InvalidArgumentError("'key' must be a valid hex or base64 string");
  crypto::SecretBytes share(*raw);
  OPENSSL_cleanse(raw->data(), raw->size());
  return share;
}

json::object Core::RekeyStatusLocked() {
  auto cfg = seal_->Config();
  int required = cfg.ok() && cfg->has_value() ? (*cfg)->threshold() : 0;
  json::object o{{"started", rekey_.has_value()},
                 {"nonce", rekey_ ? rekey_->nonce : ""},
                 {"t", rekey_ ? rekey_->threshold : 0},
                 {"n", rekey_ ? rekey_->shares : 0},
                 {"progress", rekey_ ? static_cast<int64_t>(rekey_->submitted.size()) : 0},
                 {"required", required},
                 {"pgp_fingerprints", nullptr},
                 {"backup", false},
                 {"verification_required", rekey_ && rekey_->verify}};
  return o;
}

json::object Core::RekeyVerifyStatusLocked() {
  bool on = rekey_ && rekey_->pending_key.has_value();
  return json::object{{"started", on},
                      {"nonce", on ? rekey_->verify_nonce : ""},
                      {"t", on ? rekey_->threshold : 0},
                      {"n", on ? rekey_->shares : 0},
                      {"progress", on ? static_cast<int64_t>(rekey_->verify_submitted.size()) : 0}};
}

absl::StatusOr<Response> Core::HandleRekey(Request& req, std::string_view what) {
  MutexLock l(&rekey_mu_);
  if (what == "backup")
    return absl::InvalidArgumentError(
        "no backed-up keys found (Coffer does not back up PGP-"
        "encrypted rekey shares)");
  if (what == "init") {
    switch (req.op) {
      case Operation::kRead:
        return Response::Raw(RekeyStatusLocked());
      case Operation::kDelete:
        rekey_.reset();
        return Response::Empty();
      case Operation::kCreate:
      case Operation::kUpdate: {
        if (rekey_)
          return absl::InvalidArgumentError(
              "rekey already in progress: cancel it (DELETE sys/rekey/init) or finish it");
        for (const char* k : {"pgp_keys", "backup"})
          if (Refused(req.data, k))
            return absl::InvalidArgumentError(Cat(k, " is not supported by Coffer yet"));
        ASSIGN_OR_RETURN(int shares, IntField(req.data, "secret_shares"));
        ASSIGN_OR_RETURN(int threshold, IntField(req.data, "secret_threshold"));
        RETURN_IF_ERROR(seal::ValidateShares(shares, threshold));
        RekeyOp op;
        op.nonce = crypto::RandomUuid();
        op.shares = shares;
        op.threshold = threshold;
        const json::value* v = req.data.if_contains("require_verification");
        if (v != nullptr && !v->is_null()) {
          if (v->is_bool()) {
            op.verify = v->as_bool();
          } else if (v->is_string() && (v->as_string() == "true" || v->as_string() == "false")) {
            op.verify = v->as_string() == "true";
          } else {
            return absl::InvalidArgumentError("require_verification must be true or false");
          }
        }
        rekey_ = std::move(op);
        return Response::Raw(RekeyStatusLocked());
      }
      default:
        return UnsupportedOperation("sys/rekey/init takes GET, PUT or DELETE");
    }
  }
  if (what == "update") {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
      return UnsupportedOperation("sys/rekey/update takes PUT");
    if (!rekey_)
      return absl::InvalidArgumentError("no rekey in progress: start one at sys/rekey/init");
    if (rekey_->pending_key)
      return absl::InvalidArgumentError(
          "the new keys wait for verification: submit them to sys/rekey/verify");
    if (StringField(req.data, "nonce").value_or("") != rekey_->nonce)
      return absl::InvalidArgumentError("incorrect nonce: read it from sys/rekey/init");
    ASSIGN_OR_RETURN(crypto::SecretBytes share,
                     DecodeKeyShare(StringField(req.data, "key").value_or("")));
    RETURN_IF_ERROR(seal_->CheckShare(share.view()));
    AddShare(rekey_->submitted, std::move(share));
    ASSIGN_OR_RETURN(auto cfg, seal_->Config());
    if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
    if (static_cast<int>(rekey_->submitted.size()) < cfg->threshold())
      return Response::Raw(RekeyStatusLocked());
    auto root = seal_->RootKeyFromShares(rekey_->submitted);
    rekey_->submitted.clear();
    if (!root.ok())
      return absl::InvalidArgumentError(Cat(Msg(root.status()), "; progress was reset"));
    ASSIGN_OR_RETURN(auto made, seal_->NewShares(rekey_->shares, rekey_->threshold));
    json::object done{{"complete", true},
                      {"nonce", rekey_->nonce},
                      {"keys", Hex(made.second)},
                      {"keys_base64", B64(made.second)},
                      {"pgp_fingerprints", nullptr},
                      {"backup", false},
                      {"verification_required", rekey_->verify}};
    if (rekey_->verify) {
      rekey_->pending_key = std::move(made.first);
      rekey_->pending_root = std::move(*root);
      rekey_->verify_nonce = crypto::RandomUuid();
      done["verification_nonce"] = rekey_->verify_nonce;
      return Response::Raw(done);
    }
    RETURN_IF_ERROR(seal_->Commit(made.first, rekey_->shares, rekey_->threshold, *root));
    log::Info(seal_->IsAuto() ? "recovery key rekeyed" : "unseal key rekeyed",
              {{"secret_shares", std::to_string(rekey_->shares)},
               {"secret_threshold", std::to_string(rekey_->threshold)}});
    rekey_.reset();
    return Response::Raw(done);
  }
  if (what == "verify") {
    if (!rekey_ || !rekey_->pending_key)
      return absl::InvalidArgumentError("no rekey verification in progress");
    switch (req.op) {
      case Operation::kRead:
        return Response::Raw(RekeyVerifyStatusLocked());
      case Operation::kDelete:
        // Starts the verification over with a new nonce (the new keys stay pending).
        rekey_->verify_submitted.clear();
        rekey_->verify_nonce = crypto::RandomUuid();
        return Response::Raw(RekeyVerifyStatusLocked());
      case Operation::kCreate:
      case Operation::kUpdate: {
        if (StringField(req.data, "nonce").value_or("") != rekey_->verify_nonce)
          return absl::InvalidArgumentError("incorrect nonce: read it from sys/rekey/verify");
        ASSIGN_OR_RETURN(crypto::SecretBytes share,
                         DecodeKeyShare(StringField(req.data, "key").value_or("")));
        const size_t want = rekey_->shares == 1 ? crypto::kAesKeySize : crypto::kAesKeySize + 1;
        if (share.size() != want)
          return absl::InvalidArgumentError(Cat("key has the wrong length: ", share.size(),
                                                " bytes decoded, ", want, " expected"));
        AddShare(rekey_->verify_submitted, std::move(share));
        if (static_cast<int>(rekey_->verify_submitted.size()) < rekey_->threshold)
          return Response::Raw(RekeyVerifyStatusLocked());
        std::vector<crypto::SecretBytes> parts = std::move(rekey_->verify_submitted);
        rekey_->verify_submitted.clear();
        crypto::SecretBytes key;
        if (parts.size() == 1) {
          key = std::move(parts[0]);
        } else {
          auto combined = crypto::ShamirCombine(parts);
          if (combined.ok()) key = std::move(*combined);
        }
        if (!crypto::ConstantTimeEquals(key.view(), rekey_->pending_key->view()))
          return absl::InvalidArgumentError(
              "the submitted keys are not the new keys; verification progress was reset");
        RETURN_IF_ERROR(seal_->Commit(*rekey_->pending_key, rekey_->shares, rekey_->threshold,
                                      rekey_->pending_root));
        json::object done{{"complete", true}, {"nonce", rekey_->verify_nonce}};
        log::Info(
            seal_->IsAuto() ? "recovery key rekeyed (verified)" : "unseal key rekeyed (verified)",
            {{"secret_shares", std::to_string(rekey_->shares)},
             {"secret_threshold", std::to_string(rekey_->threshold)}});
        rekey_.reset();
        return Response::Raw(done);
      }
      default:
        return UnsupportedOperation("sys/rekey/verify takes GET, PUT or DELETE");
    }
  }
  return absl::NotFoundError("");
}

json::object Core::GenerateRootStatusLocked() {
  auto cfg = seal_->Config();
  int required = cfg.ok() && cfg->has_value() ? (*cfg)->threshold() : 0;
  return json::object{
      {"started", generate_root_.has_value()},
      {"nonce", generate_root_ ? generate_root_->nonce : ""},
      {"progress", generate_root_ ? static_cast<int64_t>(generate_root_->submitted.size()) : 0},
      {"required", required},
      {"encoded_token", ""},
      {"encoded_root_token", ""},
      {"pgp_fingerprint", ""},
      {"otp", ""},
      {"otp_length", static_cast<int64_t>(kOtpLength)},
      {"complete", false}};
}

absl::StatusOr<Response> Core::HandleGenerateRoot(Request& req, std::string_view what) {
  MutexLock l(&rekey_mu_);
  if (what == "attempt") {
    switch (req.op) {
      case Operation::kRead:
        return Response::Raw(GenerateRootStatusLocked());
      case Operation::kDelete:
        generate_root_.reset();
        return Response::Empty();
      case Operation::kCreate:
      case Operation::kUpdate: {
        if (generate_root_)
          return absl::InvalidArgumentError(
              "root generation already in progress: cancel it (DELETE "
              "sys/generate-root/attempt) or finish it");
        if (Refused(req.data, "pgp_key"))
          return absl::InvalidArgumentError("pgp_key is not supported by Coffer yet; use an otp");
        GenerateRootOp op;
        op.nonce = crypto::RandomUuid();
        op.otp = crypto::SecretBytes(StringField(req.data, "otp").value_or(""));
        if (op.otp.empty()) {
          // Vault 1.10+: without an otp the server makes one and shows it once.
          ASSIGN_OR_RETURN(std::string a, crypto::RandomToken(""));
          ASSIGN_OR_RETURN(std::string b, crypto::RandomToken(""));
          op.otp = crypto::SecretBytes((a + b).substr(0, kOtpLength));
          OPENSSL_cleanse(a.data(), a.size());
          OPENSSL_cleanse(b.data(), b.size());
          op.otp_generated = true;
        }
        if (op.otp.size() != kOtpLength)
          return absl::InvalidArgumentError(
              Cat("otp must be ", kOtpLength, " characters long (see otp_length)"));
        bool generated = op.otp_generated;
        std::string otp(op.otp.view());
        generate_root_ = std::move(op);
        json::object o = GenerateRootStatusLocked();
        if (generated) o["otp"] = otp;
        OPENSSL_cleanse(otp.data(), otp.size());
        return Response::Raw(o);
      }
      default:
        return UnsupportedOperation("sys/generate-root/attempt takes GET, PUT or DELETE");
    }
  }
  if (what == "update") {
    if (req.op != Operation::kUpdate && req.op != Operation::kCreate)
      return UnsupportedOperation("sys/generate-root/update takes PUT");
    if (!generate_root_)
      return absl::InvalidArgumentError(
          "no root generation in progress: start one at sys/generate-root/attempt");
    if (StringField(req.data, "nonce").value_or("") != generate_root_->nonce)
      return absl::InvalidArgumentError("incorrect nonce: read it from sys/generate-root/attempt");
    ASSIGN_OR_RETURN(crypto::SecretBytes share,
                     DecodeKeyShare(StringField(req.data, "key").value_or("")));
    RETURN_IF_ERROR(seal_->CheckShare(share.view()));
    AddShare(generate_root_->submitted, std::move(share));
    ASSIGN_OR_RETURN(auto cfg, seal_->Config());
    if (!cfg) return absl::FailedPreconditionError("Vault is not initialized");
    if (static_cast<int>(generate_root_->submitted.size()) < cfg->threshold())
      return Response::Raw(GenerateRootStatusLocked());
    auto root = seal_->RootKeyFromShares(generate_root_->submitted);
    generate_root_->submitted.clear();
    if (!root.ok())
      return absl::InvalidArgumentError(Cat(Msg(root.status()), "; progress was reset"));
    if (generate_root_->otp.size() != kOtpLength)
      return absl::InternalError("the otp has the wrong length");
    ASSIGN_OR_RETURN(std::string token, tokens_->CreateRootToken());
    if (token.size() != kOtpLength)
      return absl::InternalError("the root token and the otp differ in length");
    std::string mixed(token.size(), '\0');
    for (size_t i = 0; i < token.size(); ++i)
      mixed[i] =
          static_cast<char>(static_cast<unsigned char>(token[i]) ^ generate_root_->otp.data()[i]);
    OPENSSL_cleanse(token.data(), token.size());
    std::string encoded = RawBase64(mixed);
    OPENSSL_cleanse(mixed.data(), mixed.size());
    json::object done = GenerateRootStatusLocked();
    done["started"] = true;  // as Vault's update answer; the attempt itself is over
    done["progress"] = cfg->threshold();
    done["complete"] = true;
    done["encoded_token"] = encoded;
    done["encoded_root_token"] = encoded;
    done["nonce"] = generate_root_->nonce;
    generate_root_.reset();
    log::Info(seal_->IsAuto() ? "root token generated from the recovery keys"
                              : "root token generated from the unseal keys");
    return Response::Raw(done);
  }
  return absl::NotFoundError("");
}

}  // namespace coffer::core
