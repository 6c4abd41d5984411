// Certificate signing requests: parsing and checking untrusted CSRs (with a DER fast path for
// ECDSA requests), and building CSRs for our own keys. ParseCsr refuses bad input with
// InvalidArgument and never asserts on it; its result owns copies of the subject and key, so
// nothing refers back to the caller's bytes. Every function is thread-safe.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/handles.h"
#include "crypto/keys.h"

namespace coffer::crypto {

// A parsed, signature-checked certificate request.
struct CsrInfo {
  // The subject: as DER (from the walk of an ECDSA request, see ParseCsr) with `subject` left
  // empty until CsrSubject decodes it, or decoded already (the general path).
  std::string subject_der;
  Name subject;
  Spki spki;  // the request's SubjectPublicKeyInfo, copied as it is (the key is not decoded)
  KeySpec key;
  std::string common_name;
  std::vector<std::string> dns_names, emails, ip_sans, uri_sans;
  bool has_other_names = false;
  bool requests_ca = false;  // an extension request for basicConstraints cA=TRUE
};
// `pem` must hold exactly one "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") PEM block
// whose DER is exactly one request: text before the block is ignored (RFC 7468's explanatory
// text, as openssl req -text prints), but anything other than whitespace after its END line,
// another PEM block or bytes after the request's DER are refused.
// InvalidArgument with the reason for: not PEM, not exactly one CSR, a bad signature, a weak or
// unsupported key. CSRs with a P-256/384/521 key signed with ECDSA and SHA-2 (what agents,
// cert-manager and kubeadm send) are walked as DER and checked with the EC primitives; every
// other CSR goes through OpenSSL's general decoder. Both give the same result.
absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem);
// The request's subject as OpenSSL's X509_NAME, decoded on first use (signing under a role
// needs only `common_name`). Owned by `csr`.
absl::StatusOr<const X509_NAME*> CsrSubject(CsrInfo& csr);
// A CSR for `key` with the given subject and SANs (intermediate/generate, the agent).
struct CsrRequest {
  std::string common_name;
  std::vector<std::string> organization, ou, country, locality, province, street_address,
      postal_code;
  std::string serial_number;
  std::vector<std::string> dns_names, ip_sans, uri_sans, emails;
  bool is_ca = false;  // adds basicConstraints cA=TRUE as a request extension
};
absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrRequest& r, int signature_bits = 0,
                                       bool use_pss = false);

}  // namespace coffer::crypto
