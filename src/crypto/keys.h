// Asymmetric keys: the key policy (RSA >= 2048 bits, P-256/384/521, Ed25519), key generation,
// and the private key's encodings (traditional PEM/DER and PKCS#8) and the public key's
// (SubjectPublicKeyInfo DER). ParseKeySpec checks a requested type and size, DescribeKey an
// existing key; callers apply them where keys enter (ParsePrivateKeyPem itself accepts any key
// OpenSSL reads). Keys are owned PKey handles; encoded private keys come back as SecretBytes,
// wiped on drop. Every function is thread-safe.
#pragma once

#include <openssl/evp.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/handles.h"
#include "crypto/secret_bytes.h"

namespace coffer::crypto {

enum class KeyType { kRsa, kEc, kEd25519 };
struct KeySpec {
  KeyType type = KeyType::kRsa;
  int bits = 2048;  // RSA modulus bits; EC curve size (256, 384, 521); 0 for Ed25519
};
std::string_view KeyTypeName(KeyType t);  // "rsa", "ec", "ed25519"
// Vault's key_type/key_bits: bits 0 picks the default (rsa 2048, ec 256). "any" is not a spec.
absl::StatusOr<KeySpec> ParseKeySpec(std::string_view type, int64_t bits);
// The type and size of an existing key; InvalidArgument for keys Coffer does not accept
// (DSA, unsupported curves, RSA under 2048 bits).
absl::StatusOr<KeySpec> DescribeKey(EVP_PKEY* key);

// RSA generation (seconds for 8192 bits) stops early, failing with Unavailable, once the flag
// of the innermost CancelScope on the calling thread becomes true.
absl::StatusOr<PKey> GenerateKey(const KeySpec& spec);

// Makes `*flag` the cancellation flag of long key generations on this thread while in scope.
class CancelScope {
 public:
  explicit CancelScope(const std::atomic<bool>* flag);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* previous_;
};
// PEM of the private key: "der"/"" = the type's traditional form (PKCS#1 "RSA PRIVATE KEY",
// SEC 1 "EC PRIVATE KEY"; Ed25519 has only PKCS#8), "pkcs8" = "PRIVATE KEY". Wiped on drop.
absl::StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key, std::string_view format);
absl::StatusOr<SecretBytes> PrivateKeyDer(EVP_PKEY* key, std::string_view format);
absl::StatusOr<PKey> ParsePrivateKeyPem(std::string_view pem);
// SubjectPublicKeyInfo DER: the identity of a key (same key <=> same bytes).
std::string PublicKeyDer(EVP_PKEY* key);
bool SameKey(EVP_PKEY* a, EVP_PKEY* b);

}  // namespace coffer::crypto
