// Internals shared by the X.509 files of src/crypto (keys, pem, cert_fields, csr,
// cert_builder, crl): memory BIOs, DER encoding through an i2d function, the digest-sign
// context, subject names and general names from strings, and the SubjectPublicKeyInfo field
// copy. Not part of any public interface: include it only from those .cc files. Every function
// is thread-safe; what they return is owned by the caller (GENERAL_NAME* included: free it or
// hand it to a stack that does).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/handles.h"

namespace coffer::crypto::x509_internal {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

// A read-only memory BIO over `s`; `s` must outlive it.
Bio MemBio(std::string_view s);

// The bytes written so far to a memory BIO.
std::string BioString(BIO* b);

// The DER of `obj` by an OpenSSL i2d function; "" when it cannot be encoded.
template <typename T, typename F>
std::string I2d(T* obj, F fn) {
  int n = fn(obj, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  fn(obj, &p);
  return out;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// The digest a signature by `key` uses: `bits` picks SHA-256/384/512; 0 is SHA-256 for RSA and
// the curve-sized hash for EC; nullptr for Ed25519, which signs without one.
const EVP_MD* DigestFor(EVP_PKEY* key, int bits);

// A digest-sign context for `key`, PSS-padded when asked (RSA only). `bits` picks SHA-256/384/
// 512; 0 is SHA-256 for RSA and the curve-sized hash for EC; Ed25519 signs without a digest.
absl::StatusOr<std::unique_ptr<EVP_MD_CTX, MdCtxFree>> SignCtx(EVP_PKEY* key, int bits,
                                                               bool use_pss);

// Subject in the conventional order C, ST, L, street, postalCode, O, OU, CN, serialNumber.
absl::StatusOr<Name> BuildName(const std::string& cn, const std::vector<std::string>& o,
                               const std::vector<std::string>& ou,
                               const std::vector<std::string>& c, const std::vector<std::string>& l,
                               const std::vector<std::string>& st,
                               const std::vector<std::string>& street,
                               const std::vector<std::string>& postal, const std::string& serial);

// A GENERAL_NAME of `type` (GEN_DNS, GEN_EMAIL, GEN_URI: ASCII only; GEN_IPADD: an IPv4 or IPv6
// address), owned by the caller.
absl::StatusOr<GENERAL_NAME*> MakeGeneralName(int type, std::string_view value);

// Copies an SPKI's algorithm and key bits into `out` field by field (no decoder round trip).
bool CopySpkiInto(const X509_PUBKEY* in, X509_PUBKEY* out);

}  // namespace coffer::crypto::x509_internal
