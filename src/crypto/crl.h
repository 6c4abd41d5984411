// Certificate revocation lists: signing a v2 CRL (CRL number, authority key identifier) over a
// list of revoked serials, and its DER and PEM encodings. Which serials and which times are
// the PKI engine's decision. The issuer and its key are borrowed for the call; the CRL is an
// owned handle. Every function is thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/handles.h"

namespace coffer::crypto {

struct RevokedSerial {
  std::string serial;  // big-endian bytes
  int64_t revocation_time = 0;
};
absl::StatusOr<Crl> SignCrl(X509* issuer, EVP_PKEY* issuer_key, int64_t crl_number,
                            int64_t this_update, int64_t next_update,
                            const std::vector<RevokedSerial>& revoked, int signature_bits = 0);
std::string CrlDer(X509_CRL* c);
std::string CrlPem(X509_CRL* c);

}  // namespace coffer::crypto
