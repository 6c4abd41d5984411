// ParseCsr's two ways (the DER walk + EC primitives for ECDSA CSRs, OpenSSL's decoder for the
// rest) must agree with OpenSSL's own reading and refuse the same bad requests.
#include "crypto/csr.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/sha.h>

#include "crypto/cert_fields.h"
#include "crypto/keys.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::crypto {
namespace {

std::string PemOf(std::string_view der) {
  std::string b64 = Base64Encode(der), pem = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) pem += b64.substr(i, 64) + "\n";
  return pem + "-----END CERTIFICATE REQUEST-----\n";
}

std::string DerOf(const std::string& pem) {
  std::string body;
  size_t b = pem.find('\n') + 1, e = pem.find("-----END");
  for (char c : pem.substr(b, e - b))
    if (c != '\n') body += c;
  return *Base64Decode(body);
}

template <typename T, typename F>
std::string I2d(T* obj, F fn) {
  unsigned char* p = nullptr;
  int n = fn(obj, &p);
  std::string out(reinterpret_cast<char*>(p), static_cast<size_t>(n));
  OPENSSL_free(p);
  return out;
}

std::string Tlv(uint8_t tag, std::string_view body) {
  std::string out(1, static_cast<char>(tag));
  if (body.size() < 128) {
    out += static_cast<char>(body.size());
  } else if (body.size() < 256) {
    out += "\x81";
    out += static_cast<char>(body.size());
  } else {
    out += "\x82";
    out += static_cast<char>(body.size() >> 8);
    out += static_cast<char>(body.size() & 0xff);
  }
  return out + std::string(body);
}

struct Case {
  KeySpec key;
  int signature_bits;
};

TEST(Csr, EcRequestsMatchOpenSslsReading) {
  for (const Case& c : {Case{{KeyType::kEc, 256}, 256}, Case{{KeyType::kEc, 384}, 384},
                        Case{{KeyType::kEc, 521}, 512}, Case{{KeyType::kEc, 256}, 512},
                        Case{{KeyType::kRsa, 2048}, 256}, Case{{KeyType::kEd25519, 0}, 0}}) {
    SCOPED_TRACE(std::string(KeyTypeName(c.key.type)) + std::to_string(c.key.bits));
    auto key = GenerateKey(c.key);
    ASSERT_TRUE(key.ok());
    CsrRequest q;
    q.common_name = "node1.cluster.local";
    q.organization = {"system:nodes"};
    q.dns_names = {"node1.cluster.local", "node1"};
    q.ip_sans = {"10.0.0.1", "fd00::1"};
    q.uri_sans = {"spiffe://cluster.local/ns/a/sa/b"};
    q.emails = {"ops@example.com"};
    q.is_ca = c.key.bits == 384;
    auto pem = MakeCsrPem(key->get(), q, c.signature_bits);
    ASSERT_TRUE(pem.ok()) << pem.status();
    auto info = ParseCsr(*pem);
    ASSERT_TRUE(info.ok()) << info.status();

    std::string der = DerOf(*pem);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    Csr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(req);
    auto subject = CsrSubject(*info);
    ASSERT_TRUE(subject.ok()) << subject.status();
    EXPECT_EQ(I2d(const_cast<X509_NAME*>(*subject), i2d_X509_NAME),
              I2d(X509_REQ_get_subject_name(req.get()), i2d_X509_NAME));
    EXPECT_EQ(I2d(info->spki.get(), i2d_X509_PUBKEY),
              I2d(X509_REQ_get_X509_PUBKEY(req.get()), i2d_X509_PUBKEY));
    EXPECT_EQ(info->key.type, c.key.type);
    EXPECT_EQ(info->key.bits, c.key.type == KeyType::kRsa ? 2048 : c.key.bits);
    EXPECT_EQ(info->common_name, "node1.cluster.local");
    EXPECT_EQ(info->dns_names, q.dns_names);
    EXPECT_EQ(info->ip_sans, std::vector<std::string>({"10.0.0.1", "fd00::1"}));
    EXPECT_EQ(info->uri_sans, q.uri_sans);
    EXPECT_EQ(info->emails, q.emails);
    EXPECT_EQ(info->requests_ca, q.is_ca);
    EXPECT_FALSE(info->has_other_names);

    // One bit changed anywhere in the signed part or in the signature: refused.
    for (size_t at : {size_t{40}, der.size() - 3}) {
      std::string bad = der;
      bad[at] = static_cast<char>(bad[at] ^ 0x01);
      auto r = ParseCsr(PemOf(bad));
      ASSERT_FALSE(r.ok()) << "byte " << at;
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(Csr, CompressedPointsAndPemTextBefore) {
  // A provider-held key: only those take the point-format parameter.
  auto key = std::optional<PKey>(PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")));
  ASSERT_TRUE(*key);
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(key->get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           "compressed"),
            1);
  CsrRequest q;
  q.common_name = "c.example.com";
  auto pem = MakeCsrPem(key->get(), q);
  ASSERT_TRUE(pem.ok());
  // Explanatory text before the block is ignored (RFC 7468; openssl req -text prints it), as is
  // whitespace after the END line; other text after it is refused.
  auto info = ParseCsr("Subject: c.example.com\r\n" + *pem + "\r\n \n");
  ASSERT_TRUE(info.ok()) << info.status();
  auto after = ParseCsr("Subject: c.example.com\r\n" + *pem + "\r\ntrailing words");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(after.status().message().find("followed by other data"), std::string::npos)
      << after.status();
  const unsigned char* bits = nullptr;
  int len = 0;
  X509_PUBKEY_get0_param(nullptr, &bits, &len, nullptr, info->spki.get());
  EXPECT_EQ(len, 33);
  EXPECT_TRUE(bits[0] == 0x02 || bits[0] == 0x03);
}

std::string Message(const absl::StatusOr<CsrInfo>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

// Bytes after the request's outer SEQUENCE, inside a well-formed PEM block, are refused by both
// ways: the DER walk (ECDSA) and OpenSSL's decoder (RSA, Ed25519), where d2i reads a prefix.
TEST(Csr, RefusesBytesAfterTheRequestsDer) {
  for (KeySpec spec :
       {KeySpec{KeyType::kEc, 256}, KeySpec{KeyType::kRsa, 2048}, KeySpec{KeyType::kEd25519, 0}}) {
    SCOPED_TRACE(KeyTypeName(spec.type));
    auto key = GenerateKey(spec);
    ASSERT_TRUE(key.ok());
    CsrRequest q;
    q.common_name = "t.example.com";
    q.dns_names = {"t.example.com"};
    auto pem = MakeCsrPem(key->get(), q);
    ASSERT_TRUE(pem.ok()) << pem.status();
    const std::string der = DerOf(*pem);
    ASSERT_TRUE(ParseCsr(PemOf(der)).ok());
    for (char extra : {'\0', '\x30'}) {
      EXPECT_NE(Message(ParseCsr(PemOf(der + extra))).find("followed by 1 more byte:"),
                std::string::npos);
    }
    // Two requests in one block: the first used to be signed.
    EXPECT_NE(
        Message(ParseCsr(PemOf(der + der))).find(Cat("followed by ", der.size(), " more bytes")),
        std::string::npos);
  }
}

// Exactly one CERTIFICATE REQUEST block: text before it is fine, anything after its END line
// (another request, any other block, words) is refused, as is a block of another kind.
TEST(Csr, ExactlyOnePemBlock) {
  auto key = GenerateKey({KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  CsrRequest q;
  q.common_name = "one.example.com";
  auto one = MakeCsrPem(key->get(), q);
  q.common_name = "two.example.com";
  auto two = MakeCsrPem(key->get(), q);
  ASSERT_TRUE(one.ok() && two.ok());

  auto before = ParseCsr("Certificate Request:\n    Data:\n        Version: 1 (0x0)\n" + *one);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->common_name, "one.example.com");
  ASSERT_TRUE(ParseCsr(*one + "\n\r\n\t \n").ok());

  EXPECT_NE(Message(ParseCsr(*one + "\n" + *two)).find("followed by a second PEM block"),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr(*one + *two)).find("END line does not match"), std::string::npos);
  EXPECT_NE(Message(ParseCsr(*one + "\nx")).find("followed by other data"), std::string::npos);
  EXPECT_NE(Message(ParseCsr(*one + std::string("\n\0", 2))).find("followed by other data"),
            std::string::npos);

  // The old label is still read; another kind of block is named, before or after the request.
  std::string old_label = *one;
  for (std::string_view word : {"BEGIN", "END"}) {
    size_t at = old_label.find(Cat(word, " CERTIFICATE REQUEST"));
    old_label.insert(at + word.size() + 1, "NEW ");
  }
  auto old = ParseCsr(old_label);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->common_name, "one.example.com");
  const std::string cert_block = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
  EXPECT_NE(Message(ParseCsr(cert_block + *one)).find("PEM block \"CERTIFICATE\""),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr(*one + "\n" + cert_block)).find("second PEM block"),
            std::string::npos);
  // A BEGIN line inside the block, headers, no END line, bad base64.
  const size_t body = one->find('\n') + 1;
  EXPECT_NE(Message(ParseCsr(one->substr(0, body) + *one)).find("second BEGIN line"),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr(one->substr(0, body) + "Proc-Type: 4,ENCRYPTED\n" + one->substr(body)))
                .find("headers"),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr(one->substr(0, one->find("-----END")))).find("no END line"),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr(one->substr(0, body) + "!" + one->substr(body))).find("base64"),
            std::string::npos);
  EXPECT_NE(Message(ParseCsr("garbage")).find("csr is not a PEM certificate request"),
            std::string::npos);
}

// A request whose "key" is the point at infinity with a signature forged for it: with
// Q = O, u1*G + u2*Q = e*G for s = 1, so r = x(e*G) "verifies" for any message. Both ways
// must refuse it, as well as a point that is not on the curve.
TEST(Csr, RefusesInfinityAndOffCurveKeys) {
  std::string name;
  {
    Name n(X509_NAME_new());
    X509_NAME_add_entry_by_txt(n.get(), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("evil"), -1, -1, 0);
    name = I2d(n.get(), i2d_X509_NAME);
  }
  const std::string ec_alg = Tlv(0x30, Tlv(0x06, "\x2a\x86\x48\xce\x3d\x02\x01") +
                                           Tlv(0x06, "\x2a\x86\x48\xce\x3d\x03\x01\x07"));
  const std::string sig_alg = Tlv(0x30, Tlv(0x06, "\x2a\x86\x48\xce\x3d\x04\x03\x02"));
  auto make = [&](const std::string& point, bool forge) {
    std::string cri =
        Tlv(0x30, Tlv(0x02, std::string(1, '\0')) + name +
                      Tlv(0x30, ec_alg + Tlv(0x03, std::string(1, '\0') + point)) + Tlv(0xa0, ""));
    unsigned char e[32];
    SHA256(reinterpret_cast<const unsigned char*>(cri.data()), cri.size(), e);
    EC_GROUP* g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BN_CTX* ctx = BN_CTX_new();
    BIGNUM* eb = BN_bin2bn(e, 32, nullptr);
    EC_POINT* R = EC_POINT_new(g);
    EC_POINT_mul(g, R, eb, nullptr, nullptr, ctx);
    BIGNUM *x = BN_new(), *r = BN_new(), *s = BN_new();
    EC_POINT_get_affine_coordinates(g, R, x, nullptr, ctx);
    BN_nnmod(r, x, EC_GROUP_get0_order(g), ctx);
    BN_one(s);
    if (!forge) BN_add_word(s, 1);
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, r, s);
    std::string sig_der = I2d(sig, i2d_ECDSA_SIG);
    ECDSA_SIG_free(sig);
    BN_free(x);
    EC_POINT_free(R);
    BN_free(eb);
    BN_CTX_free(ctx);
    EC_GROUP_free(g);
    return PemOf(Tlv(0x30, cri + sig_alg + Tlv(0x03, std::string(1, '\0') + sig_der)));
  };
  auto infinity = ParseCsr(make(std::string(1, '\0'), true));
  ASSERT_FALSE(infinity.ok());
  EXPECT_EQ(infinity.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(infinity.status().message().find("not a valid point"), std::string::npos)
      << infinity.status();

  std::string off_curve = "\x04" + std::string(32, '\x01') + std::string(32, '\x02');
  auto off = ParseCsr(make(off_curve, true));
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.status().code(), absl::StatusCode::kInvalidArgument);
}

// The walk reads the subject's first common name itself for plain names (UTF8String,
// PrintableString, IA5String values) and leaves every other name to OpenSSL's decoder: both must
// give the CN and subject OpenSSL reads from the request.
TEST(Csr, SubjectCommonNameMatchesOpenSsl) {
  struct Entry {
    const char* field;
    int type;  // an ASN1 string type, or MBSTRING_UTF8
    std::string bytes;
    int set;  // X509_NAME_add_entry_by_txt: 0 a new RDN, -1 joins the previous one
  };
  struct NameCase {
    const char* label;
    std::vector<Entry> entries;
    std::string want_cn;
  };
  const std::vector<NameCase> cases = {
      {"utf8 non-ascii",
       {{"CN", V_ASN1_UTF8STRING, "n\xc5\x93ud-1.example", 0}},
       "n\xc5\x93ud-1.example"},
      {"printable", {{"CN", V_ASN1_PRINTABLESTRING, "node 1", 0}}, "node 1"},
      {"ia5", {{"CN", V_ASN1_IA5STRING, "node1.example", 0}}, "node1.example"},
      {"no cn", {{"O", V_ASN1_UTF8STRING, "system:nodes", 0}}, ""},
      {"empty name", {}, ""},
      {"first of two, after O",
       {{"O", V_ASN1_UTF8STRING, "org", 0},
        {"CN", V_ASN1_UTF8STRING, "first", 0},
        {"CN", V_ASN1_UTF8STRING, "second", 0}},
       "first"},
      {"multi-valued rdn",
       {{"O", V_ASN1_UTF8STRING, "org", 0}, {"CN", V_ASN1_UTF8STRING, "joined", -1}},
       "joined"},
      // Left to OpenSSL: other string types and malformed UTF-8.
      {"bmp", {{"CN", V_ASN1_BMPSTRING, std::string("\0n\0o\0d\0e", 8), 0}}, "node"},
      {"t61 latin-1", {{"CN", V_ASN1_T61STRING, "caf\xe9", 0}}, "caf\xc3\xa9"},
      {"printable with 8-bit byte", {{"CN", V_ASN1_PRINTABLESTRING, "x\xe9", 0}}, ""},
      {"overlong utf8", {{"CN", V_ASN1_UTF8STRING, "\xc0\xae", 0}}, ""},
  };
  auto key = GenerateKey({KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label);
    Name n(X509_NAME_new());
    for (const auto& e : c.entries)
      ASSERT_EQ(X509_NAME_add_entry_by_txt(n.get(), e.field, e.type,
                                           reinterpret_cast<const unsigned char*>(e.bytes.data()),
                                           static_cast<int>(e.bytes.size()), -1, e.set),
                1);
    Csr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_REQ_set_subject_name(req.get(), n.get());
    X509_REQ_set_pubkey(req.get(), key->get());
    ASSERT_GT(X509_REQ_sign(req.get(), key->get(), EVP_sha256()), 0);
    const std::string der = I2d(req.get(), i2d_X509_REQ);
    // What OpenSSL reads from the same bytes.
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    Csr back(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    if (!back) {
      // OpenSSL refuses the name itself (malformed strings): so must ParseCsr.
      ERR_clear_error();
      EXPECT_FALSE(ParseCsr(PemOf(der)).ok());
      continue;
    }
    const std::string openssl_cn = CommonName(X509_REQ_get_subject_name(back.get()));
    auto info = ParseCsr(PemOf(der));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->common_name, openssl_cn);
    const std::string_view label(c.label);
    if (label.find("8-bit") == std::string_view::npos &&
        label.find("overlong") == std::string_view::npos) {
      EXPECT_EQ(info->common_name, c.want_cn);
    }
    auto subject = CsrSubject(*info);
    ASSERT_TRUE(subject.ok()) << subject.status();
    EXPECT_EQ(I2d(const_cast<X509_NAME*>(*subject), i2d_X509_NAME),
              I2d(X509_REQ_get_subject_name(back.get()), i2d_X509_NAME));
  }
}

// A CSR signed by `key` around a subject given as DER, so that names OpenSSL's API would not
// build can be tried.
std::string CsrWithNameDer(EVP_PKEY* key, const std::string& name_der) {
  X509_PUBKEY* pk = nullptr;
  X509_PUBKEY_set(&pk, key);
  const std::string spki = I2d(pk, i2d_X509_PUBKEY);
  X509_PUBKEY_free(pk);
  const std::string cri =
      Tlv(0x30, Tlv(0x02, std::string(1, '\0')) + name_der + spki + Tlv(0xa0, ""));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(cri.data()),
                 cri.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(cri.data()), cri.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  const std::string alg = Tlv(0x30, Tlv(0x06, "\x2a\x86\x48\xce\x3d\x04\x03\x02"));
  return Tlv(0x30, cri + alg + Tlv(0x03, std::string(1, '\0') + sig));
}

// A subject OpenSSL refuses (an attribute OID with a sub-identifier padded with 0x80, which
// c2i_ASN1_OBJECT rejects) next to a plain CN: the request is refused, as OpenSSL's reading
// refuses it, not signed for the CN.
TEST(Csr, SubjectsOpenSslRefusesAreRefused) {
  auto key = GenerateKey({KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  const std::string cn =
      Tlv(0x31, Tlv(0x30, Tlv(0x06, "\x55\x04\x03") + Tlv(0x0c, "ok.example.com")));
  struct Bad {
    const char* label;
    std::string oid;
  };
  for (const Bad& b : {Bad{"padded first arc", std::string("\x80\x01", 2)},
                       Bad{"padded later arc", std::string("\x2a\x80\x01", 3)},
                       Bad{"unfinished arc", std::string("\x2a\x81", 2)}}) {
    SCOPED_TRACE(b.label);
    const std::string der = CsrWithNameDer(
        key->get(), Tlv(0x30, Tlv(0x31, Tlv(0x30, Tlv(0x06, b.oid) + Tlv(0x0c, "x"))) + cn));
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    Csr back(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    ERR_clear_error();
    EXPECT_FALSE(back) << "OpenSSL reads this name: the case tests nothing";
    EXPECT_FALSE(ParseCsr(PemOf(der)).ok());
  }
  // The same construction with a good OID (2.5.4.10, organizationName) is signed for its CN.
  const std::string good = CsrWithNameDer(
      key->get(), Tlv(0x30, Tlv(0x31, Tlv(0x30, Tlv(0x06, "\x55\x04\x0a") + Tlv(0x0c, "x"))) + cn));
  auto info = ParseCsr(PemOf(good));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->common_name, "ok.example.com");
}

}  // namespace
}  // namespace coffer::crypto
