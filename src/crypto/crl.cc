#include "crypto/crl.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/cert_fields.h"
#include "crypto/x509_internal.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::Bio;
using x509_internal::BioString;
using x509_internal::I2d;
using x509_internal::SignCtx;

absl::StatusOr<Crl> SignCrl(X509* issuer, EVP_PKEY* issuer_key, int64_t crl_number,
                            int64_t this_update, int64_t next_update,
                            const std::vector<RevokedSerial>& revoked, int signature_bits) {
  Crl crl(X509_CRL_new());
  X509_CRL* c = crl.get();
  X509_CRL_set_version(c, 1);  // v2
  X509_CRL_set_issuer_name(c, X509_get_subject_name(issuer));
  ASN1_TIME* t = ASN1_TIME_new();
  ASN1_TIME_set(t, static_cast<time_t>(this_update));
  X509_CRL_set1_lastUpdate(c, t);
  ASN1_TIME_set(t, static_cast<time_t>(next_update));
  X509_CRL_set1_nextUpdate(c, t);
  ASN1_TIME_free(t);
  for (const auto& r : revoked) {
    X509_REVOKED* rv = X509_REVOKED_new();
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(r.serial.data()),
                           static_cast<int>(r.serial.size()), nullptr);
    ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
    BN_free(bn);
    X509_REVOKED_set_serialNumber(rv, serial);
    ASN1_INTEGER_free(serial);
    ASN1_TIME* rt = ASN1_TIME_new();
    ASN1_TIME_set(rt, static_cast<time_t>(r.revocation_time));
    X509_REVOKED_set_revocationDate(rv, rt);
    ASN1_TIME_free(rt);
    X509_CRL_add0_revoked(c, rv);
  }
  X509_CRL_sort(c);
  ASN1_INTEGER* num = ASN1_INTEGER_new();
  ASN1_INTEGER_set_int64(num, crl_number);
  X509_CRL_add1_ext_i2d(c, NID_crl_number, num, 0, X509V3_ADD_DEFAULT);
  ASN1_INTEGER_free(num);
  std::string aki = SubjectKeyId(issuer);
  if (!aki.empty()) {
    AUTHORITY_KEYID* ak = AUTHORITY_KEYID_new();
    ak->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(ak->keyid, reinterpret_cast<const unsigned char*>(aki.data()),
                          static_cast<int>(aki.size()));
    X509_CRL_add1_ext_i2d(c, NID_authority_key_identifier, ak, 0, X509V3_ADD_DEFAULT);
    AUTHORITY_KEYID_free(ak);
  }
  ASSIGN_OR_RETURN(auto ctx, SignCtx(issuer_key, signature_bits, false));
  if (X509_CRL_sign_ctx(c, ctx.get()) <= 0)
    return absl::InternalError(Cat("signing the CRL: ", OpenSslError()));
  return crl;
}

std::string CrlDer(X509_CRL* c) { return I2d(c, i2d_X509_CRL); }

std::string CrlPem(X509_CRL* c) {
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(b.get(), c);
  std::string s = BioString(b.get());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace coffer::crypto
