#include "crypto/x509_internal.h"

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "util/status.h"

namespace coffer::crypto::x509_internal {
const EVP_MD* DigestFor(EVP_PKEY* key, int bits) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519) return nullptr;
  if (bits == 0 && id == EVP_PKEY_EC) {
    int size = EVP_PKEY_get_bits(key);
    bits = size > 384 ? 512 : size > 256 ? 384 : 256;
  }
  switch (bits) {
    case 384:
      return EVP_sha384();
    case 512:
      return EVP_sha512();
    default:
      return EVP_sha256();
  }
}

namespace {

absl::Status AddEntries(X509_NAME* n, int nid, const std::vector<std::string>& values) {
  for (const auto& v : values) {
    if (v.empty()) continue;
    int type = nid == NID_countryName ? MBSTRING_ASC : MBSTRING_UTF8;
    if (nid == NID_countryName && v.size() != 2)
      return absl::InvalidArgumentError(Cat("country \"", v, "\" must be a two-letter code"));
    if (X509_NAME_add_entry_by_NID(n, nid, type, reinterpret_cast<const unsigned char*>(v.data()),
                                   static_cast<int>(v.size()), -1, 0) != 1)
      return absl::InvalidArgumentError(Cat("subject value \"", v, "\" is not valid"));
  }
  return absl::OkStatus();
}

}  // namespace

Bio MemBio(std::string_view s) {
  return Bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string BioString(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return std::string(p, static_cast<size_t>(n));
}

absl::StatusOr<std::unique_ptr<EVP_MD_CTX, MdCtxFree>> SignCtx(EVP_PKEY* key, int bits,
                                                               bool use_pss) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx.get(), &pctx, DigestFor(key, bits), nullptr, key) != 1)
    return absl::InternalError(Cat("signing setup failed: ", OpenSslError()));
  if (use_pss && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)
      return absl::InternalError(Cat("PSS setup failed: ", OpenSslError()));
  }
  return ctx;
}

absl::StatusOr<Name> BuildName(const std::string& cn, const std::vector<std::string>& o,
                               const std::vector<std::string>& ou,
                               const std::vector<std::string>& c, const std::vector<std::string>& l,
                               const std::vector<std::string>& st,
                               const std::vector<std::string>& street,
                               const std::vector<std::string>& postal, const std::string& serial) {
  Name n(X509_NAME_new());
  RETURN_IF_ERROR(AddEntries(n.get(), NID_countryName, c));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_stateOrProvinceName, st));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_localityName, l));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_streetAddress, street));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_postalCode, postal));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_organizationName, o));
  RETURN_IF_ERROR(AddEntries(n.get(), NID_organizationalUnitName, ou));
  if (!cn.empty()) {
    if (cn.size() > 64)
      return absl::InvalidArgumentError(
          Cat("common_name is ", cn.size(), " characters; X.509 allows at most 64"));
    RETURN_IF_ERROR(AddEntries(n.get(), NID_commonName, {cn}));
  }
  if (!serial.empty()) RETURN_IF_ERROR(AddEntries(n.get(), NID_serialNumber, {serial}));
  return n;
}

absl::StatusOr<GENERAL_NAME*> MakeGeneralName(int type, std::string_view value) {
  GENERAL_NAME* gn = GENERAL_NAME_new();
  if (type == GEN_IPADD) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(std::string(value).c_str());
    if (!ip) {
      GENERAL_NAME_free(gn);
      return absl::InvalidArgumentError(Cat("\"", value, "\" is not a valid IP address"));
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    return gn;
  }
  ASN1_IA5STRING* s = ASN1_IA5STRING_new();
  for (unsigned char ch : value) {
    if (ch >= 0x80) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gn);
      return absl::InvalidArgumentError(
          Cat("\"", value, "\" has non-ASCII characters; use the punycode (xn--) form"));
    }
  }
  ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
  GENERAL_NAME_set0_value(gn, type, s);
  return gn;
}

bool CopySpkiInto(const X509_PUBKEY* in, X509_PUBKEY* out) {
  const unsigned char* bits = nullptr;
  int len = 0;
  X509_ALGOR* alg = nullptr;
  if (X509_PUBKEY_get0_param(nullptr, &bits, &len, &alg, in) != 1) return false;
  const ASN1_OBJECT* oid = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&oid, &ptype, &pval, alg);
  void* pcopy = nullptr;
  if (ptype == V_ASN1_OBJECT)
    pcopy = OBJ_dup(static_cast<const ASN1_OBJECT*>(pval));
  else if (ptype == V_ASN1_SEQUENCE)
    pcopy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(pval));
  auto* bits_copy = static_cast<unsigned char*>(OPENSSL_memdup(bits, static_cast<size_t>(len)));
  return X509_PUBKEY_set0_param(out, OBJ_dup(oid), ptype, pcopy, bits_copy, len) == 1;
}

}  // namespace coffer::crypto::x509_internal
