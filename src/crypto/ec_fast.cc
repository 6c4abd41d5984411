// The EC_KEY/ECDSA_* functions are deprecated in OpenSSL 3 in favour of EVP, which is exactly
// the overhead this file avoids; they remain supported through the 3.x series.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "crypto/ec_fast.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

namespace coffer::crypto {
namespace {

// One verifying key per curve and thread; only its public point changes between calls.
EC_KEY* ThreadKey(int curve_nid) {
  struct Keys {
    EC_KEY* k[3] = {};
    ~Keys() {
      for (EC_KEY* x : k) EC_KEY_free(x);
    }
  };
  thread_local Keys keys;
  const int i = curve_nid == NID_X9_62_prime256v1 ? 0 : curve_nid == NID_secp384r1 ? 1 : 2;
  if (!keys.k[i]) keys.k[i] = EC_KEY_new_by_curve_name(curve_nid);
  return keys.k[i];
}

size_t FieldBytes(int curve_nid) {
  switch (curve_nid) {
    case NID_X9_62_prime256v1:
      return 32;
    case NID_secp384r1:
      return 48;
    case NID_secp521r1:
      return 66;
    default:
      return 0;
  }
}

// The digest through the provider (under a FIPS provider every hash must go through it).
std::string EvpDigest(int bits, std::string_view data) {
  const EVP_MD* md = bits == 1     ? EVP_sha1()
                     : bits == 256 ? EVP_sha256()
                     : bits == 384 ? EVP_sha384()
                     : bits == 512 ? EVP_sha512()
                                   : nullptr;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!md || EVP_Digest(data.data(), data.size(), out, &n, md, nullptr) != 1) {
    ERR_clear_error();
    return {};
  }
  return std::string(reinterpret_cast<char*>(out), n);
}

}  // namespace

int EcCurveFromOid(std::string_view oid) {
  static constexpr std::string_view kP256("\x2a\x86\x48\xce\x3d\x03\x01\x07", 8);
  static constexpr std::string_view kP384("\x2b\x81\x04\x00\x22", 5);
  static constexpr std::string_view kP521("\x2b\x81\x04\x00\x23", 5);
  if (oid == kP256) return NID_X9_62_prime256v1;
  if (oid == kP384) return NID_secp384r1;
  if (oid == kP521) return NID_secp521r1;
  return 0;
}

int EcdsaVerify(int curve_nid, std::string_view point, std::string_view digest,
                std::string_view signature) {
  const size_t n = FieldBytes(curve_nid);
  if (n == 0 || point.empty()) return -1;
  // Only a real point: 04||X||Y or 02/03||X. This also rules out the one-byte encoding of the
  // point at infinity, with which any signature of a chosen form would verify.
  const auto form = static_cast<unsigned char>(point[0]);
  const bool shape_ok = (form == 0x04 && point.size() == 1 + 2 * n) ||
                        ((form == 0x02 || form == 0x03) && point.size() == 1 + n);
  if (!shape_ok) return -1;
  EC_KEY* key = ThreadKey(curve_nid);
  if (!key) return -1;
  // EC_POINT_oct2point (inside) refuses points that are not on the curve; the curves here
  // have cofactor 1, so any such point generates the full group.
  if (EC_KEY_oct2key(key, reinterpret_cast<const unsigned char*>(point.data()), point.size(),
                     nullptr) != 1) {
    ERR_clear_error();
    return -1;
  }
  const int r = ECDSA_verify(0, reinterpret_cast<const unsigned char*>(digest.data()),
                             static_cast<int>(digest.size()),
                             reinterpret_cast<const unsigned char*>(signature.data()),
                             static_cast<int>(signature.size()), key);
  ERR_clear_error();
  return r == 1 ? 1 : 0;
}

std::string EcdsaSign(EVP_PKEY* key, std::string_view digest) {
  // Under a FIPS provider every signature must go through it: decline, EVP signs.
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_default_properties_is_fips_enabled(nullptr))
    return {};
  // A provider key is copied into an EC_KEY once, cached inside `key` under its lock (so this is
  // safe while other threads sign with the same key) and freed, private scalar cleared, with it.
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key);
  if (ec == nullptr || EC_KEY_get0_private_key(ec) == nullptr) {
    ERR_clear_error();
    return {};
  }
  std::string sig(static_cast<size_t>(ECDSA_size(ec)), '\0');
  unsigned int len = 0;
  // ECDSA_sign only reads the key; it is const in all but its signature.
  if (sig.empty() ||
      ECDSA_sign(0, reinterpret_cast<const unsigned char*>(digest.data()),
                 static_cast<int>(digest.size()), reinterpret_cast<unsigned char*>(sig.data()),
                 &len, const_cast<EC_KEY*>(ec)) != 1) {
    ERR_clear_error();
    return {};
  }
  sig.resize(len);
  return sig;
}

EVP_PKEY* NewEcKey(int curve_nid) {
  EC_KEY* ec = EC_KEY_new_by_curve_name(curve_nid);
  if (!ec || EC_KEY_generate_key(ec) != 1) {
    EC_KEY_free(ec);
    return nullptr;
  }
  EVP_PKEY* k = EVP_PKEY_new();
  if (!k || EVP_PKEY_assign_EC_KEY(k, ec) != 1) {  // takes `ec` on success
    EC_KEY_free(ec);
    EVP_PKEY_free(k);
    return nullptr;
  }
  return k;
}

std::string Sha2(int bits, std::string_view data) {
  // The one-shot SHA256() of OpenSSL 3 fetches the algorithm from the provider store on every
  // call (a lookup under a lock that cost more than hashing a certificate); the SHA-2 block
  // functions hash the same bytes directly.
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  unsigned char md[SHA512_DIGEST_LENGTH];
  if (EVP_default_properties_is_fips_enabled(nullptr)) return EvpDigest(bits, data);
  switch (bits) {
    case 256: {
      SHA256_CTX c;
      SHA256_Init(&c);
      SHA256_Update(&c, p, data.size());
      SHA256_Final(md, &c);
      return std::string(reinterpret_cast<char*>(md), SHA256_DIGEST_LENGTH);
    }
    case 384: {
      SHA512_CTX c;
      SHA384_Init(&c);
      SHA384_Update(&c, p, data.size());
      SHA384_Final(md, &c);
      return std::string(reinterpret_cast<char*>(md), SHA384_DIGEST_LENGTH);
    }
    case 512: {
      SHA512_CTX c;
      SHA512_Init(&c);
      SHA512_Update(&c, p, data.size());
      SHA512_Final(md, &c);
      return std::string(reinterpret_cast<char*>(md), SHA512_DIGEST_LENGTH);
    }
    default:
      return {};
  }
}

std::string Sha1(std::string_view data) {
  if (EVP_default_properties_is_fips_enabled(nullptr)) return EvpDigest(1, data);
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA_CTX c;
  SHA1_Init(&c);
  SHA1_Update(&c, data.data(), data.size());
  SHA1_Final(md, &c);
  return std::string(reinterpret_cast<char*>(md), SHA_DIGEST_LENGTH);
}

}  // namespace coffer::crypto
