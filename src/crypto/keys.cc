#include "crypto/keys.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <memory>

#include "crypto/ec_fast.h"
#include "crypto/x509_internal.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::Bio;
using x509_internal::I2d;
using x509_internal::MemBio;

std::string_view KeyTypeName(KeyType t) {
  switch (t) {
    case KeyType::kRsa:
      return "rsa";
    case KeyType::kEc:
      return "ec";
    case KeyType::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

absl::StatusOr<KeySpec> ParseKeySpec(std::string_view type, int64_t bits) {
  if (type == "rsa" || type.empty()) {
    if (bits == 0) bits = 2048;
    if (bits != 2048 && bits != 3072 && bits != 4096 && bits != 8192)
      return absl::InvalidArgumentError(
          Cat("unsupported RSA key size ", bits, ": use 2048, 3072, 4096 or 8192"));
    return KeySpec{KeyType::kRsa, static_cast<int>(bits)};
  }
  if (type == "ec") {
    if (bits == 0) bits = 256;
    if (bits != 224 && bits != 256 && bits != 384 && bits != 521)
      return absl::InvalidArgumentError(
          Cat("unsupported EC key size ", bits, ": use 256 (P-256), 384 (P-384) or 521 (P-521)"));
    if (bits == 224)
      return absl::InvalidArgumentError("P-224 keys are too weak: use 256, 384 or 521");
    return KeySpec{KeyType::kEc, static_cast<int>(bits)};
  }
  if (type == "ed25519") return KeySpec{KeyType::kEd25519, 0};
  return absl::InvalidArgumentError(Cat("unknown key_type \"", type, "\": use rsa, ec or ed25519"));
}

absl::StatusOr<KeySpec> DescribeKey(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048)
        return absl::InvalidArgumentError(
            Cat("RSA key of ", bits, " bits is too weak: at least 2048 bits are required"));
      return KeySpec{KeyType::kRsa, bits};
    }
    case EVP_PKEY_EC: {
      char curve[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                         &len) != 1)
        return absl::InvalidArgumentError(
            "EC key without a named curve (explicit parameters) is not supported");
      std::string_view c(curve, len);
      if (c == "prime256v1" || c == "P-256") return KeySpec{KeyType::kEc, 256};
      if (c == "secp384r1" || c == "P-384") return KeySpec{KeyType::kEc, 384};
      if (c == "secp521r1" || c == "P-521") return KeySpec{KeyType::kEc, 521};
      return absl::InvalidArgumentError(
          Cat("unsupported elliptic curve \"", c, "\": use P-256, P-384 or P-521"));
    }
    case EVP_PKEY_ED25519:
      return KeySpec{KeyType::kEd25519, 0};
    default:
      return absl::InvalidArgumentError(Cat("unsupported key algorithm \"",
                                            OBJ_nid2sn(EVP_PKEY_get_base_id(key)),
                                            "\": use RSA, EC (P-256, P-384, P-521) or Ed25519"));
  }
}

namespace {

thread_local const std::atomic<bool>* t_cancel = nullptr;

// OpenSSL calls this for every prime candidate and Miller-Rabin round; 0 stops the generation.
int KeygenProgress(EVP_PKEY_CTX*) { return t_cancel && t_cancel->load() ? 0 : 1; }

absl::StatusOr<EVP_PKEY*> GenerateRsa(int bits) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), &EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) != 1)
    return absl::InternalError(Cat("key generation failed: ", OpenSslError()));
  EVP_PKEY_CTX_set_cb(ctx.get(), &KeygenProgress);
  EVP_PKEY* k = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &k) != 1) {
    if (t_cancel && t_cancel->load()) {
      ERR_clear_error();
      return absl::UnavailableError("key generation stopped: the server is sealing");
    }
    return absl::InternalError(Cat("key generation failed: ", OpenSslError()));
  }
  return k;
}

}  // namespace

CancelScope::CancelScope(const std::atomic<bool>* flag) : previous_(t_cancel) { t_cancel = flag; }
CancelScope::~CancelScope() { t_cancel = previous_; }

absl::StatusOr<PKey> GenerateKey(const KeySpec& spec) {
  EVP_PKEY* k = nullptr;
  switch (spec.type) {
    case KeyType::kRsa: {
      ASSIGN_OR_RETURN(k, GenerateRsa(spec.bits));
      break;
    }
    case KeyType::kEc:
      k = NewEcKey(spec.bits == 384   ? NID_secp384r1
                   : spec.bits == 521 ? NID_secp521r1
                                      : NID_X9_62_prime256v1);
      break;
    case KeyType::kEd25519:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (!k) return absl::InternalError(Cat("key generation failed: ", OpenSslError()));
  return PKey(k);
}

absl::StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key, std::string_view format) {
  Bio b(BIO_new(BIO_s_secmem()));
  if (!b) b.reset(BIO_new(BIO_s_mem()));
  int ok = 0;
  bool pkcs8 = format == "pkcs8" || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  if (pkcs8)
    ok = PEM_write_bio_PKCS8PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  else
    ok = PEM_write_bio_PrivateKey_traditional(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  if (ok != 1) return absl::InternalError(Cat("encoding private key: ", OpenSslError()));
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  SecretBytes out(std::string_view(p, static_cast<size_t>(n)));
  OPENSSL_cleanse(p, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<SecretBytes> PrivateKeyDer(EVP_PKEY* key, std::string_view format) {
  bool pkcs8 = format == "pkcs8" || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  unsigned char* buf = nullptr;
  int n = 0;
  if (pkcs8) {
    PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(key);
    if (p8) {
      n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
      PKCS8_PRIV_KEY_INFO_free(p8);
    }
  } else {
    n = i2d_PrivateKey(key, &buf);
  }
  if (n <= 0 || !buf) return absl::InternalError(Cat("encoding private key: ", OpenSslError()));
  SecretBytes out(std::string_view(reinterpret_cast<char*>(buf), static_cast<size_t>(n)));
  OPENSSL_clear_free(buf, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<PKey> ParsePrivateKeyPem(std::string_view pem) {
  Bio b = MemBio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b.get(), nullptr, NoPassphrase, nullptr);
  if (!k) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM private key (PKCS#1, SEC 1 or PKCS#8)");
  }
  return PKey(k);
}

std::string PublicKeyDer(EVP_PKEY* key) { return I2d(key, i2d_PUBKEY); }

bool SameKey(EVP_PKEY* a, EVP_PKEY* b) { return EVP_PKEY_eq(a, b) == 1; }

}  // namespace coffer::crypto
