// A Transit key ("policy" in Vault's words): its type, its versions and the rules for using them,
// and every cryptographic operation done with it. Layouts follow Vault's Transit so that
// ciphertexts, signatures and HMACs move between the two:
//   ciphertext  "vault:v<N>:" + base64(nonce(12) || ciphertext || tag(16))
//   derived key HKDF-SHA256(key, info = context), convergent version 3 (nonce from
//               HMAC-SHA256(derived hmac half, plaintext))
//   signature   "vault:v<N>:" + base64(ASN.1 ECDSA / Ed25519 / RSA PSS or PKCS#1 v1.5), or
//               base64url(r || s) with marshaling_algorithm=jws
//   hmac        "vault:v<N>:" + base64(HMAC(version's hmac key, input))
// A Policy is an immutable snapshot once built: the backend replaces it as a whole when it
// changes (rotate, config, trim), so readers share one without locks. Thread-safe to read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/object.hpp"
#include "crypto/aead.h"
#include "crypto/handles.h"
#include "crypto/secret_bytes.h"

namespace coffer::engines::transit {

enum class KeyType {
  kAes128Gcm96,
  kAes256Gcm96,
  kChaCha20Poly1305,
  kEcdsaP256,
  kEcdsaP384,
  kEcdsaP521,
  kEd25519,
  kRsa2048,
  kRsa3072,
  kRsa4096,
  kHmac,
};
std::string_view KeyTypeName(KeyType t);
absl::StatusOr<KeyType> ParseKeyType(std::string_view s);
bool SupportsEncryption(KeyType t);  // symmetric AEADs and RSA (OAEP)
bool SupportsSigning(KeyType t);     // ECDSA, Ed25519, RSA
bool SupportsDerivation(KeyType t);  // the AEADs and Ed25519
bool IsSymmetric(KeyType t);         // the AEADs

struct KeyVersion {
  crypto::SecretBytes key;         // AEAD or HMAC key; empty for asymmetric keys
  crypto::SecretBytes hmac_key;    // every version has one (hmac/ with any key type)
  std::shared_ptr<EVP_PKEY> pkey;  // asymmetric private key
  int64_t time = 0;                // creation, unix seconds
  std::string creation_time;       // RFC 3339 with nanoseconds
  KeyVersion Clone() const;
};

// Parsed "vault:v<N>:<base64>" (also "vault:v<N>:<base64url>" for JWS signatures).
struct Versioned {
  int version = 0;
  std::string bytes;
};
// InvalidArgument naming what is wrong, in Vault's words ("invalid ciphertext: no prefix").
absl::StatusOr<Versioned> ParseVersioned(std::string_view s, std::string_view what = "ciphertext",
                                         bool url_encoding = false);
std::string FormatVersioned(int version, std::string_view bytes, bool url_encoding = false);

struct SignOptions {
  std::string hash_algorithm = "sha2-256";  // or sha2-224/384/512, sha3-*, "none"
  bool prehashed = false;
  std::string signature_algorithm;            // RSA: "pss" (default) or "pkcs1v15"
  std::string marshaling_algorithm = "asn1";  // or "jws" (ECDSA)
  std::string salt_length = "auto";           // RSA PSS: "auto", "hash" or an integer
  std::string context;                        // derived Ed25519 keys
  int key_version = 0;                        // 0: newest
};

class Policy {
 public:
  std::string name;
  KeyType type = KeyType::kAes256Gcm96;
  bool derived = false;
  bool convergent = false;
  int convergent_version = 0;  // 3 for convergent keys made by Coffer
  bool exportable = false;
  bool allow_plaintext_backup = false;
  bool deletion_allowed = false;
  int min_decryption_version = 1;
  int min_encryption_version = 0;  // 0: the newest
  int min_available_version = 0;   // versions below were trimmed
  int latest_version = 0;
  int64_t auto_rotate_period = 0;  // seconds, 0: off
  std::map<int, KeyVersion> versions;

  // A new key of `type` with version 1.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(std::string name, KeyType type,
                                                        int64_t now);
  // Adds version latest+1.
  absl::Status Rotate(int64_t now);
  std::unique_ptr<Policy> Clone() const;

  // Storage form (base64 key bytes, PKCS#8 PEM private keys); the barrier encrypts it.
  absl::StatusOr<std::string> Serialize() const;
  // Parses and Validate()s: a restored backup is untrusted input.
  static absl::StatusOr<std::unique_ptr<Policy>> Parse(std::string_view json);
  // The fields agree with each other: every version from min_available_version to
  // latest_version present, key material of the type's kind and size, convergent keys derived.
  absl::Status Validate() const;
  // What keys/<name> shows (no secrets).
  boost::json::object Describe() const;

  absl::StatusOr<std::string> Encrypt(std::string_view plaintext, std::string_view context,
                                      std::string_view nonce, std::string_view aad,
                                      int version) const;
  // The plaintext, and the ciphertext's version in *version when not null.
  absl::StatusOr<std::string> Decrypt(std::string_view ciphertext, std::string_view context,
                                      std::string_view nonce, std::string_view aad,
                                      int* version = nullptr) const;
  absl::StatusOr<std::string> Hmac(std::string_view input, std::string_view algorithm,
                                   int version) const;
  absl::StatusOr<bool> VerifyHmac(std::string_view input, std::string_view algorithm,
                                  std::string_view hmac) const;
  absl::StatusOr<std::string> Sign(std::string_view input, const SignOptions& o) const;
  absl::StatusOr<bool> Verify(std::string_view input, std::string_view signature,
                              const SignOptions& o) const;
  // PEM (or raw base64 for Ed25519) public key of a version; empty for symmetric keys.
  std::string PublicKey(int version) const;
  // export/<kind>/<name>: kind "encryption-key", "signing-key", "hmac-key", "public-key".
  absl::StatusOr<std::string> Export(std::string_view kind, int version) const;

  // The version an encryption uses: `requested` (0: newest), checked against the policy.
  absl::StatusOr<int> EncryptionVersion(int requested) const;

 private:
  // The AEAD key (and convergent HMAC key) of `version` for `context`.
  absl::Status SymmetricKeys(int version, std::string_view context, crypto::SecretBytes* enc,
                             crypto::SecretBytes* hmac) const;
  absl::StatusOr<std::shared_ptr<EVP_PKEY>> SigningKey(int version, std::string_view context) const;
  const KeyVersion* Version(int v) const;
};

// Hashes `input` with Vault's algorithm names; nullopt for an unknown name.
std::optional<std::string> Digest(std::string_view algorithm, std::string_view input);

}  // namespace coffer::engines::transit
