#include "barrier/barrier.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::barrier {
using ::coffer::Cat;
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 5;

std::string Header(uint32_t term) {
  std::string h(kHeader, '\0');
  h[0] = static_cast<char>(kVersion);
  h[1] = static_cast<char>(term >> 24);
  h[2] = static_cast<char>(term >> 16);
  h[3] = static_cast<char>(term >> 8);
  h[4] = static_cast<char>(term);
  return h;
}

absl::Status SealedError() { return absl::UnavailableError("Vault is sealed"); }

// Holds a string with key material and wipes it when done.
struct WipedString {
  std::string s;
  ~WipedString() {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  }
};

absl::StatusOr<std::string> SealWith(const crypto::SecretBytes& key, uint32_t term,
                                     std::string_view path, std::string_view plaintext) {
  std::string header = Header(term);
  ASSIGN_OR_RETURN(std::string body,
                   crypto::AesGcmSeal(key, plaintext, header + std::string(path)));
  return header + body;
}

}  // namespace

bool Barrier::sealed() const {
  ReaderMutexLock l(&mu_);
  return sealed_;
}

crypto::SecretBytes DeriveFromRootKey(const crypto::SecretBytes& root_key, std::string_view label) {
  std::string mac = crypto::HmacSha256(root_key.view(), label);
  crypto::SecretBytes key(mac);
  OPENSSL_cleanse(mac.data(), mac.size());
  return key;
}

absl::StatusOr<crypto::SecretBytes> Barrier::DeriveKey(std::string_view label) const {
  ReaderMutexLock l(&mu_);
  if (sealed_) return absl::FailedPreconditionError("the barrier is sealed");
  return DeriveFromRootKey(root_key_, label);
}

absl::Status Barrier::PersistKeyringLocked() {
  boost::json::array keys;
  for (const auto& [term, t] : terms_) {
    WipedString b64{Base64Encode(t.key.view())};
    keys.push_back(boost::json::object{
        {"term", term}, {"key", b64.s}, {"install_time", absl::FormatTime(t.installed)}});
    OPENSSL_cleanse(b64.s.data(), b64.s.size());
  }
  WipedString plain{
      boost::json::serialize(boost::json::object{{"active_term", active_}, {"keys", keys}})};
  // Wipe the copies inside the JSON tree as well.
  for (auto& k : keys) {
    auto& s = k.as_object()["key"].as_string();
    OPENSSL_cleanse(s.data(), s.size());
  }
  ASSIGN_OR_RETURN(std::string sealed, SealWith(root_key_, 0, kKeyringPath, plain.s));
  return physical_->Put(kKeyringPath, sealed);
}

absl::Status Barrier::Initialize(const crypto::SecretBytes& root_key) {
  if (root_key.size() != crypto::kAesKeySize)
    return absl::InvalidArgumentError("root key must be 32 bytes");
  ASSIGN_OR_RETURN(auto existing, physical_->Get(kKeyringPath));
  if (existing.has_value()) return absl::FailedPreconditionError("barrier is already initialized");
  ASSIGN_OR_RETURN(auto k1, crypto::SecretBytes::Random(crypto::kAesKeySize));
  MutexLock l(&mu_);
  root_key_ = root_key.Clone();
  terms_.clear();
  terms_.emplace(1, Term(std::move(k1), absl::Now()));
  active_ = 1;
  auto st = PersistKeyringLocked();
  if (!st.ok()) {
    terms_.clear();
    root_key_.Wipe();
    return st;
  }
  sealed_ = false;
  return absl::OkStatus();
}

absl::Status Barrier::ReloadKeyring() {
  crypto::SecretBytes root;
  {
    ReaderMutexLock l(&mu_);
    if (sealed_) return absl::FailedPreconditionError("barrier is sealed");
    root = root_key_.Clone();
  }
  return LoadKeyring(root, /*reload=*/true);
}

absl::Status Barrier::Unseal(const crypto::SecretBytes& root_key) {
  return LoadKeyring(root_key, /*reload=*/false);
}

absl::Status Barrier::LoadKeyring(const crypto::SecretBytes& root_key, bool reload) {
  ASSIGN_OR_RETURN(auto raw, physical_->Get(kKeyringPath));
  if (!raw.has_value()) return absl::FailedPreconditionError("barrier is not initialized");
  if (raw->size() < kHeader) return absl::DataLossError("keyring is corrupt");
  auto opened = crypto::AesGcmOpen(root_key, std::string_view(*raw).substr(kHeader),
                                   raw->substr(0, kHeader) + kKeyringPath);
  if (!opened.ok()) return absl::PermissionDeniedError("root key does not decrypt the keyring");
  WipedString plain{std::move(*opened)};
  boost::system::error_code ec;
  auto v = boost::json::parse(plain.s, ec);
  if (ec || !v.is_object()) return absl::DataLossError("keyring is not valid JSON");
  std::map<uint32_t, Term> terms;
  try {
    for (auto& k : v.at("keys").as_array()) {
      auto& o = k.as_object();
      auto& s = o.at("key").as_string();
      auto key = Base64Decode(std::string_view(s));
      OPENSSL_cleanse(s.data(), s.size());
      if (!key || key->size() != crypto::kAesKeySize) return absl::DataLossError("bad keyring key");
      absl::Time t;
      std::string err;
      absl::ParseTime(absl::RFC3339_full, std::string(o.at("install_time").as_string()), &t, &err);
      terms.emplace(static_cast<uint32_t>(o.at("term").to_number<int64_t>()),
                    Term(crypto::SecretBytes(*key), t));
      OPENSSL_cleanse(key->data(), key->size());
    }
    const auto active = static_cast<uint32_t>(v.at("active_term").to_number<int64_t>());
    if (!terms.count(active)) return absl::DataLossError("keyring has no active term");
    MutexLock l(&mu_);
    if (reload) {
      // The stored keyring may be older than this node's (read before a local Rotate persisted):
      // merge, never drop a term or move the active one back, and never unseal by reloading.
      if (sealed_) return absl::FailedPreconditionError("barrier is sealed");
      for (auto& [t, term] : terms) terms_.try_emplace(t, std::move(term));
      active_ = std::max(active_, active);
      return absl::OkStatus();
    }
    active_ = active;
    terms_ = std::move(terms);
    root_key_ = root_key.Clone();
    sealed_ = false;
  } catch (const std::exception& e) {
    return absl::DataLossError(Cat("keyring is malformed: ", e.what()));
  }
  return absl::OkStatus();
}

void Barrier::Seal() {
  MutexLock l(&mu_);
  sealed_ = true;
  root_key_.Wipe();
  terms_.clear();  // SecretBytes destructors wipe each key
  active_ = 0;
}

absl::StatusOr<KeyStatus> Barrier::Rotate() {
  ASSIGN_OR_RETURN(auto k, crypto::SecretBytes::Random(crypto::kAesKeySize));
  MutexLock l(&mu_);
  if (sealed_) return SealedError();
  uint32_t next = terms_.rbegin()->first + 1;
  uint32_t prev = active_;
  terms_.emplace(next, Term(std::move(k), absl::Now()));
  active_ = next;
  auto st = PersistKeyringLocked();
  if (!st.ok()) {
    terms_.erase(next);
    active_ = prev;
    return st;
  }
  return KeyStatus{active_, terms_.at(active_).installed, encryptions_.load()};
}

absl::StatusOr<KeyStatus> Barrier::Status() const {
  ReaderMutexLock l(&mu_);
  if (sealed_) return SealedError();
  return KeyStatus{active_, terms_.at(active_).installed, encryptions_.load()};
}

absl::StatusOr<std::string> Barrier::Encrypt(std::string_view path, std::string_view plaintext) {
  if (sealed_) return SealedError();
  encryptions_.fetch_add(1, std::memory_order_relaxed);
  const std::string header = Header(active_);
  ASSIGN_OR_RETURN(std::string body, terms_.at(active_).aead->Seal(plaintext, Cat(header, path)));
  return header + body;
}

absl::StatusOr<std::string> Barrier::Decrypt(std::string_view path, std::string_view sealed) {
  if (sealed_) return SealedError();
  if (sealed.size() < kHeader || static_cast<uint8_t>(sealed[0]) != kVersion)
    return absl::DataLossError(Cat("value at ", path, " has an unknown format"));
  uint32_t term = static_cast<uint8_t>(sealed[1]) << 24 | static_cast<uint8_t>(sealed[2]) << 16 |
                  static_cast<uint8_t>(sealed[3]) << 8 | static_cast<uint8_t>(sealed[4]);
  auto it = terms_.find(term);
  if (it == terms_.end())
    return absl::DataLossError(Cat("value at ", path, " uses unknown key term ", term));
  auto out = it->second.aead->Open(sealed.substr(kHeader), Cat(sealed.substr(0, kHeader), path));
  if (!out.ok()) return absl::DataLossError(Cat("value at ", path, " failed authentication"));
  return out;
}

bool Barrier::NewerTerm(std::string_view sealed) const {
  if (sealed.size() < kHeader || static_cast<uint8_t>(sealed[0]) != kVersion || terms_.empty())
    return false;
  const uint32_t term = static_cast<uint32_t>(static_cast<uint8_t>(sealed[1])) << 24 |
                        static_cast<uint32_t>(static_cast<uint8_t>(sealed[2])) << 16 |
                        static_cast<uint32_t>(static_cast<uint8_t>(sealed[3])) << 8 |
                        static_cast<uint32_t>(static_cast<uint8_t>(sealed[4]));
  return term > terms_.rbegin()->first;
}

absl::StatusOr<std::optional<std::string>> Barrier::Get(std::string_view key) {
  ASSIGN_OR_RETURN(auto raw, physical_->Get(key));
  {
    ReaderMutexLock l(&mu_);
    if (sealed_) return SealedError();
    if (!raw.has_value()) return std::optional<std::string>();
    if (!NewerTerm(*raw)) {
      ASSIGN_OR_RETURN(std::string plain, Decrypt(key, *raw));
      return std::optional<std::string>(std::move(plain));
    }
  }
  // A term newer than any held: another server rotated the keyring (HA) and this one has not
  // reloaded it yet. Reloaded once, by one thread at a time (the others find it done).
  {
    MutexLock one(&reload_mu_);
    bool still = false;
    {
      ReaderMutexLock l(&mu_);
      still = NewerTerm(*raw);
    }
    if (still) RETURN_IF_ERROR(ReloadKeyring());
  }
  ReaderMutexLock l(&mu_);
  if (sealed_) return SealedError();
  ASSIGN_OR_RETURN(std::string plain, Decrypt(key, *raw));
  return std::optional<std::string>(std::move(plain));
}

absl::Status Barrier::Put(std::string_view key, std::string_view value) {
  if (key == kKeyringPath) return absl::PermissionDeniedError("the keyring path is reserved");
  std::string sealed;
  {
    ReaderMutexLock l(&mu_);
    ASSIGN_OR_RETURN(sealed, Encrypt(key, value));
  }
  return physical_->Put(key, sealed);
}

absl::Status Barrier::Delete(std::string_view key) {
  if (sealed()) return SealedError();
  return physical_->Delete(key);
}

absl::Status Barrier::Write(std::vector<storage::WriteOp> ops) {
  {
    ReaderMutexLock l(&mu_);
    for (auto& op : ops) {
      if (op.key == kKeyringPath)
        return absl::PermissionDeniedError("the keyring path is reserved");
      if (op.kind == storage::WriteOp::Kind::kPut) {
        ASSIGN_OR_RETURN(op.value, Encrypt(op.key, op.value));
      } else if (sealed_) {
        return SealedError();
      }
    }
  }
  return physical_->Write(std::move(ops));
}

void Barrier::WriteAsync(std::vector<storage::WriteOp> ops, WriteDone done) {
  absl::Status refused;  // `done` runs outside the lock
  {
    ReaderMutexLock l(&mu_);
    for (auto& op : ops) {
      if (op.key == kKeyringPath) {
        refused = absl::PermissionDeniedError("the keyring path is reserved");
        break;
      }
      if (op.kind == storage::WriteOp::Kind::kPut) {
        auto sealed = Encrypt(op.key, op.value);
        if (!sealed.ok()) {
          refused = sealed.status();
          break;
        }
        op.value = std::move(*sealed);
      } else if (sealed_) {
        refused = SealedError();
        break;
      }
    }
  }
  if (!refused.ok()) return done(std::move(refused));
  physical_->WriteAsync(std::move(ops), std::move(done));
}

absl::StatusOr<std::vector<std::string>> Barrier::List(std::string_view prefix,
                                                       std::string_view after, size_t limit) {
  if (sealed()) return SealedError();
  return physical_->List(prefix, after, limit);
}

absl::Status Barrier::DeletePrefix(std::string_view prefix) {
  if (sealed()) return SealedError();
  if (prefix.empty() || prefix == "core/")
    return absl::PermissionDeniedError("refusing to delete core data");
  return physical_->DeletePrefix(prefix);
}

absl::StatusOr<std::optional<std::string>> PrefixView::Get(std::string_view key) {
  return under_->Get(Full(key));
}
absl::Status PrefixView::Put(std::string_view key, std::string_view value) {
  return under_->Put(Full(key), value);
}
absl::Status PrefixView::Delete(std::string_view key) { return under_->Delete(Full(key)); }
absl::Status PrefixView::Write(std::vector<storage::WriteOp> ops) {
  for (auto& op : ops) op.key = Full(op.key);
  return under_->Write(std::move(ops));
}
void PrefixView::WriteAsync(std::vector<storage::WriteOp> ops, WriteDone done) {
  for (auto& op : ops) op.key = Full(op.key);
  under_->WriteAsync(std::move(ops), std::move(done));
}
absl::StatusOr<std::vector<std::string>> PrefixView::List(std::string_view prefix,
                                                          std::string_view after, size_t limit) {
  return under_->List(Full(prefix), after, limit);
}
absl::Status PrefixView::DeletePrefix(std::string_view prefix) {
  return under_->DeletePrefix(Full(prefix));
}

}  // namespace coffer::barrier
