// The certificate builder: signs a CertTemplate into an X.509 v3 certificate with RFC 5280
// conformant extensions, and parses Vault's key usage names for the template. It decides
// nothing about policy (which names, which TTL): the PKI engine fills the template. Keys and
// the issuer certificate are borrowed for the call; the result is an owned handle. Every
// function is thread-safe.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/handles.h"

namespace coffer::crypto {

// Key usage names as Vault spells them (without the "KeyUsage" prefix; case-insensitive).
enum KeyUsageBit : uint32_t {
  kDigitalSignature = 1 << 0,
  kContentCommitment = 1 << 1,
  kKeyEncipherment = 1 << 2,
  kDataEncipherment = 1 << 3,
  kKeyAgreement = 1 << 4,
  kCertSign = 1 << 5,
  kCrlSign = 1 << 6,
  kEncipherOnly = 1 << 7,
  kDecipherOnly = 1 << 8,
};
absl::StatusOr<uint32_t> ParseKeyUsage(std::string_view name);
// Vault's ext_key_usage names ("ServerAuth", "ClientAuth", ...); returns the OID text.
absl::StatusOr<std::string> ParseExtKeyUsage(std::string_view name);

struct CertTemplate {
  // Subject: either `subject` (copied verbatim) or the fields.
  const X509_NAME* subject = nullptr;
  std::string common_name;
  std::vector<std::string> organization, ou, country, locality, province, street_address,
      postal_code;
  std::string serial_number;  // the subject's serialNumber attribute

  std::vector<std::string> dns_names, ip_sans, uri_sans, emails;
  std::vector<std::pair<std::string, std::string>> other_sans;  // (oid, UTF-8 value)

  bool is_ca = false;
  int max_path_length = -1;  // CA only; -1: no limit
  std::vector<std::string> permitted_dns_domains;
  uint32_t key_usage = 0;                  // leaves; CAs always get CertSign|CRLSign
  std::vector<std::string> ext_key_usage;  // OIDs
  int64_t not_before = 0, not_after = 0;   // unix seconds

  std::vector<std::string> issuing_certificates, crl_distribution_points, ocsp_servers;
  int signature_bits = 0;  // 0: by the issuer key (SHA-256 for RSA, curve-sized for EC)
  bool use_pss = false;
};
// Signs `t` for `subject_key` with `issuer_key`. issuer_cert == nullptr: self-signed.
// The serial is 20 bytes: 48 bits of milliseconds, then 112 random bits. Key usages a key type
// cannot have are dropped (RFC 8410, RFC 5480): KeyEncipherment for EC, KeyAgreement for RSA, both
// for Ed25519.
absl::StatusOr<Cert> SignCertificate(const CertTemplate& t, EVP_PKEY* subject_key,
                                     X509* issuer_cert, EVP_PKEY* issuer_key);
// The same for a subject key given as its SubjectPublicKeyInfo (a CSR's, say): the bytes are
// copied as they are, which avoids OpenSSL 3.0's slow key re-encoding on the signing path.
absl::StatusOr<Cert> SignCertificate(const CertTemplate& t, const X509_PUBKEY* subject_spki,
                                     X509* issuer_cert, EVP_PKEY* issuer_key);

// A leaf certificate straight as DER, without OpenSSL's X509 object, whose template encoder and
// decoder cost more than the signature on the signing path (and a d2i_X509 of the result would
// cost more still: it decodes the key through the provider decoders). The certificate is what
// SignCertificate makes for the same template and serial, field for field and byte for byte
// (cert_builder_test.cc compares the two). nullopt when the template is outside this path
// (a CA, self-signed, an issuer key that is not EC, other_sans, a name or OID OpenSSL must
// judge, any error): the caller then calls SignCertificate, which decides with its own messages.
struct SignedDer {
  std::string der;
  std::string serial;  // the serial's 20 bytes
  int64_t not_after = 0;
};
std::optional<SignedDer> SignLeafDer(const CertTemplate& t, const X509_PUBKEY* subject_spki,
                                     X509* issuer_cert, EVP_PKEY* issuer_key);

// Vault's sign-self-issued: a copy of the self-issued CA certificate `cert` (subject == issuer)
// signed by `issuer_cert`'s key, with its issuer name and authority key identifier; everything
// else, extensions included, is kept. 400 when `cert` is not self-issued or not a CA.
absl::StatusOr<Cert> ResignSelfIssued(X509* cert, X509* issuer_cert, EVP_PKEY* issuer_key);

}  // namespace coffer::crypto
