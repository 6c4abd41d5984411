#include "crypto/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "crypto/ec_fast.h"
#include "util/files.h"
#include "util/status.h"

namespace coffer::crypto {
using ::coffer::Cat;
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

absl::Status OpenSslError(std::string_view what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(Cat(what, ": ", buf));
}

}  // namespace

absl::StatusOr<SecretBytes> SecretBytes::Random(size_t n) {
  SecretBytes s(n);
  if (n > 0 && RAND_priv_bytes(s.data(), static_cast<int>(n)) != 1)
    return OpenSslError("RAND_priv_bytes");
  return s;
}

void SecretBytes::Wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

absl::StatusOr<std::optional<SecretBytes>> ReadSecretFile(const std::string& path,
                                                          size_t max_bytes) {
  // Every refusal is FailedPrecondition (the agent's loops tell it from a server's answer).
  auto f = files::RegularFile::Open(path);
  if (!f.ok()) return absl::FailedPreconditionError(f.status().message());
  if (!*f) return std::optional<SecretBytes>();
  if ((*f)->size() > max_bytes)
    return absl::FailedPreconditionError(
        Cat(path, " is larger than ", max_bytes, " bytes: not a key file?"));
  // Sized once from fstat (plus one byte to see the file grow meanwhile): never reallocated, so
  // the only copy is this one. A file that changed size is read again by the caller's next try.
  SecretBytes buf((*f)->size() + 1);
  auto got = (*f)->Read(buf.data(), buf.size());
  if (!got.ok()) return absl::FailedPreconditionError(got.status().message());
  if (*got == buf.size())
    return absl::FailedPreconditionError(Cat(path, " changed size while it was read: try again"));
  return std::optional<SecretBytes>(SecretBytes(buf.view().substr(0, *got)));
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return OpenSslError("RAND_bytes");
  return out;
}

AesGcmKey::AesGcmKey(const SecretBytes& key) : key_(key.Clone()) {}

AesGcmKey::~AesGcmKey() {
  MutexLock l(&mu_);
  for (EVP_CIPHER_CTX* c : idle_enc_) EVP_CIPHER_CTX_free(c);  // wipes the key schedule
  for (EVP_CIPHER_CTX* c : idle_dec_) EVP_CIPHER_CTX_free(c);
}

// A context holding the key schedule for one direction; nullptr on allocation failure.
EVP_CIPHER_CTX* AesGcmKey::Take(bool encrypt) const {
  {
    MutexLock l(&mu_);
    auto& idle = encrypt ? idle_enc_ : idle_dec_;
    if (!idle.empty()) {
      EVP_CIPHER_CTX* c = idle.back();
      idle.pop_back();
      return c;
    }
  }
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  if (c != nullptr && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), nullptr, key_.data(), nullptr,
                                        encrypt ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(c);
    c = nullptr;
  }
  return c;
}

void AesGcmKey::Give(EVP_CIPHER_CTX* c, bool encrypt) const {
  MutexLock l(&mu_);
  auto& idle = encrypt ? idle_enc_ : idle_dec_;
  if (idle.size() < 64)
    idle.push_back(c);
  else
    EVP_CIPHER_CTX_free(c);
}

absl::StatusOr<std::string> AesGcmKey::Seal(std::string_view plaintext,
                                            std::string_view aad) const {
  if (key_.size() != kAesKeySize) return absl::InternalError("AES-256-GCM needs a 32-byte key");
  auto nonce = RandomBytes(kGcmNonceSize);
  if (!nonce.ok()) return nonce.status();
  EVP_CIPHER_CTX* ctx = Take(true);
  if (ctx == nullptr) return OpenSslError("EVP_EncryptInit_ex");
  std::unique_ptr<EVP_CIPHER_CTX, std::function<void(EVP_CIPHER_CTX*)>> give(
      ctx, [this](EVP_CIPHER_CTX* c) { Give(c, true); });
  std::string out = *nonce;
  out.resize(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  auto* o = reinterpret_cast<unsigned char*>(out.data()) + kGcmNonceSize;
  int len = 0;
  // Only the nonce is set: the key schedule stays from the context's first use.
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(nonce->data())) != 1)
    return OpenSslError("EVP_EncryptInit_ex");
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1)
    return OpenSslError("EVP_EncryptUpdate(aad)");
  if (EVP_EncryptUpdate(ctx, o, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1)
    return OpenSslError("EVP_EncryptUpdate");
  int fin = 0;
  if (EVP_EncryptFinal_ex(ctx, o + len, &fin) != 1) return OpenSslError("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kGcmTagSize, o + plaintext.size()) != 1)
    return OpenSslError("EVP_CTRL_GCM_GET_TAG");
  return out;
}

absl::StatusOr<std::string> AesGcmKey::Open(std::string_view sealed, std::string_view aad) const {
  if (key_.size() != kAesKeySize) return absl::InternalError("AES-256-GCM needs a 32-byte key");
  if (sealed.size() < kGcmNonceSize + kGcmTagSize)
    return absl::DataLossError("ciphertext too short");
  EVP_CIPHER_CTX* ctx = Take(false);
  if (ctx == nullptr) return OpenSslError("EVP_DecryptInit_ex");
  std::unique_ptr<EVP_CIPHER_CTX, std::function<void(EVP_CIPHER_CTX*)>> give(
      ctx, [this](EVP_CIPHER_CTX* c) { Give(c, false); });
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t ct_len = sealed.size() - kGcmNonceSize - kGcmTagSize;
  std::string out(ct_len, '\0');
  int len = 0;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, in) != 1)
    return OpenSslError("EVP_DecryptInit_ex");
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1)
    return OpenSslError("EVP_DecryptUpdate(aad)");
  if (EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, in + kGcmNonceSize,
                        static_cast<int>(ct_len)) != 1)
    return OpenSslError("EVP_DecryptUpdate");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kGcmTagSize,
                          const_cast<unsigned char*>(in + kGcmNonceSize + ct_len)) != 1)
    return OpenSslError("EVP_CTRL_GCM_SET_TAG");
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + len, &fin) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    return absl::DataLossError("message authentication failed");
  }
  return out;
}

absl::StatusOr<std::string> AesGcmSeal(const SecretBytes& key, std::string_view plaintext,
                                       std::string_view aad) {
  return AesGcmKey(key).Seal(plaintext, aad);
}

absl::StatusOr<std::string> AesGcmOpen(const SecretBytes& key, std::string_view sealed,
                                       std::string_view aad) {
  return AesGcmKey(key).Open(sealed, aad);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

HmacSha256Key::HmacSha256Key(std::string_view key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) abort();  // the default provider always has HMAC
  base_ = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (base_ == nullptr || EVP_MAC_init(base_, reinterpret_cast<const unsigned char*>(key.data()),
                                       key.size(), params) != 1)
    abort();
}

HmacSha256Key::~HmacSha256Key() {
  MutexLock l(&mu_);
  for (EVP_MAC_CTX* c : idle_) EVP_MAC_CTX_free(c);
  EVP_MAC_CTX_free(base_);
}

std::string HmacSha256Key::Sign(std::string_view data) const {
  EVP_MAC_CTX* c = nullptr;
  {
    MutexLock l(&mu_);
    if (!idle_.empty()) {
      c = idle_.back();
      idle_.pop_back();
    }
  }
  // A copy of the keyed base only reads it; a reused one restarts from its own keyed state
  // (EVP_MAC_init without a key).
  if (c == nullptr) c = EVP_MAC_CTX_dup(base_);
  unsigned char md[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (c == nullptr || EVP_MAC_init(c, nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(c, md, &len, sizeof(md)) != 1)
    abort();  // only on allocation failure
  std::string out(reinterpret_cast<char*>(md), len);
  OPENSSL_cleanse(md, sizeof(md));
  MutexLock l(&mu_);
  if (idle_.size() < 64)
    idle_.push_back(c);
  else
    EVP_MAC_CTX_free(c);
  return out;
}

std::string Sha256(std::string_view data) { return Sha2(256, data); }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<std::string> RandomToken(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out(prefix);
  // Rejection sampling keeps the distribution uniform over 62 symbols.
  while (out.size() < prefix.size() + 24) {
    auto r = SecretBytes::Random(32);
    if (!r.ok()) return r.status();
    for (size_t i = 0; i < r->size() && out.size() < prefix.size() + 24; ++i) {
      uint8_t b = r->data()[i];
      if (b < 248) out.push_back(kAlphabet[b % 62]);
    }
  }
  return out;
}

namespace {
// Sets the version (4) and variant bits and writes 8-4-4-4-12 lowercase hex.
std::string FormatUuid4(unsigned char b[16]) {
  static constexpr char kHex[] = "0123456789abcdef";
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  std::string out(36, '-');
  size_t o = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++o;
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 15];
  }
  return out;
}
}  // namespace

std::string RandomUuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // RAND_bytes only fails if the DRBG is broken; an id is not a secret, but it must be unique.
    abort();
  }
  return FormatUuid4(b);
}

std::string RequestId() {
  struct Seq {
    uint64_t state = 0;
    Seq() {
      if (RAND_bytes(reinterpret_cast<unsigned char*>(&state), sizeof(state)) != 1) abort();
    }
    uint64_t Next() {  // SplitMix64: a bijection of a counter, so no repeat within 2^64 calls
      uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      return z ^ (z >> 31);
    }
  };
  thread_local Seq seq;
  unsigned char b[16];
  const uint64_t hi = seq.Next();
  const uint64_t lo = seq.Next();
  memcpy(b, &hi, 8);
  memcpy(b + 8, &lo, 8);
  return FormatUuid4(b);
}

}  // namespace coffer::crypto
