#include "crypto/x509.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/ascii.h"
#include "crypto/der.h"
#include "crypto/ec_fast.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::crypto {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioFree>;

Bio MemBio(std::string_view s) {
  return Bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

std::string BioString(BIO* b) {
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  return std::string(p, static_cast<size_t>(n));
}

template <typename T, typename F>
std::string I2d(T* obj, F fn) {
  int n = fn(obj, nullptr);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  fn(obj, &p);
  return out;
}

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

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// A digest-sign context for `key`, PSS-padded when asked (RSA only).
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

// Subject in the conventional order C, ST, L, street, postalCode, O, OU, CN, serialNumber.
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

absl::Status AddExt(X509* x, int nid, void* value, bool critical) {
  if (X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    return absl::InternalError(Cat("adding extension ", OBJ_nid2sn(nid), ": ", OpenSslError()));
  return absl::OkStatus();
}

std::string KeyIdOfBits(const unsigned char* bits, int len) {
  unsigned char md[SHA_DIGEST_LENGTH];
  unsigned int mdlen = 0;
  EVP_Digest(bits, static_cast<size_t>(len), md, &mdlen, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(md), mdlen);
}

std::string KeyIdOf(EVP_PKEY* key) {
  // RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING.
  X509_PUBKEY* pk = nullptr;
  X509_PUBKEY_set(&pk, key);
  const unsigned char* bits = nullptr;
  int len = 0;
  X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, pk);
  unsigned char md[SHA_DIGEST_LENGTH];
  unsigned int mdlen = 0;
  EVP_Digest(bits, static_cast<size_t>(len), md, &mdlen, EVP_sha1(), nullptr);
  X509_PUBKEY_free(pk);
  return std::string(reinterpret_cast<char*>(md), mdlen);
}

void ExtractSans(const GENERAL_NAMES* names, std::vector<std::string>* dns,
                 std::vector<std::string>* emails, std::vector<std::string>* ips,
                 std::vector<std::string>* uris, bool* other) {
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    auto str = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (gn->type) {
      case GEN_DNS:
        dns->push_back(str(gn->d.dNSName));
        break;
      case GEN_EMAIL:
        emails->push_back(str(gn->d.rfc822Name));
        break;
      case GEN_URI:
        uris->push_back(str(gn->d.uniformResourceIdentifier));
        break;
      case GEN_IPADD: {
        char t[INET6_ADDRSTRLEN] = {};
        int len = gn->d.iPAddress->length;
        if ((len == 4 && inet_ntop(AF_INET, gn->d.iPAddress->data, t, sizeof(t))) ||
            (len == 16 && inet_ntop(AF_INET6, gn->d.iPAddress->data, t, sizeof(t))))
          ips->push_back(t);
        break;
      }
      case GEN_OTHERNAME:
        *other = true;
        break;
      default:
        break;
    }
  }
}

int64_t AsnTimeUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    e = ERR_get_error();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string_view KeyTypeName(KeyType t) {
  switch (t) {
    case KeyType::kRsa:
      return "rsa";
    case KeyType::kEc:
      return "ec";
    case KeyType::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

absl::StatusOr<KeySpec> ParseKeySpec(std::string_view type, int64_t bits) {
  if (type == "rsa" || type.empty()) {
    if (bits == 0) bits = 2048;
    if (bits != 2048 && bits != 3072 && bits != 4096 && bits != 8192)
      return absl::InvalidArgumentError(
          Cat("unsupported RSA key size ", bits, ": use 2048, 3072, 4096 or 8192"));
    return KeySpec{KeyType::kRsa, static_cast<int>(bits)};
  }
  if (type == "ec") {
    if (bits == 0) bits = 256;
    if (bits != 224 && bits != 256 && bits != 384 && bits != 521)
      return absl::InvalidArgumentError(
          Cat("unsupported EC key size ", bits, ": use 256 (P-256), 384 (P-384) or 521 (P-521)"));
    if (bits == 224)
      return absl::InvalidArgumentError("P-224 keys are too weak: use 256, 384 or 521");
    return KeySpec{KeyType::kEc, static_cast<int>(bits)};
  }
  if (type == "ed25519") return KeySpec{KeyType::kEd25519, 0};
  return absl::InvalidArgumentError(Cat("unknown key_type \"", type, "\": use rsa, ec or ed25519"));
}

absl::StatusOr<KeySpec> DescribeKey(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048)
        return absl::InvalidArgumentError(
            Cat("RSA key of ", bits, " bits is too weak: at least 2048 bits are required"));
      return KeySpec{KeyType::kRsa, bits};
    }
    case EVP_PKEY_EC: {
      char curve[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                         &len) != 1)
        return absl::InvalidArgumentError(
            "EC key without a named curve (explicit parameters) is not supported");
      std::string_view c(curve, len);
      if (c == "prime256v1" || c == "P-256") return KeySpec{KeyType::kEc, 256};
      if (c == "secp384r1" || c == "P-384") return KeySpec{KeyType::kEc, 384};
      if (c == "secp521r1" || c == "P-521") return KeySpec{KeyType::kEc, 521};
      return absl::InvalidArgumentError(
          Cat("unsupported elliptic curve \"", c, "\": use P-256, P-384 or P-521"));
    }
    case EVP_PKEY_ED25519:
      return KeySpec{KeyType::kEd25519, 0};
    default:
      return absl::InvalidArgumentError(Cat("unsupported key algorithm \"",
                                            OBJ_nid2sn(EVP_PKEY_get_base_id(key)),
                                            "\": use RSA, EC (P-256, P-384, P-521) or Ed25519"));
  }
}

absl::StatusOr<PKey> GenerateKey(const KeySpec& spec) {
  EVP_PKEY* k = nullptr;
  switch (spec.type) {
    case KeyType::kRsa:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(spec.bits));
      break;
    case KeyType::kEc:
      k = NewEcKey(spec.bits == 384   ? NID_secp384r1
                   : spec.bits == 521 ? NID_secp521r1
                                      : NID_X9_62_prime256v1);
      break;
    case KeyType::kEd25519:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (!k) return absl::InternalError(Cat("key generation failed: ", OpenSslError()));
  return PKey(k);
}

absl::StatusOr<SecretBytes> PrivateKeyPem(EVP_PKEY* key, std::string_view format) {
  Bio b(BIO_new(BIO_s_secmem()));
  if (!b) b.reset(BIO_new(BIO_s_mem()));
  int ok = 0;
  bool pkcs8 = format == "pkcs8" || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  if (pkcs8)
    ok = PEM_write_bio_PKCS8PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  else
    ok = PEM_write_bio_PrivateKey_traditional(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  if (ok != 1) return absl::InternalError(Cat("encoding private key: ", OpenSslError()));
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  SecretBytes out(std::string_view(p, static_cast<size_t>(n)));
  OPENSSL_cleanse(p, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<SecretBytes> PrivateKeyDer(EVP_PKEY* key, std::string_view format) {
  bool pkcs8 = format == "pkcs8" || EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
  unsigned char* buf = nullptr;
  int n = 0;
  if (pkcs8) {
    PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(key);
    if (p8) {
      n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
      PKCS8_PRIV_KEY_INFO_free(p8);
    }
  } else {
    n = i2d_PrivateKey(key, &buf);
  }
  if (n <= 0 || !buf) return absl::InternalError(Cat("encoding private key: ", OpenSslError()));
  SecretBytes out(std::string_view(reinterpret_cast<char*>(buf), static_cast<size_t>(n)));
  OPENSSL_clear_free(buf, static_cast<size_t>(n));
  return out;
}

absl::StatusOr<PKey> ParsePrivateKeyPem(std::string_view pem) {
  Bio b = MemBio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr);
  if (!k) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM private key (PKCS#1, SEC 1 or PKCS#8)");
  }
  return PKey(k);
}

std::string PublicKeyDer(EVP_PKEY* key) { return I2d(key, i2d_PUBKEY); }

bool SameKey(EVP_PKEY* a, EVP_PKEY* b) { return EVP_PKEY_eq(a, b) == 1; }

absl::StatusOr<Cert> ParseCertPem(std::string_view pem) {
  Bio b = MemBio(pem);
  X509* x = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr);
  if (!x) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return Cert(x);
}

absl::StatusOr<Cert> ParseCertDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) {
    ERR_clear_error();
    return absl::DataLossError("stored certificate is not valid DER");
  }
  return Cert(x);
}

std::string PemFromDer(std::string_view der, std::string_view label) {
  const std::string b64 = Base64Encode(der);
  std::string out;
  out.reserve(b64.size() + b64.size() / 64 + 2 * label.size() + 40);
  out.append("-----BEGIN ").append(label).append("-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) out.append(b64, i, 64).push_back('\n');
  out.append("-----END ").append(label).append("-----");
  return out;
}

std::string CertPem(X509* c) { return PemFromDer(CertDer(c), "CERTIFICATE"); }

std::string CertDer(X509* c) { return I2d(c, i2d_X509); }

absl::StatusOr<PemBundle> ParsePemBundle(std::string_view pem) {
  PemBundle out;
  Bio b = MemBio(pem);
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(b.get(), &name, &header, &data, &len) != 1) {
      ERR_clear_error();
      break;
    }
    std::string n(name);
    std::string der(reinterpret_cast<char*>(data), static_cast<size_t>(len));
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<size_t>(len));
    if (n == "CERTIFICATE") {
      auto c = ParseCertDer(der);
      if (!c.ok()) return absl::InvalidArgumentError("a CERTIFICATE block is not valid DER");
      out.certs.push_back(std::move(*c));
    } else if (n == "PRIVATE KEY" || n == "RSA PRIVATE KEY" || n == "EC PRIVATE KEY") {
      if (out.key) return absl::InvalidArgumentError("the bundle holds more than one private key");
      const auto* p = reinterpret_cast<const unsigned char*>(der.data());
      EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
      OPENSSL_cleanse(der.data(), der.size());
      if (!k) {
        ERR_clear_error();
        return absl::InvalidArgumentError(Cat("the ", n, " block is not a valid key"));
      }
      out.key.reset(k);
    } else if (n == "EC PARAMETERS") {
      continue;
    } else {
      return absl::InvalidArgumentError(Cat("unexpected PEM block \"", n, "\" in the bundle"));
    }
  }
  if (out.certs.empty() && !out.key)
    return absl::InvalidArgumentError("no PEM certificate or key found in the bundle");
  return out;
}

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

namespace {

// Copies an SPKI's algorithm and key bits into `out` field by field (no decoder round trip).
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

Spki CopySpki(const X509_PUBKEY* in) {
  Spki out(X509_PUBKEY_new());
  if (!out || !CopySpkiInto(in, out.get())) return nullptr;
  return out;
}

// SANs and the CA request from a CSR's requested extensions.
void ReadRequestedExtensions(const STACK_OF(X509_EXTENSION) * exts, CsrInfo* info) {
  int idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
  if (idx >= 0) {
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx)));
    if (names) {
      ExtractSans(names, &info->dns_names, &info->emails, &info->ip_sans, &info->uri_sans,
                  &info->has_other_names);
      GENERAL_NAMES_free(names);
    }
  }
  idx = X509v3_get_ext_by_NID(exts, NID_basic_constraints, -1);
  if (idx >= 0) {
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, idx)));
    info->requests_ca = bc && bc->ca;
    BASIC_CONSTRAINTS_free(bc);
  }
}

// The DER inside a PEM "CERTIFICATE REQUEST" block; nullopt for anything less plain (the
// general path then parses it, or explains what is wrong).
std::optional<std::string> CsrPemBody(std::string_view pem) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE REQUEST-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE REQUEST-----";
  size_t b = pem.find(kBegin);
  if (b == std::string_view::npos) return std::nullopt;
  b += kBegin.size();
  size_t e = pem.find(kEnd, b);
  if (e == std::string_view::npos) return std::nullopt;
  std::string b64;
  b64.reserve(e - b);
  for (char ch : pem.substr(b, e - b)) {
    if (ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t') continue;
    if (ch == ':') return std::nullopt;  // PEM headers
    b64.push_back(ch);
  }
  return Base64Decode(b64);
}

enum class FastCsr { kDone, kNotHandled };

// The common case on the signing path: a CSR with a P-256/384/521 key signed with ECDSA and
// SHA-2, walked as DER (RFC 2986) and checked with the EC primitives. Returns kNotHandled for
// anything else, which the general path then decides on.
absl::StatusOr<FastCsr> ParseEcCsr(std::string_view der, CsrInfo* info) {
  static constexpr std::string_view kEcPublicKey("\x2a\x86\x48\xce\x3d\x02\x01", 7);
  static constexpr std::string_view kEcdsaSha2("\x2a\x86\x48\xce\x3d\x04\x03", 7);
  static constexpr std::string_view kExtensionRequest("\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e", 9);
  constexpr auto kNo = FastCsr::kNotHandled;
  std::string_view in = der;
  auto outer = der::Expect(in, der::kSequence);
  if (!outer || !in.empty()) return kNo;
  std::string_view body = outer->contents;
  auto cri = der::Expect(body, der::kSequence);
  auto sig_alg = der::Expect(body, der::kSequence);
  auto sig = der::Expect(body, der::kBitString);
  if (!cri || !sig_alg || !sig || !body.empty()) return kNo;
  // signatureAlgorithm: ecdsa-with-SHA256/384/512, no parameters (RFC 5758 3.2).
  std::string_view alg = sig_alg->contents;
  auto alg_oid = der::Expect(alg, der::kOid);
  if (!alg_oid || !alg.empty() || alg_oid->contents.size() != 8 ||
      alg_oid->contents.substr(0, 7) != kEcdsaSha2)
    return kNo;
  const char h = alg_oid->contents[7];
  const int digest_bits = h == 2 ? 256 : h == 3 ? 384 : h == 4 ? 512 : 0;
  if (digest_bits == 0 || sig->contents.empty() || sig->contents[0] != 0) return kNo;
  // certificationRequestInfo: version 0, subject, subjectPKInfo, [0] attributes.
  std::string_view ri = cri->contents;
  auto version = der::Expect(ri, der::kInteger);
  auto subject = der::Expect(ri, der::kSequence);
  auto spki = der::Expect(ri, der::kSequence);
  auto attrs = der::Expect(ri, der::kContext0);
  if (!version || version->contents != std::string_view("\0", 1) || !subject || !spki || !attrs ||
      !ri.empty())
    return kNo;
  std::string_view k = spki->contents;
  auto key_alg = der::Expect(k, der::kSequence);
  auto key_bits = der::Expect(k, der::kBitString);
  if (!key_alg || !key_bits || !k.empty() || key_bits->contents.empty() ||
      key_bits->contents[0] != 0)
    return kNo;
  std::string_view ka = key_alg->contents;
  auto ka_oid = der::Expect(ka, der::kOid);
  auto curve_oid = der::Expect(ka, der::kOid);
  if (!ka_oid || ka_oid->contents != kEcPublicKey || !curve_oid || !ka.empty()) return kNo;
  const int curve = EcCurveFromOid(curve_oid->contents);
  if (curve == 0) return kNo;  // the general path names the unsupported curve
  const std::string_view point = key_bits->contents.substr(1);

  const int ok = EcdsaVerify(curve, point, Sha2(digest_bits, cri->whole), sig->contents.substr(1));
  if (ok < 0) return kNo;  // not a usable point: the general path says why
  if (ok == 0)
    return absl::InvalidArgumentError(
        "csr signature is invalid: the request was not signed by the key it contains");

  const auto* p = reinterpret_cast<const unsigned char*>(subject->whole.data());
  info->subject.reset(d2i_X509_NAME(nullptr, &p, static_cast<long>(subject->whole.size())));
  if (!info->subject ||
      p != reinterpret_cast<const unsigned char*>(subject->whole.data() + subject->whole.size())) {
    ERR_clear_error();
    return kNo;
  }
  // Attributes: only the extension request matters (challengePassword and the like are
  // ignored, as before). Anything unusual goes the general way.
  std::string_view a = attrs->contents;
  while (!a.empty()) {
    auto attr = der::Expect(a, der::kSequence);
    if (!attr) return kNo;
    std::string_view av = attr->contents;
    auto type = der::Expect(av, der::kOid);
    auto values = der::Expect(av, der::kSet);
    if (!type || !values || !av.empty()) return kNo;
    if (type->contents != kExtensionRequest) continue;
    std::string_view v = values->contents;
    auto exts_der = der::Expect(v, der::kSequence);
    if (!exts_der || !v.empty()) return kNo;
    const auto* q = reinterpret_cast<const unsigned char*>(exts_der->whole.data());
    STACK_OF(X509_EXTENSION)* exts =
        d2i_X509_EXTENSIONS(nullptr, &q, static_cast<long>(exts_der->whole.size()));
    if (!exts) {
      ERR_clear_error();
      return kNo;
    }
    ReadRequestedExtensions(exts, info);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  Spki out(X509_PUBKEY_new());
  auto* bits_copy = static_cast<unsigned char*>(OPENSSL_memdup(point.data(), point.size()));
  if (!out ||
      X509_PUBKEY_set0_param(out.get(), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                             OBJ_nid2obj(curve), bits_copy, static_cast<int>(point.size())) != 1) {
    ERR_clear_error();
    return kNo;
  }
  info->spki = std::move(out);
  info->key = KeySpec{KeyType::kEc, curve == NID_X9_62_prime256v1 ? 256
                                    : curve == NID_secp384r1      ? 384
                                                                  : 521};
  info->common_name = CommonName(info->subject.get());
  ERR_clear_error();
  return FastCsr::kDone;
}

}  // namespace

absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem) {
  if (auto der_bytes = CsrPemBody(pem)) {
    CsrInfo fast;
    ASSIGN_OR_RETURN(FastCsr r, ParseEcCsr(*der_bytes, &fast));
    if (r == FastCsr::kDone) return fast;
  }
  CsrInfo info;
  Bio b = MemBio(pem);
  Csr req(PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "csr is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  }
  X509_REQ* r = req.get();
  PKey pub(X509_REQ_get_pubkey(r));
  if (!pub) {
    ERR_clear_error();
    return absl::InvalidArgumentError("csr has a public key OpenSSL cannot read");
  }
  ASSIGN_OR_RETURN(info.key, DescribeKey(pub.get()));
  if (info.key.type == KeyType::kEc) {
    // OpenSSL 3.0 decodes the one-byte point at infinity and its ECDSA verify then accepts a
    // signature anyone can forge (r = x(e*G), s = 1): check the point before the signature.
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> check(
        EVP_PKEY_CTX_new_from_pkey(nullptr, pub.get(), nullptr), EVP_PKEY_CTX_free);
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          "csr public key is not a valid point on its curve (the point at infinity or off the "
          "curve)");
    }
  }
  if (X509_REQ_verify(r, pub.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "csr signature is invalid: the request was not signed by the key it contains");
  }
  info.subject.reset(X509_NAME_dup(X509_REQ_get_subject_name(r)));
  info.spki = CopySpki(X509_REQ_get_X509_PUBKEY(r));
  if (!info.subject || !info.spki) {
    ERR_clear_error();
    return absl::InternalError("copying the CSR's subject and key failed");
  }
  info.common_name = CommonName(info.subject.get());
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(r);
  if (exts) {
    ReadRequestedExtensions(exts, &info);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  ERR_clear_error();
  return info;
}

absl::StatusOr<std::string> MakeCsrPem(EVP_PKEY* key, const CsrRequest& q, int signature_bits,
                                       bool use_pss) {
  Csr r(X509_REQ_new());
  X509_REQ_set_version(r.get(), 0);
  ASSIGN_OR_RETURN(Name n, BuildName(q.common_name, q.organization, q.ou, q.country, q.locality,
                                     q.province, q.street_address, q.postal_code, q.serial_number));
  X509_REQ_set_subject_name(r.get(), n.get());
  X509_REQ_set_pubkey(r.get(), key);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
  auto add = [&](int type, const std::vector<std::string>& v) -> absl::Status {
    for (const auto& s : v) {
      ASSIGN_OR_RETURN(GENERAL_NAME * g, MakeGeneralName(type, s));
      sk_GENERAL_NAME_push(gens, g);
    }
    return absl::OkStatus();
  };
  absl::Status st = add(GEN_DNS, q.dns_names);
  if (st.ok()) st = add(GEN_IPADD, q.ip_sans);
  if (st.ok()) st = add(GEN_URI, q.uri_sans);
  if (st.ok()) st = add(GEN_EMAIL, q.emails);
  if (st.ok() && sk_GENERAL_NAME_num(gens) > 0)
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, gens));
  GENERAL_NAMES_free(gens);
  if (st.ok() && q.is_ca) {
    BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
    bc->ca = 1;
    sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_basic_constraints, 1, bc));
    BASIC_CONSTRAINTS_free(bc);
  }
  if (st.ok() && sk_X509_EXTENSION_num(exts) > 0) X509_REQ_add_extensions(r.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  RETURN_IF_ERROR(st);
  ASSIGN_OR_RETURN(auto ctx, SignCtx(key, signature_bits, use_pss));
  if (X509_REQ_sign_ctx(r.get(), ctx.get()) <= 0)
    return absl::InternalError(Cat("signing the CSR: ", OpenSslError()));
  Bio b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(b.get(), r.get());
  std::string s = BioString(b.get());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

absl::StatusOr<uint32_t> ParseKeyUsage(std::string_view name) {
  std::string n(name);
  for (char& ch : n) ch = absl::ascii_tolower(static_cast<unsigned char>(ch));
  if (n.rfind("keyusage", 0) == 0) n = n.substr(8);
  static const std::pair<const char*, uint32_t> kNames[] = {
      {"digitalsignature", kDigitalSignature},
      {"contentcommitment", kContentCommitment},
      {"keyencipherment", kKeyEncipherment},
      {"dataencipherment", kDataEncipherment},
      {"keyagreement", kKeyAgreement},
      {"certsign", kCertSign},
      {"crlsign", kCrlSign},
      {"encipheronly", kEncipherOnly},
      {"decipheronly", kDecipherOnly},
  };
  for (const auto& [k, v] : kNames)
    if (n == k) return v;
  return absl::InvalidArgumentError(
      Cat("unknown key_usage \"", name,
          "\": use DigitalSignature, ContentCommitment, KeyEncipherment, DataEncipherment, "
          "KeyAgreement, CertSign, CRLSign, EncipherOnly or DecipherOnly"));
}

absl::StatusOr<std::string> ParseExtKeyUsage(std::string_view name) {
  std::string n(name);
  for (char& ch : n) ch = absl::ascii_tolower(static_cast<unsigned char>(ch));
  if (n.rfind("extkeyusage", 0) == 0) n = n.substr(11);
  static const std::pair<const char*, const char*> kNames[] = {
      {"any", "2.5.29.37.0"},
      {"serverauth", "1.3.6.1.5.5.7.3.1"},
      {"clientauth", "1.3.6.1.5.5.7.3.2"},
      {"codesigning", "1.3.6.1.5.5.7.3.3"},
      {"emailprotection", "1.3.6.1.5.5.7.3.4"},
      {"ipsecendsystem", "1.3.6.1.5.5.7.3.5"},
      {"ipsectunnel", "1.3.6.1.5.5.7.3.6"},
      {"ipsecuser", "1.3.6.1.5.5.7.3.7"},
      {"timestamping", "1.3.6.1.5.5.7.3.8"},
      {"ocspsigning", "1.3.6.1.5.5.7.3.9"},
      {"microsoftservergatedcrypto", "1.3.6.1.4.1.311.10.3.3"},
      {"netscapeservergatedcrypto", "2.16.840.1.113730.4.1"},
      {"microsoftcommercialcodesigning", "1.3.6.1.4.1.311.2.1.22"},
      {"microsoftkernelcodesigning", "1.3.6.1.4.1.311.61.1.1"},
  };
  for (const auto& [k, v] : kNames)
    if (n == k) return std::string(v);
  return absl::InvalidArgumentError(
      Cat("unknown ext_key_usage \"", name,
          "\": use ServerAuth, ClientAuth, CodeSigning, EmailProtection, TimeStamping, "
          "OCSPSigning ... or give an OID in ext_key_usage_oids"));
}

absl::StatusOr<Cert> SignCertificate(const CertTemplate& t, EVP_PKEY* subject_key,
                                     X509* issuer_cert, EVP_PKEY* issuer_key) {
  X509_PUBKEY* spki = nullptr;
  if (X509_PUBKEY_set(&spki, subject_key) != 1)
    return absl::InternalError(Cat("encoding the public key: ", OpenSslError()));
  auto out = SignCertificate(t, spki, issuer_cert, issuer_key);
  X509_PUBKEY_free(spki);
  return out;
}

absl::StatusOr<Cert> SignCertificate(const CertTemplate& t, const X509_PUBKEY* subject_spki,
                                     X509* issuer_cert, EVP_PKEY* issuer_key) {
  Cert x(X509_new());
  X509* c = x.get();
  X509_set_version(c, 2);  // v3

  // Serial, a positive 20-byte INTEGER (RFC 5280 4.1.2.2): milliseconds since the epoch in 6
  // bytes, then 14 random bytes (112 bits; the CA/Browser Forum asks for 64). Leading with the
  // time makes stored certificates' keys (certs/<serial>) arrive in order, so storage appends
  // to the end of its B-tree instead of rewriting a random page for each certificate. The
  // first byte is 0x01 until the year 2527 and stays below 0x80 (positive) for millennia.
  unsigned char serial[20];
  const uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  for (int i = 0; i < 6; ++i) serial[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  if (RAND_bytes(serial + 6, sizeof(serial) - 6) != 1)
    return absl::InternalError("RAND_bytes failed");
  serial[0] &= 0x7f;
  if (serial[0] == 0) serial[0] = 0x01;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
  BN_free(bn);

  if (t.subject) {
    X509_set_subject_name(c, t.subject);
  } else {
    ASSIGN_OR_RETURN(
        Name n, BuildName(t.common_name, t.organization, t.ou, t.country, t.locality, t.province,
                          t.street_address, t.postal_code, t.serial_number));
    X509_set_subject_name(c, n.get());
  }
  X509_set_issuer_name(c,
                       issuer_cert ? X509_get_subject_name(issuer_cert) : X509_get_subject_name(c));
  if (t.not_after <= t.not_before)
    return absl::InvalidArgumentError("the certificate's notAfter is not after its notBefore");
  X509_time_adj_ex(X509_getm_notBefore(c), 0, 0, nullptr);
  ASN1_TIME_set(X509_getm_notBefore(c), static_cast<time_t>(t.not_before));
  ASN1_TIME_set(X509_getm_notAfter(c), static_cast<time_t>(t.not_after));
  // Copy the SubjectPublicKeyInfo field by field (no decoder/encoder round trip).
  const unsigned char* key_bits = nullptr;
  int key_len = 0;
  X509_ALGOR* alg = nullptr;
  if (X509_PUBKEY_get0_param(nullptr, &key_bits, &key_len, &alg, subject_spki) != 1)
    return absl::InvalidArgumentError("the public key is malformed");
  if (!CopySpkiInto(subject_spki, X509_get_X509_PUBKEY(c)))
    return absl::InternalError(Cat("setting public key: ", OpenSslError()));
  const ASN1_OBJECT* alg_oid = nullptr;
  X509_ALGOR_get0(&alg_oid, nullptr, nullptr, alg);
  const int key_nid = OBJ_obj2nid(alg_oid);

  // basicConstraints (critical for CAs; RFC 5280 4.2.1.9).
  {
    BASIC_CONSTRAINTS* bc = BASIC_CONSTRAINTS_new();
    bc->ca = t.is_ca ? 0xff : 0;
    if (t.is_ca && t.max_path_length >= 0) {
      bc->pathlen = ASN1_INTEGER_new();
      ASN1_INTEGER_set(bc->pathlen, t.max_path_length);
    }
    absl::Status st = AddExt(c, NID_basic_constraints, bc, true);
    BASIC_CONSTRAINTS_free(bc);
    RETURN_IF_ERROR(st);
  }

  // keyUsage (critical).
  {
    uint32_t ku =
        t.is_ca ? (kCertSign | kCrlSign | (t.key_usage & kDigitalSignature)) : t.key_usage;
    if (key_nid == NID_X9_62_id_ecPublicKey) ku &= ~(kKeyEncipherment | kDataEncipherment);
    if (key_nid == NID_rsaEncryption || key_nid == NID_rsassaPss)
      ku &= ~(kKeyAgreement | kEncipherOnly | kDecipherOnly);
    if (key_nid == NID_ED25519)
      ku &= (kDigitalSignature | kContentCommitment | kCertSign | kCrlSign);
    if (ku != 0) {
      ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
      for (int i = 0; i < 9; ++i)
        if (ku & (1u << i)) ASN1_BIT_STRING_set_bit(bits, i, 1);
      absl::Status st = AddExt(c, NID_key_usage, bits, true);
      ASN1_BIT_STRING_free(bits);
      RETURN_IF_ERROR(st);
    }
  }

  // extKeyUsage (leaves).
  if (!t.ext_key_usage.empty()) {
    EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
    for (const auto& oid : t.ext_key_usage) {
      ASN1_OBJECT* o = OBJ_txt2obj(oid.c_str(), 1);
      if (!o) {
        sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
        return absl::InvalidArgumentError(Cat("\"", oid, "\" is not a valid OID"));
      }
      sk_ASN1_OBJECT_push(eku, o);
    }
    absl::Status st = AddExt(c, NID_ext_key_usage, eku, false);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    RETURN_IF_ERROR(st);
  }

  // subjectKeyIdentifier; authorityKeyIdentifier with the issuer's SKI.
  std::string ski = KeyIdOfBits(key_bits, key_len);
  {
    ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, reinterpret_cast<const unsigned char*>(ski.data()),
                          static_cast<int>(ski.size()));
    absl::Status st = AddExt(c, NID_subject_key_identifier, os, false);
    ASN1_OCTET_STRING_free(os);
    RETURN_IF_ERROR(st);
  }
  {
    std::string aki = issuer_cert ? SubjectKeyId(issuer_cert) : ski;
    if (aki.empty()) aki = KeyIdOf(issuer_key);
    AUTHORITY_KEYID* ak = AUTHORITY_KEYID_new();
    ak->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(ak->keyid, reinterpret_cast<const unsigned char*>(aki.data()),
                          static_cast<int>(aki.size()));
    absl::Status st = AddExt(c, NID_authority_key_identifier, ak, false);
    AUTHORITY_KEYID_free(ak);
    RETURN_IF_ERROR(st);
  }

  // subjectAltName: critical when the subject is empty (RFC 5280 4.2.1.6).
  {
    GENERAL_NAMES* gens = sk_GENERAL_NAME_new_null();
    absl::Status st;
    auto add = [&](int type, const std::vector<std::string>& v) {
      for (const auto& s : v) {
        if (!st.ok()) return;
        auto g = MakeGeneralName(type, s);
        if (!g.ok()) {
          st = g.status();
          return;
        }
        sk_GENERAL_NAME_push(gens, *g);
      }
    };
    add(GEN_DNS, t.dns_names);
    add(GEN_EMAIL, t.emails);
    add(GEN_IPADD, t.ip_sans);
    add(GEN_URI, t.uri_sans);
    for (const auto& [oid, value] : t.other_sans) {
      if (!st.ok()) break;
      ASN1_OBJECT* o = OBJ_txt2obj(oid.c_str(), 1);
      if (!o) {
        st = absl::InvalidArgumentError(Cat("other_sans: \"", oid, "\" is not a valid OID"));
        break;
      }
      ASN1_TYPE* v = ASN1_TYPE_new();
      ASN1_UTF8STRING* s = ASN1_UTF8STRING_new();
      ASN1_STRING_set(s, value.data(), static_cast<int>(value.size()));
      ASN1_TYPE_set(v, V_ASN1_UTF8STRING, s);
      GENERAL_NAME* g = GENERAL_NAME_new();
      GENERAL_NAME_set0_othername(g, o, v);
      sk_GENERAL_NAME_push(gens, g);
    }
    if (st.ok() && sk_GENERAL_NAME_num(gens) > 0) {
      bool empty_subject = X509_NAME_entry_count(X509_get_subject_name(c)) == 0;
      st = AddExt(c, NID_subject_alt_name, gens, empty_subject);
    } else if (st.ok() && X509_NAME_entry_count(X509_get_subject_name(c)) == 0) {
      st = absl::InvalidArgumentError(
          "the certificate would have neither a subject nor a subject alternative name");
    }
    GENERAL_NAMES_free(gens);
    RETURN_IF_ERROR(st);
  }

  // nameConstraints (CAs with permitted_dns_domains; critical per RFC 5280 4.2.1.10).
  if (t.is_ca && !t.permitted_dns_domains.empty()) {
    NAME_CONSTRAINTS* nc = NAME_CONSTRAINTS_new();
    nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
    absl::Status st;
    for (const auto& d : t.permitted_dns_domains) {
      auto g = MakeGeneralName(GEN_DNS, d);
      if (!g.ok()) {
        st = g.status();
        break;
      }
      GENERAL_SUBTREE* s = GENERAL_SUBTREE_new();
      GENERAL_NAME_free(s->base);
      s->base = *g;
      sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, s);
    }
    if (st.ok()) st = AddExt(c, NID_name_constraints, nc, true);
    NAME_CONSTRAINTS_free(nc);
    RETURN_IF_ERROR(st);
  }

  // authorityInfoAccess and cRLDistributionPoints from config/urls.
  if (!t.issuing_certificates.empty() || !t.ocsp_servers.empty()) {
    AUTHORITY_INFO_ACCESS* aia = sk_ACCESS_DESCRIPTION_new_null();
    absl::Status st;
    auto add = [&](int nid, const std::vector<std::string>& urls) {
      for (const auto& u : urls) {
        auto g = MakeGeneralName(GEN_URI, u);
        if (!g.ok()) {
          st = g.status();
          return;
        }
        ACCESS_DESCRIPTION* ad = ACCESS_DESCRIPTION_new();
        ad->method = OBJ_nid2obj(nid);
        GENERAL_NAME_free(ad->location);
        ad->location = *g;
        sk_ACCESS_DESCRIPTION_push(aia, ad);
      }
    };
    add(NID_ad_OCSP, t.ocsp_servers);
    add(NID_ad_ca_issuers, t.issuing_certificates);
    if (st.ok()) st = AddExt(c, NID_info_access, aia, false);
    sk_ACCESS_DESCRIPTION_pop_free(aia, ACCESS_DESCRIPTION_free);
    RETURN_IF_ERROR(st);
  }
  if (!t.crl_distribution_points.empty()) {
    CRL_DIST_POINTS* cdp = sk_DIST_POINT_new_null();
    absl::Status st;
    for (const auto& u : t.crl_distribution_points) {
      auto g = MakeGeneralName(GEN_URI, u);
      if (!g.ok()) {
        st = g.status();
        break;
      }
      DIST_POINT* dp = DIST_POINT_new();
      dp->distpoint = DIST_POINT_NAME_new();
      dp->distpoint->type = 0;
      dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
      sk_GENERAL_NAME_push(dp->distpoint->name.fullname, *g);
      sk_DIST_POINT_push(cdp, dp);
    }
    if (st.ok()) st = AddExt(c, NID_crl_distribution_points, cdp, false);
    sk_DIST_POINT_pop_free(cdp, DIST_POINT_free);
    RETURN_IF_ERROR(st);
  }

  ASSIGN_OR_RETURN(auto ctx, SignCtx(issuer_key, t.signature_bits, t.use_pss));
  if (X509_sign_ctx(c, ctx.get()) <= 0)
    return absl::InternalError(Cat("signing the certificate: ", OpenSslError()));
  return x;
}

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
