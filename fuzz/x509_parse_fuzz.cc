// Fuzzes the parsers of untrusted X.509 input: CSRs (sign/:role, sign-verbatim,
// sign-intermediate), PEM bundles (config/ca, set-signed, issuers/import/bundle), certificates
// (revoke) and serial numbers (cert/:serial, revoke).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/x509.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto csr = coffer::crypto::ParseCsr(text); csr.ok()) {
    (void)coffer::crypto::CommonName(csr->subject.get());
  }
  // The same bytes as a CSR's DER, so mutations reach the DER walk of the ECDSA fast path
  // directly rather than through base64.
  if (auto csr = coffer::crypto::ParseCsr(coffer::crypto::PemFromDer(text, "CERTIFICATE REQUEST"));
      csr.ok()) {
    (void)coffer::crypto::CommonName(csr->subject.get());
  }
  if (auto bundle = coffer::crypto::ParsePemBundle(text); bundle.ok()) {
    for (auto& c : bundle->certs) {
      (void)coffer::crypto::SerialColon(c.get());
      (void)coffer::crypto::NotAfterUnix(c.get());
      (void)coffer::crypto::IsCa(c.get());
      (void)coffer::crypto::NameOneLine(X509_get_subject_name(c.get()));
    }
  }
  (void)coffer::crypto::ParseCertPem(text);
  (void)coffer::crypto::ParseCertDer(text);
  (void)coffer::crypto::ParseSerial(text.substr(0, 200));
  return 0;
}
