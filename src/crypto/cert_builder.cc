#include "crypto/cert_builder.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "crypto/cert_fields.h"
#include "crypto/ec_fast.h"
#include "crypto/x509_internal.h"
#include "util/human_time.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::BuildName;
using x509_internal::CopySpkiInto;
using x509_internal::MakeGeneralName;
using x509_internal::SignCtx;

namespace {

absl::Status AddExt(X509* x, int nid, void* value, bool critical) {
  if (X509_add1_ext_i2d(x, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    return absl::InternalError(Cat("adding extension ", OBJ_nid2sn(nid), ": ", OpenSslError()));
  return absl::OkStatus();
}

std::string KeyIdOfBits(const unsigned char* bits, int len) {
  return Sha1(std::string_view(reinterpret_cast<const char*>(bits), static_cast<size_t>(len)));
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

// authorityKeyIdentifier = `key_id` (the issuer's subjectKeyIdentifier), or, when that is
// empty, the SHA-1 key id of `issuer_key`.
absl::Status AddAuthorityKeyId(X509* c, std::string key_id, EVP_PKEY* issuer_key) {
  if (key_id.empty()) key_id = KeyIdOf(issuer_key);
  AUTHORITY_KEYID* ak = AUTHORITY_KEYID_new();
  ak->keyid = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(ak->keyid, reinterpret_cast<const unsigned char*>(key_id.data()),
                        static_cast<int>(key_id.size()));
  absl::Status st = AddExt(c, NID_authority_key_identifier, ak, false);
  AUTHORITY_KEYID_free(ak);
  return st;
}

// Random bytes for serials, drawn from RAND_bytes a few hundred at a time per thread: OpenSSL's
// DRBG takes locks and a getpid() system call per call, a fiftieth of a signing request. A
// serial needs unpredictable bits, not secret ones; the buffer is still wiped as it is used and
// when its thread ends. A forked child would hold its parent's unused bytes, so every fork
// empties the buffers (Coffer forks only to exec hooks, but a serial must never repeat).
std::atomic<uint64_t> fork_generation{0};

struct SerialRandom {
  unsigned char bytes[14 * 32];
  size_t used = sizeof(bytes);
  uint64_t generation = 0;
  ~SerialRandom() { OPENSSL_cleanse(bytes, sizeof(bytes)); }

  bool Take(unsigned char* out, size_t n) {
    const uint64_t g = fork_generation.load(std::memory_order_relaxed);
    if (g != generation || used + n > sizeof(bytes)) {
      if (RAND_bytes(bytes, sizeof(bytes)) != 1) return false;
      used = 0;
      generation = g;
    }
    std::memcpy(out, bytes + used, n);
    OPENSSL_cleanse(bytes + used, n);
    used += n;
    return true;
  }
};

const bool fork_handler_installed = [] {
  return pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }) == 0;
}();

// The certificate's serial: 20 bytes, 48 bits of milliseconds then 112 random bits, positive.
absl::StatusOr<std::string> NewSerial() {
  thread_local SerialRandom random;
  unsigned char serial[20];
  const uint64_t ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  for (int i = 0; i < 6; ++i) serial[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  if (!fork_handler_installed || !random.Take(serial + 6, sizeof(serial) - 6))
    return absl::InternalError("RAND_bytes failed");
  serial[0] &= 0x7f;
  if (serial[0] == 0) serial[0] = 0x01;
  return std::string(reinterpret_cast<char*>(serial), sizeof(serial));
}

// ---- DER writing for SignLeafDer ----

void PutLength(std::string& out, size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<char>(n));
    return;
  }
  int bytes = 0;
  for (size_t v = n; v > 0; v >>= 8) ++bytes;
  out.push_back(static_cast<char>(0x80 | bytes));
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

std::string Tlv(uint8_t tag, std::string_view contents) {
  std::string out;
  out.reserve(contents.size() + 6);
  out.push_back(static_cast<char>(tag));
  PutLength(out, contents.size());
  out.append(contents);
  return out;
}

// A dotted OID's DER (with tag and length); nullopt when it is not a well-formed OID.
std::optional<std::string> OidDer(std::string_view dotted) {
  // As OBJ_txt2obj: the first arc is one digit 0-2 followed by a dot.
  if (dotted.size() < 3 || dotted[0] < '0' || dotted[0] > '2' || dotted[1] != '.')
    return std::nullopt;
  std::vector<uint64_t> arcs;
  uint64_t v = 0;
  bool digit = false;
  for (char c : dotted) {
    if (c == '.') {
      if (!digit) return std::nullopt;
      arcs.push_back(v);
      v = 0;
      digit = false;
    } else if (c >= '0' && c <= '9') {
      if (v > (uint64_t{1} << 56)) return std::nullopt;
      v = v * 10 + static_cast<uint64_t>(c - '0');
      digit = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  arcs.push_back(v);
  if (arcs.size() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40)) return std::nullopt;
  std::string body;
  auto put = [&body](uint64_t x) {
    char tmp[10];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>(x & 0x7f);
      x >>= 7;
    } while (x > 0);
    for (int i = n - 1; i >= 0; --i) body.push_back(static_cast<char>(tmp[i] | (i > 0 ? 0x80 : 0)));
  };
  put(arcs[0] * 40 + arcs[1]);
  for (size_t i = 2; i < arcs.size(); ++i) put(arcs[i]);
  return Tlv(0x06, body);
}

// OidDer of a dotted OID, remembered per thread: SignLeafDer names the same handful of OIDs in
// every certificate (its extensions, a role's extended key usages). At most 64 are kept, none
// longer than 64 characters (sign-verbatim takes OIDs from the request: a long one is encoded
// each time, never kept).
std::optional<std::string> CachedOidDer(std::string_view dotted) {
  if (dotted.size() > 64) return OidDer(dotted);
  thread_local absl::flat_hash_map<std::string, std::string> known;
  if (auto it = known.find(absl::string_view(dotted.data(), dotted.size())); it != known.end())
    return it->second;
  auto der = OidDer(dotted);
  if (!der) return std::nullopt;
  if (known.size() >= 64) known.clear();
  known.emplace(std::string(dotted), *der);
  return der;
}

std::string Extension(std::string_view oid_der, bool critical, std::string_view value) {
  std::string body(oid_der);
  if (critical) body.append("\x01\x01\xff", 3);
  body += Tlv(0x04, value);
  return Tlv(0x30, body);
}

// UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), as ASN1_TIME_set does.
std::optional<std::string> TimeDer(int64_t t) {
  // Without gmtime_r and snprintf, which were a hundredth of a signing request.
  const CivilTime c = CivilUtc(t);
  if (c.year < 0 || c.year > 9999) return std::nullopt;
  char buf[15];
  size_t n = 0;
  auto two = [&buf, &n](int64_t v) {
    buf[n++] = static_cast<char>('0' + v / 10);
    buf[n++] = static_cast<char>('0' + v % 10);
  };
  const bool utc = c.year >= 1950 && c.year < 2050;  // UTCTime, else GeneralizedTime
  if (!utc) two(c.year / 100);
  two(c.year % 100);
  two(c.month);
  two(c.day);
  two(c.hour);
  two(c.minute);
  two(c.second);
  buf[n++] = 'Z';
  return Tlv(utc ? 0x17 : 0x18, std::string_view(buf, n));
}

// A subject of one commonName and nothing else, as X509_NAME encodes it (a UTF8String, the type
// OpenSSL's default string mask gives every attribute but country and serialNumber); nullopt
// for any other subject, or a name outside printable ASCII or over 64 characters, which
// BuildName judges.
std::optional<std::string> CommonNameOnlyDer(const CertTemplate& t) {
  // The fields below are every subject field of CertTemplate (those BuildName takes). A field
  // added to the template changes its size: then add it here and to BuildName's call sites.
  static_assert(sizeof(CertTemplate) == 520,
                "CertTemplate changed: check CommonNameOnlyDer's list of subject fields");
  if (t.subject || t.common_name.empty() || t.common_name.size() > 64 || !t.organization.empty() ||
      !t.ou.empty() || !t.country.empty() || !t.locality.empty() || !t.province.empty() ||
      !t.street_address.empty() || !t.postal_code.empty() || !t.serial_number.empty())
    return std::nullopt;
  for (unsigned char c : t.common_name)
    if (c < 0x20 || c > 0x7e) return std::nullopt;
  static constexpr std::string_view kCommonName("\x06\x03\x55\x04\x03", 5);
  return Tlv(0x30, Tlv(0x31, Tlv(0x30, std::string(kCommonName) + Tlv(0x0c, t.common_name))));
}

// An IA5String general name ([1] email, [2] DNS, [6] URI); nullopt for non-ASCII (the slow
// path words the refusal).
std::optional<std::string> Ia5Name(uint8_t tag, std::string_view v) {
  for (unsigned char c : v)
    if (c >= 0x80) return std::nullopt;
  return Tlv(tag, v);
}

std::optional<std::string> IpName(const std::string& v) {
  unsigned char buf[16];
  if (v.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, v.c_str(), buf) != 1) return std::nullopt;
    return Tlv(0x87, std::string_view(reinterpret_cast<char*>(buf), 4));
  }
  if (inet_pton(AF_INET6, v.c_str(), buf) != 1) return std::nullopt;
  return Tlv(0x87, std::string_view(reinterpret_cast<char*>(buf), 16));
}

}  // namespace

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
  ASSIGN_OR_RETURN(const std::string serial, NewSerial());
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()),
                         static_cast<int>(serial.size()), nullptr);
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
  // ASN1_TIME_set writes a five-digit year past 9999 (not a valid GeneralizedTime): refused
  // here as TimeDer (the fast path's writer) refuses it.
  if (!TimeDer(t.not_before) || !TimeDer(t.not_after) ||
      ASN1_TIME_set(X509_getm_notBefore(c), static_cast<time_t>(t.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(c), static_cast<time_t>(t.not_after)) == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "the certificate's validity is outside what X.509 can encode (years 0000-9999)");
  }
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
        t.is_ca ? (kCertSign | kCrlSign | (t.key_usage & kDigitalSignature)) : t.key_usage & 0x1ff;
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
  RETURN_IF_ERROR(AddAuthorityKeyId(c, issuer_cert ? SubjectKeyId(issuer_cert) : ski, issuer_key));

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
  return Shareable(x.release());
}

std::optional<SignedDer> SignLeafDer(const CertTemplate& t, const X509_PUBKEY* subject_spki,
                                     X509* issuer_cert, EVP_PKEY* issuer_key) {
  // A declined template goes to SignCertificate, whose messages must not carry errors queued
  // here.
  struct ClearErrors {
    ~ClearErrors() { ERR_clear_error(); }
  } clear_errors;
  if (t.is_ca || issuer_cert == nullptr || !t.other_sans.empty() || t.use_pss ||
      t.not_after <= t.not_before || EVP_PKEY_get_base_id(issuer_key) != EVP_PKEY_EC)
    return std::nullopt;
  // The digest the slow path's signing context would use (x509_internal::SignCtx), so both
  // agree.
  const EVP_MD* md = x509_internal::DigestFor(issuer_key, t.signature_bits);
  const char* sig_oid = nullptr;
  int digest_bits = 0;
  switch (md ? EVP_MD_get_type(md) : 0) {
    case NID_sha256:
      sig_oid = "1.2.840.10045.4.3.2";
      digest_bits = 256;
      break;
    case NID_sha384:
      sig_oid = "1.2.840.10045.4.3.3";
      digest_bits = 384;
      break;
    case NID_sha512:
      sig_oid = "1.2.840.10045.4.3.4";
      digest_bits = 512;
      break;
    default:
      return std::nullopt;
  }
  const std::string sig_alg = Tlv(0x30, *CachedOidDer(sig_oid));

  // Subject and issuer names, the key as given, the validity.
  std::string subject;
  bool empty_subject = false;  // as the X509 path judges it: no attribute at all
  if (t.subject) {
    subject = x509_internal::I2d(const_cast<X509_NAME*>(t.subject), i2d_X509_NAME);
    empty_subject = X509_NAME_entry_count(t.subject) == 0;
  } else if (auto cn_only = CommonNameOnlyDer(t)) {
    subject = std::move(*cn_only);
  } else {
    auto n = BuildName(t.common_name, t.organization, t.ou, t.country, t.locality, t.province,
                       t.street_address, t.postal_code, t.serial_number);
    if (!n.ok()) return std::nullopt;
    subject = x509_internal::I2d(n->get(), i2d_X509_NAME);
    empty_subject = X509_NAME_entry_count(n->get()) == 0;
  }
  const std::string issuer = x509_internal::I2d(X509_get_subject_name(issuer_cert), i2d_X509_NAME);
  const std::string spki =
      x509_internal::I2d(const_cast<X509_PUBKEY*>(subject_spki), i2d_X509_PUBKEY);
  const unsigned char* key_bits = nullptr;
  int key_len = 0;
  X509_ALGOR* alg = nullptr;
  if (subject.empty() || issuer.empty() || spki.empty() ||
      X509_PUBKEY_get0_param(nullptr, &key_bits, &key_len, &alg, subject_spki) != 1)
    return std::nullopt;
  const ASN1_OBJECT* alg_oid = nullptr;
  X509_ALGOR_get0(&alg_oid, nullptr, nullptr, alg);
  const int key_nid = OBJ_obj2nid(alg_oid);
  auto not_before = TimeDer(t.not_before), not_after = TimeDer(t.not_after);
  if (!not_before || !not_after) return std::nullopt;

  // Extensions, in SignCertificate's order.
  std::string exts;
  exts += Extension(*CachedOidDer("2.5.29.19"), true, std::string_view("\x30\x00", 2));
  uint32_t ku = t.key_usage & 0x1ff;  // the nine bits RFC 5280 defines
  if (key_nid == NID_X9_62_id_ecPublicKey) ku &= ~(kKeyEncipherment | kDataEncipherment);
  if (key_nid == NID_rsaEncryption || key_nid == NID_rsassaPss)
    ku &= ~(kKeyAgreement | kEncipherOnly | kDecipherOnly);
  if (key_nid == NID_ED25519) ku &= (kDigitalSignature | kContentCommitment | kCertSign | kCrlSign);
  if (ku != 0) {
    int high = 0;
    for (int i = 0; i < 9; ++i)
      if (ku & (1u << i)) high = i;
    // BIT STRING: the count of unused bits in the last byte, then bit 0 as the first byte's MSB.
    unsigned char bits[3] = {static_cast<unsigned char>(7 - high % 8), 0, 0};
    for (int i = 0; i <= high; ++i)
      if (ku & (1u << i)) bits[1 + i / 8] |= static_cast<unsigned char>(0x80u >> (i % 8));
    const std::string value(reinterpret_cast<const char*>(bits), static_cast<size_t>(high / 8 + 2));
    exts += Extension(*CachedOidDer("2.5.29.15"), true, Tlv(0x03, value));
  }
  if (!t.ext_key_usage.empty()) {
    std::string oids;
    for (const auto& o : t.ext_key_usage) {
      auto d = CachedOidDer(o);
      if (!d) return std::nullopt;
      oids += *d;
    }
    exts += Extension(*CachedOidDer("2.5.29.37"), false, Tlv(0x30, oids));
  }
  const std::string ski = KeyIdOfBits(key_bits, key_len);
  exts += Extension(*CachedOidDer("2.5.29.14"), false, Tlv(0x04, ski));
  std::string aki = SubjectKeyId(issuer_cert);
  if (aki.empty()) aki = KeyIdOf(issuer_key);
  exts += Extension(*CachedOidDer("2.5.29.35"), false, Tlv(0x30, Tlv(0x80, aki)));
  // GeneralNames in SignCertificate's order: DNS [2], email [1], IP [7], URI [6].
  std::string names;
  for (const auto& [tag, list] :
       {std::pair<uint8_t, const std::vector<std::string>*>{0x82, &t.dns_names},
        {0x81, &t.emails},
        {0x87, &t.ip_sans},
        {0x86, &t.uri_sans}}) {
    for (const auto& v : *list) {
      auto g = tag == 0x87 ? IpName(v) : Ia5Name(tag, v);
      if (!g) return std::nullopt;
      names += *g;
    }
  }
  if (!names.empty())
    exts += Extension(*CachedOidDer("2.5.29.17"), empty_subject, Tlv(0x30, names));
  else if (empty_subject)
    return std::nullopt;  // refused by the slow path, with its message
  if (!t.issuing_certificates.empty() || !t.ocsp_servers.empty()) {
    std::string aia;
    auto add = [&aia](const char* method, const std::vector<std::string>& urls) {
      for (const auto& u : urls) {
        auto g = Ia5Name(0x86, u);
        if (!g) return false;
        aia += Tlv(0x30, *CachedOidDer(method) + *g);
      }
      return true;
    };
    if (!add("1.3.6.1.5.5.7.48.1", t.ocsp_servers) ||
        !add("1.3.6.1.5.5.7.48.2", t.issuing_certificates))
      return std::nullopt;
    exts += Extension(*CachedOidDer("1.3.6.1.5.5.7.1.1"), false, Tlv(0x30, aia));
  }
  if (!t.crl_distribution_points.empty()) {
    std::string points;
    for (const auto& u : t.crl_distribution_points) {
      auto g = Ia5Name(0x86, u);
      if (!g) return std::nullopt;
      points += Tlv(0x30, Tlv(0xa0, Tlv(0xa0, *g)));
    }
    exts += Extension(*CachedOidDer("2.5.29.31"), false, Tlv(0x30, points));
  }

  auto serial = NewSerial();
  if (!serial.ok()) return std::nullopt;
  std::string tbs("\xa0\x03\x02\x01\x02", 5);  // [0] version v3
  tbs += Tlv(0x02, *serial);
  tbs += sig_alg;
  tbs += issuer;
  tbs += Tlv(0x30, *not_before + *not_after);
  tbs += subject;
  tbs += spki;
  tbs += Tlv(0xa3, Tlv(0x30, exts));
  tbs = Tlv(0x30, tbs);

  // A BIT STRING: no unused bits, then the signature.
  std::string sig = EcdsaSign(issuer_key, Sha2(digest_bits, tbs));
  if (sig.empty()) return std::nullopt;
  sig.insert(sig.begin(), '\0');
  SignedDer out;
  out.der = Tlv(0x30, tbs + sig_alg + Tlv(0x03, sig));
  out.serial = std::move(*serial);
  out.not_after = t.not_after;
  return out;
}

absl::StatusOr<Cert> ResignSelfIssued(X509* cert, X509* issuer_cert, EVP_PKEY* issuer_key) {
  if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0)
    return absl::InvalidArgumentError("given certificate is not self-issued");
  if (X509_check_ca(cert) != 1)
    return absl::InvalidArgumentError("given certificate is not a CA certificate");
  Cert x(X509_dup(cert));
  if (!x) return absl::InternalError(Cat("copying the certificate: ", OpenSslError()));
  X509* c = x.get();
  // Everything stays (serial, validity, subject, key, extensions) except the issuer's name and
  // key identifier, which become the signing issuer's.
  if (X509_set_issuer_name(c, X509_get_subject_name(issuer_cert)) != 1)
    return absl::InternalError(Cat("setting the issuer: ", OpenSslError()));
  for (int i = X509_get_ext_by_NID(c, NID_authority_key_identifier, -1); i >= 0;
       i = X509_get_ext_by_NID(c, NID_authority_key_identifier, -1))
    X509_EXTENSION_free(X509_delete_ext(c, i));
  RETURN_IF_ERROR(AddAuthorityKeyId(c, SubjectKeyId(issuer_cert), issuer_key));
  ASSIGN_OR_RETURN(auto ctx, SignCtx(issuer_key, 0, false));
  if (X509_sign_ctx(c, ctx.get()) <= 0)
    return absl::InternalError(Cat("signing the certificate: ", OpenSslError()));
  return Shareable(x.release());
}

}  // namespace coffer::crypto
