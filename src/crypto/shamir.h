// Shamir secret sharing over GF(2^8) (the AES field, x^8+x^4+x^3+x+1), byte-compatible with
// Vault's shares: each share is the polynomial values for every secret byte followed by one
// byte holding the share's x coordinate (distinct, random, never 0). Thread-safe.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace coffer::crypto {

// Splits `secret` into `parts` shares of which any `threshold` rebuild it.
// Requires 2 <= threshold <= parts <= 255 and a non-empty secret.
absl::StatusOr<std::vector<SecretBytes>> ShamirSplit(const SecretBytes& secret, int parts,
                                                     int threshold);

// Rebuilds the secret from at least two shares. Fails on duplicate x coordinates or
// shares of different lengths. With fewer than `threshold` shares it returns a wrong secret:
// the caller must verify it (the seal does so by decrypting the root key with it).
absl::StatusOr<SecretBytes> ShamirCombine(const std::vector<SecretBytes>& shares);

namespace gf256 {
uint8_t Mul(uint8_t a, uint8_t b);
uint8_t Inv(uint8_t a);
}  // namespace gf256

}  // namespace coffer::crypto
