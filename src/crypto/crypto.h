// Symmetric primitives over OpenSSL 3: random, AES-256-GCM, HMAC-SHA256, SHA-256,
// constant-time comparison, token and UUID generation. All functions are thread-safe.
#pragma once

#include <openssl/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "util/mutex.h"

namespace coffer::crypto {

inline constexpr size_t kAesKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// Public random bytes (nonces, ids): RAND_bytes.
absl::StatusOr<std::string> RandomBytes(size_t n);

// AES-256-GCM. Seal returns nonce || ciphertext || tag with a fresh random 96-bit nonce.
absl::StatusOr<std::string> AesGcmSeal(const SecretBytes& key, std::string_view plaintext,
                                       std::string_view aad);
// Open fails with kDataLoss ("message authentication failed") when the key, AAD or bytes differ.
absl::StatusOr<std::string> AesGcmOpen(const SecretBytes& key, std::string_view sealed,
                                       std::string_view aad);

// An AES-256-GCM key prepared once (its key schedule kept in OpenSSL contexts), for the barrier,
// which seals and opens every stored value with one key: each call only sets a nonce. Same
// format and errors as AesGcmSeal/AesGcmOpen. Thread-safe; contexts come from a small pool.
class AesGcmKey {
 public:
  explicit AesGcmKey(const SecretBytes& key);  // must be kAesKeySize bytes
  ~AesGcmKey();
  AesGcmKey(const AesGcmKey&) = delete;
  AesGcmKey& operator=(const AesGcmKey&) = delete;

  absl::StatusOr<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view aad) const;

 private:
  EVP_CIPHER_CTX* Take(bool encrypt) const;
  void Give(EVP_CIPHER_CTX* c, bool encrypt) const;

  const SecretBytes key_;
  mutable Mutex mu_;
  mutable std::vector<EVP_CIPHER_CTX*> idle_enc_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<EVP_CIPHER_CTX*> idle_dec_ ABSL_GUARDED_BY(mu_);
};

std::string HmacSha256(std::string_view key, std::string_view data);

// An HMAC-SHA256 key prepared once, for a key used on every request (the token store's salt):
// Sign reuses a keyed context (a tenth of the one-shot HmacSha256's cost: no algorithm fetch,
// no key hashing, no allocation). Thread-safe; contexts are taken from a small pool, so threads
// never share one. The keyed states are wiped by OpenSSL when the key is destroyed.
class HmacSha256Key {
 public:
  HmacSha256Key() = default;
  explicit HmacSha256Key(std::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  bool empty() const { return base_ == nullptr; }
  // The 32-byte MAC of data. Must not be called on an empty key.
  std::string Sign(std::string_view data) const;

 private:
  EVP_MAC_CTX* base_ = nullptr;
  mutable Mutex mu_;
  mutable std::vector<EVP_MAC_CTX*> idle_ ABSL_GUARDED_BY(mu_);
};
std::string Sha256(std::string_view data);

// Constant-time equality (CRYPTO_memcmp); lengths are not secret.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A random token of the form "<prefix>" + 24 base62 characters (>= 142 bits of entropy).
absl::StatusOr<std::string> RandomToken(std::string_view prefix);
// Random RFC 4122 version 4 UUID from RAND_bytes: for ids that must not be guessed.
std::string RandomUuid();
// A version 4 UUID for a request id: unique (a per-thread SplitMix64 sequence from a RAND_bytes
// seed) but not unpredictable, so never for anything that grants access. A tenth of
// RandomUuid's cost; every request takes one.
std::string RequestId();

}  // namespace coffer::crypto
