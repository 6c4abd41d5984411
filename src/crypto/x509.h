// X.509 over OpenSSL 3: RAII handles for keys, certificates, CSRs and CRLs; key generation;
// PEM/DER conversion; CSR parsing and signature checks; a certificate builder that emits
// RFC 5280 conformant extensions; CRL signing. Policy (which names, which TTL) lives in the PKI
// engine, not here. Every function is thread-safe; handles are plain owned values.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace coffer::crypto {

struct PKeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct X509CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
struct X509NameFree {
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
};
struct X509PubkeyFree {
  void operator()(X509_PUBKEY* p) const { X509_PUBKEY_free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, PKeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Csr = std::unique_ptr<X509_REQ, X509ReqFree>;
using Crl = std::unique_ptr<X509_CRL, X509CrlFree>;
using Name = std::unique_ptr<X509_NAME, X509NameFree>;
using Spki = std::unique_ptr<X509_PUBKEY, X509PubkeyFree>;

enum class KeyType { kRsa, kEc, kEd25519 };
struct KeySpec {
  KeyType type = KeyType::kRsa;
  int bits = 2048;  // RSA modulus bits; EC curve size (256, 384, 521); 0 for Ed25519
};
std::string_view KeyTypeName(KeyType t);  // "rsa", "ec", "ed25519"
// Vault's key_type/key_bits: bits 0 picks the default (rsa 2048, ec 256). "any" is not a spec.
absl::StatusOr<KeySpec> ParseKeySpec(std::string_view type, int64_t bits);
// The type and size of an existing key; InvalidArgument for keys Coffer does not accept
// (DSA, unsupported curves, RSA under 2048 bits).
absl::StatusOr<KeySpec> DescribeKey(EVP_PKEY* key);

absl::StatusOr<PKey> GenerateKey(const KeySpec& spec);
// PEM of the private key: "der"/"" = the type's traditional form (PKCS#1 "RSA PRIVATE KEY",
// SEC 1 "EC PRIVATE KEY"; Ed25519 has only PKCS#8), "pkcs8" = "PRIVATE KEY". Wiped on drop.
absl::StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key, std::string_view format);
absl::StatusOr<SecretBytes> PrivateKeyDer(EVP_PKEY* key, std::string_view format);
absl::StatusOr<PKey> ParsePrivateKeyPem(std::string_view pem);
// SubjectPublicKeyInfo DER: the identity of a key (same key <=> same bytes).
std::string PublicKeyDer(EVP_PKEY* key);
bool SameKey(EVP_PKEY* a, EVP_PKEY* b);

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

// A parsed, signature-checked certificate request.
struct CsrInfo {
  Name subject;
  Spki spki;  // the request's SubjectPublicKeyInfo, copied as it is (the key is not decoded)
  KeySpec key;
  std::string common_name;
  std::vector<std::string> dns_names, emails, ip_sans, uri_sans;
  bool has_other_names = false;
  bool requests_ca = false;  // an extension request for basicConstraints cA=TRUE
};
// InvalidArgument with the reason for: not PEM, not a CSR, a bad signature, a weak or
// unsupported key. CSRs with a P-256/384/521 key signed with ECDSA and SHA-2 (what agents,
// cert-manager and kubeadm send) are walked as DER and checked with the EC primitives; every
// other CSR goes through OpenSSL's general decoder. Both give the same result.
absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem);
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

struct RevokedSerial {
  std::string serial;  // big-endian bytes
  int64_t revocation_time = 0;
};
absl::StatusOr<Crl> SignCrl(X509* issuer, EVP_PKEY* issuer_key, int64_t crl_number,
                            int64_t this_update, int64_t next_update,
                            const std::vector<RevokedSerial>& revoked, int signature_bits = 0);
std::string CrlDer(X509_CRL* c);
std::string CrlPem(X509_CRL* c);

// The last OpenSSL error as text, for messages; clears the queue.
std::string OpenSslError();

}  // namespace coffer::crypto
