// Authenticated encryption with a caller-chosen nonce (AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305, each with a 12-byte nonce and a 16-byte tag) and HKDF-SHA256. These are the
// primitives of the Transit engine, whose ciphertext layout (nonce, then ciphertext and tag) and
// key derivation follow Vault's byte for byte. The barrier keeps its own AES-GCM (crypto.h).
// Every function is thread-safe; cipher implementations are fetched once per process.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace coffer::crypto {

enum class Aead { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;
size_t AeadKeySize(Aead alg);  // 16 or 32

// nonce (12 bytes) || ciphertext || tag, appended to `out`.
absl::Status AeadSeal(Aead alg, std::string_view key, std::string_view nonce,
                      std::string_view plaintext, std::string_view aad, std::string* out);
// Opens nonce || ciphertext || tag. A wrong key, nonce, tag or aad is InvalidArgument
// "message authentication failed"; input shorter than nonce and tag is InvalidArgument too.
absl::StatusOr<std::string> AeadOpen(Aead alg, std::string_view key, std::string_view sealed,
                                     std::string_view aad);

// HKDF (RFC 5869) with SHA-256, no salt: `n` bytes from `secret` and `info`.
absl::StatusOr<SecretBytes> HkdfSha256(std::string_view secret, std::string_view info, size_t n);

}  // namespace coffer::crypto
