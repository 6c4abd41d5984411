// Certificates in and out of PEM and DER, and PEM bundles (certificates plus at most one private
// key, as config/ca and issuers/import take them). Parsers take untrusted bytes and refuse
// what they cannot read with a Status; they never assert on input. Parsed objects are owned
// handles; the caller's bytes are only read. Every function is thread-safe.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/handles.h"

namespace coffer::crypto {

absl::StatusOr<Cert> ParseCertPem(std::string_view pem);
absl::StatusOr<Cert> ParseCertDer(std::string_view der);
std::string CertPem(X509* c);
// PEM of DER bytes: "-----BEGIN <label>-----", base64 in 64-column lines, the END line (no
// newline after it, like CertPem).
std::string PemFromDer(std::string_view der, std::string_view label);
std::string CertDer(X509* c);
// Splits a PEM bundle into certificates and at most one private key. Other blocks are refused.
struct PemBundle {
  std::vector<Cert> certs;
  PKey key;
};
absl::StatusOr<PemBundle> ParsePemBundle(std::string_view pem);

}  // namespace coffer::crypto
