#include "crypto/shamir.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

namespace coffer::crypto {
namespace gf256 {

// Constant-time multiplication: no table lookups indexed by secret bytes.
uint8_t Mul(uint8_t a, uint8_t b) {
  uint8_t r = 0;
  for (int i = 7; i >= 0; --i) {
    uint8_t bit = static_cast<uint8_t>(-((b >> i) & 1));
    uint8_t carry = static_cast<uint8_t>(-((r >> 7) & 1));
    r = static_cast<uint8_t>((r << 1) ^ (carry & 0x1b) ^ (bit & a));
  }
  return r;
}

// a^254 == a^-1 in GF(2^8); Inv(0) == 0.
uint8_t Inv(uint8_t a) {
  uint8_t result = 1, base = a;
  for (int e = 254; e > 0; e >>= 1) {
    if (e & 1) result = Mul(result, base);
    base = Mul(base, base);
  }
  return result;
}

}  // namespace gf256

absl::StatusOr<std::vector<SecretBytes>> ShamirSplit(const SecretBytes& secret, int parts,
                                                     int threshold) {
  if (secret.empty()) return absl::InvalidArgumentError("cannot split an empty secret");
  if (parts < threshold) return absl::InvalidArgumentError("parts cannot be less than threshold");
  if (parts > 255) return absl::InvalidArgumentError("parts cannot exceed 255");
  if (threshold < 2) return absl::InvalidArgumentError("threshold must be at least 2");

  // Random distinct x coordinates in 1..255 (Fisher-Yates over a random stream).
  std::array<uint8_t, 255> xs;
  std::iota(xs.begin(), xs.end(), 1);
  auto rnd = SecretBytes::Random(255 * 4);
  if (!rnd.ok()) return rnd.status();
  for (int i = 254; i > 0; --i) {
    uint32_t r;
    std::memcpy(&r, rnd->data() + i * 4, 4);
    std::swap(xs[i], xs[r % static_cast<uint32_t>(i + 1)]);
  }

  const size_t n = secret.size();
  std::vector<SecretBytes> shares;
  shares.reserve(parts);
  for (int p = 0; p < parts; ++p) {
    SecretBytes s(n + 1);
    s.data()[n] = xs[p];
    shares.push_back(std::move(s));
  }
  // One random polynomial of degree threshold-1 per secret byte; intercept = the byte.
  auto coeffs = SecretBytes::Random(static_cast<size_t>(threshold - 1) * n);
  if (!coeffs.ok()) return coeffs.status();
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* c = coeffs->data() + i * (threshold - 1);
    for (int p = 0; p < parts; ++p) {
      uint8_t x = xs[p];
      // Horner's rule from the highest degree down to the intercept.
      uint8_t y = 0;
      for (int d = threshold - 2; d >= 0; --d) y = gf256::Mul(y, x) ^ c[d];
      y = gf256::Mul(y, x) ^ secret.data()[i];
      shares[p].data()[i] = y;
    }
  }
  return shares;
}

absl::StatusOr<SecretBytes> ShamirCombine(const std::vector<SecretBytes>& shares) {
  if (shares.size() < 2)
    return absl::InvalidArgumentError("less than two shares cannot rebuild the secret");
  const size_t len = shares[0].size();
  if (len < 2) return absl::InvalidArgumentError("shares must be at least two bytes long");
  for (const auto& s : shares)
    if (s.size() != len) return absl::InvalidArgumentError("all shares must be the same length");
  const size_t k = shares.size();
  std::vector<uint8_t> xs(k);
  for (size_t i = 0; i < k; ++i) {
    xs[i] = shares[i].data()[len - 1];
    if (xs[i] == 0) return absl::InvalidArgumentError("share has an invalid x coordinate");
    for (size_t j = 0; j < i; ++j)
      if (xs[j] == xs[i]) return absl::InvalidArgumentError("duplicate share detected");
  }
  // Lagrange basis values at x = 0 do not depend on the byte position.
  std::vector<uint8_t> basis(k);
  for (size_t i = 0; i < k; ++i) {
    uint8_t num = 1, den = 1;
    for (size_t j = 0; j < k; ++j) {
      if (i == j) continue;
      num = gf256::Mul(num, xs[j]);
      den = gf256::Mul(den, xs[i] ^ xs[j]);
    }
    basis[i] = gf256::Mul(num, gf256::Inv(den));
  }
  SecretBytes out(len - 1);
  for (size_t b = 0; b + 1 < len; ++b) {
    uint8_t acc = 0;
    for (size_t i = 0; i < k; ++i) acc ^= gf256::Mul(basis[i], shares[i].data()[b]);
    out.data()[b] = acc;
  }
  return out;
}

}  // namespace coffer::crypto
