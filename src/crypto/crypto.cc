#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    return OpenSslError("RAND_bytes");
  return out;
}

absl::StatusOr<std::string> AesGcmSeal(const SecretBytes& key, std::string_view plaintext,
                                       std::string_view aad) {
  if (key.size() != kAesKeySize) return absl::InternalError("AES-256-GCM needs a 32-byte key");
  auto nonce = RandomBytes(kGcmNonceSize);
  if (!nonce.ok()) return nonce.status();
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  std::string out = *nonce;
  out.resize(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  auto* o = reinterpret_cast<unsigned char*>(out.data()) + kGcmNonceSize;
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                         reinterpret_cast<const unsigned char*>(nonce->data())) != 1)
    return OpenSslError("EVP_EncryptInit_ex");
  if (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                                        reinterpret_cast<const unsigned char*>(aad.data()),
                                        static_cast<int>(aad.size())) != 1)
    return OpenSslError("EVP_EncryptUpdate(aad)");
  if (EVP_EncryptUpdate(ctx.get(), o, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1)
    return OpenSslError("EVP_EncryptUpdate");
  int fin = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), o + len, &fin) != 1)
    return OpenSslError("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize, o + plaintext.size()) != 1)
    return OpenSslError("EVP_CTRL_GCM_GET_TAG");
  return out;
}

absl::StatusOr<std::string> AesGcmOpen(const SecretBytes& key, std::string_view sealed,
                                       std::string_view aad) {
  if (key.size() != kAesKeySize) return absl::InternalError("AES-256-GCM needs a 32-byte key");
  if (sealed.size() < kGcmNonceSize + kGcmTagSize)
    return absl::DataLossError("ciphertext too short");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  size_t ct_len = sealed.size() - kGcmNonceSize - kGcmTagSize;
  std::string out(ct_len, '\0');
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), in) != 1)
    return OpenSslError("EVP_DecryptInit_ex");
  if (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                                        reinterpret_cast<const unsigned char*>(aad.data()),
                                        static_cast<int>(aad.size())) != 1)
    return OpenSslError("EVP_DecryptUpdate(aad)");
  if (EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        in + kGcmNonceSize, static_cast<int>(ct_len)) != 1)
    return OpenSslError("EVP_DecryptUpdate");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize,
                          const_cast<unsigned char*>(in + kGcmNonceSize + ct_len)) != 1)
    return OpenSslError("EVP_CTRL_GCM_SET_TAG");
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) !=
      1) {
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    return absl::DataLossError("message authentication failed");
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

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

std::string RandomUuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // RAND_bytes only fails if the DRBG is broken; an id is not a secret, but it must be unique.
    abort();
  }
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

}  // namespace coffer::crypto
