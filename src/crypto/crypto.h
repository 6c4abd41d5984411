// Symmetric primitives over OpenSSL 3: random, AES-256-GCM, HMAC-SHA256, SHA-256,
// constant-time comparison, token and UUID generation. All functions are thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

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

std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256(std::string_view data);

// Constant-time equality (CRYPTO_memcmp); lengths are not secret.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A random token of the form "<prefix>" + 24 base62 characters (>= 142 bits of entropy).
absl::StatusOr<std::string> RandomToken(std::string_view prefix);
// Random RFC 4122 version 4 UUID.
std::string RandomUuid();

}  // namespace coffer::crypto
