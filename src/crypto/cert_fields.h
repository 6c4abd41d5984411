// Reading a certificate's fields: its serial number (and the text forms Vault writes and
// accepts for serials), validity, key identifier, CA flag, issuer, and names as text. The
// certificate is borrowed for the call. Every function is thread-safe.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace coffer::crypto {

// Serial numbers as Vault writes them: lowercase hex bytes joined by ':' ("1f:03:...").
std::string SerialColon(X509* c);
std::string SerialColonFromBytes(std::string_view bytes);
// Accepts "1f:03", "1f-03" or "1f03"; returns the big-endian bytes.
absl::StatusOr<std::string> ParseSerial(std::string_view s);
int64_t NotAfterUnix(X509* c);
int64_t NotBeforeUnix(X509* c);
std::string SubjectKeyId(X509* c);  // raw bytes, "" when absent
bool IsCa(X509* c);
bool IsSelfSigned(X509* c);
// Whether `issuer`'s key made the signature on `c` (and the names chain).
bool IssuedBy(X509* c, X509* issuer);
std::string NameOneLine(const X509_NAME* n);  // RFC 2253 form, for messages
std::string CommonName(const X509_NAME* n);

}  // namespace coffer::crypto
