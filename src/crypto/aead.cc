#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>

#include "crypto/handles.h"
#include "util/status.h"

namespace coffer::crypto {
namespace {

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// Explicitly fetched once: EVP_aes_256_gcm() and friends look the provider up on every init.
const EVP_CIPHER* Cipher(Aead alg) {
  static EVP_CIPHER* const kAes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  static EVP_CIPHER* const kAes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const kChaCha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (alg) {
    case Aead::kAes128Gcm:
      return kAes128;
    case Aead::kAes256Gcm:
      return kAes256;
    case Aead::kChaCha20Poly1305:
      return kChaCha;
  }
  return nullptr;
}

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

size_t AeadKeySize(Aead alg) { return alg == Aead::kAes128Gcm ? 16 : 32; }

absl::Status AeadSeal(Aead alg, std::string_view key, std::string_view nonce,
                      std::string_view plaintext, std::string_view aad, std::string* out) {
  if (key.size() != AeadKeySize(alg)) return absl::InternalError("AEAD key of the wrong size");
  if (nonce.size() != kAeadNonceSize) return absl::InternalError("AEAD nonce of the wrong size");
  if (plaintext.size() > (size_t{1} << 30))
    return absl::InvalidArgumentError("plaintext too large");
  const EVP_CIPHER* cipher = Cipher(alg);
  if (cipher == nullptr) return OpenSslStatus("EVP_CIPHER_fetch");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (!ctx) return OpenSslStatus("EVP_CIPHER_CTX_new");
  size_t start = out->size();
  out->resize(start + nonce.size() + plaintext.size() + kAeadTagSize);
  auto* o = reinterpret_cast<unsigned char*>(out->data()) + start;
  std::copy(nonce.begin(), nonce.end(), o);
  o += nonce.size();
  int len = 0;
  if (EVP_EncryptInit_ex2(ctx.get(), cipher, U(key), U(nonce), nullptr) != 1)
    return OpenSslStatus("EVP_EncryptInit_ex2");
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1)
    return OpenSslStatus("EVP_EncryptUpdate(aad)");
  if (EVP_EncryptUpdate(ctx.get(), o, &len, U(plaintext), static_cast<int>(plaintext.size())) != 1)
    return OpenSslStatus("EVP_EncryptUpdate");
  int fin = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), o + len, &fin) != 1)
    return OpenSslStatus("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagSize),
                          o + plaintext.size()) != 1)
    return OpenSslStatus("EVP_CTRL_AEAD_GET_TAG");
  return absl::OkStatus();
}

absl::StatusOr<std::string> AeadOpen(Aead alg, std::string_view key, std::string_view sealed,
                                     std::string_view aad) {
  if (key.size() != AeadKeySize(alg)) return absl::InternalError("AEAD key of the wrong size");
  if (sealed.size() < kAeadNonceSize + kAeadTagSize)
    return absl::InvalidArgumentError("invalid ciphertext: too short");
  const EVP_CIPHER* cipher = Cipher(alg);
  if (cipher == nullptr) return OpenSslStatus("EVP_CIPHER_fetch");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  if (!ctx) return OpenSslStatus("EVP_CIPHER_CTX_new");
  std::string_view nonce = sealed.substr(0, kAeadNonceSize);
  std::string_view body =
      sealed.substr(kAeadNonceSize, sealed.size() - kAeadNonceSize - kAeadTagSize);
  std::string tag(sealed.substr(sealed.size() - kAeadTagSize));
  std::string out(body.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), cipher, U(key), U(nonce), nullptr) != 1)
    return OpenSslStatus("EVP_DecryptInit_ex2");
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1)
    return OpenSslStatus("EVP_DecryptUpdate(aad)");
  if (EVP_DecryptUpdate(ctx.get(), o, &len, U(body), static_cast<int>(body.size())) != 1)
    return OpenSslStatus("EVP_DecryptUpdate");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagSize),
                          tag.data()) != 1)
    return OpenSslStatus("EVP_CTRL_AEAD_SET_TAG");
  int fin = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), o + len, &fin) != 1) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    return absl::InvalidArgumentError("cipher: message authentication failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> HkdfSha256(std::string_view secret, std::string_view info, size_t n) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U(secret), static_cast<int>(secret.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U(info), static_cast<int>(info.size())) != 1)
    return OpenSslStatus("HKDF setup");
  SecretBytes out(n);
  size_t len = n;
  if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1 || len != n)
    return OpenSslStatus("HKDF derive");
  return out;
}

}  // namespace coffer::crypto
