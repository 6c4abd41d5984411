#include "crypto/cert_fields.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/ascii.h"
#include "crypto/x509_internal.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::Bio;
using x509_internal::BioString;

namespace {

int64_t AsnTimeUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string SerialColonFromBytes(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i) out.push_back(':');
    auto c = static_cast<unsigned char>(bytes[i]);
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string SerialColon(X509* c) {
  const ASN1_INTEGER* s = X509_get0_serialNumber(c);
  BIGNUM* bn = ASN1_INTEGER_to_BN(s, nullptr);
  std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(bn);
  if (bytes.empty()) bytes.push_back('\0');
  return SerialColonFromBytes(bytes);
}

absl::StatusOr<std::string> ParseSerial(std::string_view s) {
  std::string hex;
  for (char c : s) {
    if (c == ':' || c == '-') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)))
      return absl::InvalidArgumentError(
          Cat("serial number \"", s, "\" is not hex bytes such as 1f:03:8a or 1f-03-8a"));
    hex.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  if (hex.empty() || hex.size() > 64)
    return absl::InvalidArgumentError(Cat("serial number \"", s, "\" has a bad length"));
  if (hex.size() % 2) hex.insert(hex.begin(), '0');
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    out.push_back(static_cast<char>(v(hex[i]) * 16 + v(hex[i + 1])));
  }
  size_t z = 0;
  while (z + 1 < out.size() && out[z] == '\0') ++z;
  return out.substr(z);
}

int64_t NotAfterUnix(X509* c) { return AsnTimeUnix(X509_get0_notAfter(c)); }
int64_t NotBeforeUnix(X509* c) { return AsnTimeUnix(X509_get0_notBefore(c)); }

std::string SubjectKeyId(X509* c) {
  const ASN1_OCTET_STRING* k = X509_get0_subject_key_id(c);
  if (!k) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(k)),
                     static_cast<size_t>(ASN1_STRING_length(k)));
}

bool IsCa(X509* c) { return X509_check_ca(c) > 0; }

bool IsSelfSigned(X509* c) { return X509_self_signed(c, 0) == 1; }

bool IssuedBy(X509* c, X509* issuer) {
  if (X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(issuer)) != 0) return false;
  EVP_PKEY* k = X509_get0_pubkey(issuer);
  bool ok = k && X509_verify(c, k) == 1;
  ERR_clear_error();
  return ok;
}

std::string NameOneLine(const X509_NAME* n) {
  Bio b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253);
  return BioString(b.get());
}

std::string CommonName(const X509_NAME* n) {
  int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
  if (i < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace coffer::crypto
