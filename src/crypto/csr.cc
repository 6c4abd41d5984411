#include "crypto/csr.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <optional>

#include "crypto/cert_fields.h"
#include "crypto/der.h"
#include "crypto/ec_fast.h"
#include "crypto/x509_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::Bio;
using x509_internal::BioString;
using x509_internal::BuildName;
using x509_internal::CopySpkiInto;
using x509_internal::MakeGeneralName;
using x509_internal::SignCtx;

namespace {

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

bool IsPemSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The line of `text` that starts at `at`, without its line break or trailing blanks, and the
// offset just past the line break (text.size() on the last line).
std::string_view LineAt(std::string_view text, size_t at, size_t* next) {
  size_t eol = text.find('\n', at);
  if (eol == std::string_view::npos) eol = text.size();
  *next = eol == text.size() ? eol : eol + 1;
  std::string_view line = text.substr(at, eol - at);
  while (!line.empty() && IsPemSpace(line.back())) line.remove_suffix(1);
  return line;
}

// Where the first line of `text` at or after `from` that starts with `prefix` begins; npos if
// none does (PEM boundaries start a line, as OpenSSL's reader requires).
size_t FindLineStart(std::string_view text, std::string_view prefix, size_t from) {
  for (size_t at = text.find(prefix, from); at != std::string_view::npos;
       at = text.find(prefix, at + 1)) {
    if (at == 0 || text[at - 1] == '\n' || text[at - 1] == '\r') return at;
  }
  return std::string_view::npos;
}

// A user-supplied label, cut short for an error message.
std::string Shown(std::string_view s) {
  return s.size() <= 64 ? std::string(s) : Cat(s.substr(0, 64), "...");
}

// The DER inside the one PEM "CERTIFICATE REQUEST" (or "NEW CERTIFICATE REQUEST") block of
// `pem`, strictly: text before the block is explanatory and ignored (RFC 7468 section 5.2;
// openssl req -text prints the decoded request before it), but after the END line only
// whitespace may follow, and a block of any other kind, before or after, is refused. (OpenSSL's
// PEM_read_bio_X509_REQ skips other blocks and stops after the first request, so two requests,
// or a request with anything after it, used to be accepted and the first one signed.)
absl::StatusOr<std::string> CsrPemBody(std::string_view pem) {
  static constexpr std::string_view kBegin = "-----BEGIN ";
  static constexpr std::string_view kEnd = "-----END ";
  static constexpr std::string_view kDashes = "-----";
  const size_t begin = FindLineStart(pem, kBegin, 0);
  if (begin == std::string_view::npos)
    return absl::InvalidArgumentError(
        "csr is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  size_t body_start = 0;
  std::string_view begin_line = LineAt(pem, begin, &body_start);
  std::string_view label = begin_line.substr(kBegin.size());
  if (!label.ends_with(kDashes))
    return absl::InvalidArgumentError(Cat("csr has a malformed PEM BEGIN line \"",
                                          Shown(begin_line),
                                          "\": expected -----BEGIN CERTIFICATE REQUEST-----"));
  label.remove_suffix(kDashes.size());
  if (label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST")
    return absl::InvalidArgumentError(
        Cat("csr holds a PEM block \"", Shown(label),
            "\" where a CERTIFICATE REQUEST was expected: send exactly one CERTIFICATE REQUEST "
            "block, nothing else"));
  const size_t end = FindLineStart(pem, kEnd, body_start);
  if (end == std::string_view::npos)
    return absl::InvalidArgumentError(
        Cat("csr PEM has no END line: expected -----END ", label, "----- after the base64"));
  size_t rest_start = 0;
  if (LineAt(pem, end, &rest_start) != Cat(kEnd, label, kDashes))
    return absl::InvalidArgumentError(Cat(
        "csr PEM's END line does not match its BEGIN line: expected -----END ", label, "-----"));
  const std::string_view rest = pem.substr(rest_start);
  if (!std::all_of(rest.begin(), rest.end(), IsPemSpace)) {
    if (FindLineStart(rest, kBegin, 0) != std::string_view::npos)
      return absl::InvalidArgumentError(
          "the CSR PEM is followed by a second PEM block: send exactly one CERTIFICATE REQUEST "
          "block");
    return absl::InvalidArgumentError(
        "the CSR PEM is followed by other data: send exactly one CERTIFICATE REQUEST block, with "
        "nothing but whitespace after its END line");
  }
  const std::string_view body = pem.substr(body_start, end - body_start);
  if (FindLineStart(body, kBegin, 0) != std::string_view::npos)
    return absl::InvalidArgumentError(
        "csr PEM has a second BEGIN line before the first block's END line: send exactly one "
        "CERTIFICATE REQUEST block");
  std::string b64;
  b64.reserve(body.size());
  for (char ch : body) {
    if (IsPemSpace(ch)) continue;
    if (ch == ':')
      return absl::InvalidArgumentError(
          "csr PEM block has headers (an encrypted PEM?): send a plain CERTIFICATE REQUEST block");
    b64.push_back(ch);
  }
  auto der = Base64Decode(b64);
  if (!der)
    return absl::InvalidArgumentError(
        "csr PEM block is not valid base64 between its BEGIN and END lines");
  return std::move(*der);
}

// Refusal of a request whose DER does not end where its outer SEQUENCE does.
absl::Status TrailingDer(size_t extra) {
  return absl::InvalidArgumentError(
      Cat("the certificate request inside the CSR PEM is followed by ", extra,
          extra == 1 ? " more byte" : " more bytes",
          ": send exactly one DER-encoded request in the CERTIFICATE REQUEST block"));
}

// Whether `s` is well-formed UTF-8 (RFC 3629: shortest forms, no surrogates, at most U+10FFFF).
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t v = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      v = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      v = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      v = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      v = (v << 6) | (d & 0x3f);
    }
    static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
    if (v < kMin[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// Whether an OID's contents are what c2i_ASN1_OBJECT accepts: not empty, the last byte ends a
// sub-identifier, and no sub-identifier starts with a 0x80 byte (a non-minimal encoding).
bool WellFormedOid(std::string_view oid) {
  if (oid.empty() || (static_cast<unsigned char>(oid.back()) & 0x80) != 0) return false;
  bool at_start = true;
  for (char ch : oid) {
    const auto b = static_cast<unsigned char>(ch);
    if (at_start && b == 0x80) return false;
    at_start = (b & 0x80) == 0;
  }
  return true;
}

// OpenSSL's X509_NAME_MAX: larger names are refused by its decoder.
constexpr size_t kMaxNameBytes = size_t{1} << 20;

// The first commonName of a Name (RFC 5280 4.1.2.4; `name` is the contents of its SEQUENCE),
// read without OpenSSL's decoder, for names made only of what certificate requests carry in
// practice: non-empty RDN SETs of {OID, value} whose values are UTF8Strings of valid UTF-8 or
// PrintableStrings/IA5Strings of ASCII. Such a name is one OpenSSL decodes as well, and its
// first CN is the one X509_NAME_get_index_by_NID finds. "" when there is no CN; nullopt for any
// other name, which the general path then decodes and judges.
std::optional<std::string> PlainNameCommonName(std::string_view name) {
  if (name.size() > kMaxNameBytes) return std::nullopt;  // X509_NAME_MAX: OpenSSL refuses it
  static constexpr std::string_view kCommonName("\x55\x04\x03", 3);
  constexpr uint8_t kUtf8String = 0x0c, kPrintableString = 0x13, kIa5String = 0x16;
  std::optional<std::string> cn;
  while (!name.empty()) {
    auto rdn = der::Expect(name, der::kSet);
    if (!rdn || rdn->contents.empty()) return std::nullopt;
    std::string_view atvs = rdn->contents;
    while (!atvs.empty()) {
      auto atv = der::Expect(atvs, der::kSequence);
      if (!atv) return std::nullopt;
      std::string_view a = atv->contents;
      auto type = der::Expect(a, der::kOid);
      auto value = der::Next(a);
      if (!type || !WellFormedOid(type->contents) || !value || !a.empty()) return std::nullopt;
      switch (value->tag) {
        case kUtf8String:
          if (!ValidUtf8(value->contents)) return std::nullopt;
          break;
        case kPrintableString:
        case kIa5String:
          for (char ch : value->contents)
            if (static_cast<unsigned char>(ch) >= 0x80) return std::nullopt;
          break;
        default:
          return std::nullopt;
      }
      if (!cn && type->contents == kCommonName) cn = std::string(value->contents);
    }
  }
  return cn ? std::move(*cn) : std::string();
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
  if (!outer) return kNo;
  if (!in.empty()) return TrailingDer(in.size());
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

  // Signing needs only the subject's common name: it is read here, and the X509_NAME decoded
  // only when asked for (CsrSubject: sign-verbatim, sign-intermediate).
  auto cn = PlainNameCommonName(subject->contents);
  if (!cn) return kNo;
  info->subject_der = std::string(subject->whole);
  info->common_name = std::move(*cn);
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
  ERR_clear_error();
  return FastCsr::kDone;
}

}  // namespace

absl::StatusOr<CsrInfo> ParseCsr(std::string_view pem) {
  ASSIGN_OR_RETURN(const std::string der_bytes, CsrPemBody(pem));
  {
    CsrInfo fast;
    ASSIGN_OR_RETURN(FastCsr r, ParseEcCsr(der_bytes, &fast));
    if (r == FastCsr::kDone) return fast;
  }
  CsrInfo info;
  const auto* p = reinterpret_cast<const unsigned char*>(der_bytes.data());
  const auto* const der_end = p + der_bytes.size();
  Csr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der_bytes.size())));
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "csr PEM block does not hold a certificate request (PKCS #10 DER)");
  }
  // d2i reads a prefix: the request must be all there is.
  if (p != der_end) return TrailingDer(static_cast<size_t>(der_end - p));
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

absl::StatusOr<const X509_NAME*> CsrSubject(CsrInfo& csr) {
  if (!csr.subject) {
    const auto* p = reinterpret_cast<const unsigned char*>(csr.subject_der.data());
    csr.subject.reset(d2i_X509_NAME(nullptr, &p, static_cast<long>(csr.subject_der.size())));
    if (!csr.subject) {
      ERR_clear_error();
      return absl::InvalidArgumentError("csr subject is not a Name OpenSSL can decode");
    }
  }
  return csr.subject.get();
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

}  // namespace coffer::crypto
