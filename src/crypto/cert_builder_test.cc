// SignLeafDer (the signing path's DER writer) against SignCertificate (OpenSSL's X509 object)
// for the same templates: every field and every extension's bytes must be the same, only the
// serial and the signature (random) differ; the signature verifies with the issuer's key; and
// what SignLeafDer declines, SignCertificate decides.
#include "crypto/cert_builder.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/cert_fields.h"
#include "crypto/keys.h"
#include "crypto/pem.h"
#include "crypto/x509_internal.h"

namespace coffer::crypto {
namespace {

using x509_internal::I2d;

struct Issuer {
  PKey key;
  Cert cert;
};

// The issuer's key as the server holds it: parsed from its stored PEM, so a provider key (one
// GenerateKey made is a plain EC_KEY, which EcdsaSign uses without OpenSSL's legacy copy).
Issuer MakeIssuer(int bits) {
  auto generated = GenerateKey({KeyType::kEc, bits});
  EXPECT_TRUE(generated.ok());
  auto pem = PrivateKeyPem(generated->get(), "");
  EXPECT_TRUE(pem.ok());
  auto key = ParsePrivateKeyPem(pem->view());
  EXPECT_TRUE(key.ok());
  CertTemplate t;
  t.common_name = "Test Root " + std::to_string(bits);
  t.organization = {"Coffer"};
  t.is_ca = true;
  t.not_before = 1700000000;
  t.not_after = 2000000000;
  auto cert = SignCertificate(t, key->get(), nullptr, key->get());
  EXPECT_TRUE(cert.ok()) << cert.status();
  return {std::move(*key), std::move(*cert)};
}

// An issuer, a P-256 subject key and a leaf template for it (`name`, valid Dec 2025 - Dec 2026).
struct Leaf {
  Issuer issuer = MakeIssuer(256);
  PKey subject_key;
  X509_PUBKEY* spki = nullptr;
  CertTemplate t;
  explicit Leaf(std::string name) {
    auto k = GenerateKey({KeyType::kEc, 256});
    EXPECT_TRUE(k.ok());
    subject_key = std::move(*k);
    EXPECT_EQ(X509_PUBKEY_set(&spki, subject_key.get()), 1);
    t.common_name = std::move(name);
    t.not_before = 1764547200;
    t.not_after = 1796083200;
  }
  ~Leaf() { X509_PUBKEY_free(spki); }
  Leaf(const Leaf&) = delete;
  Leaf& operator=(const Leaf&) = delete;
  std::optional<SignedDer> Fast(const CertTemplate& with) const {
    return SignLeafDer(with, spki, issuer.cert.get(), issuer.key.get());
  }
};

// Compares everything but the serial and the signature value.
void ExpectSameCertificate(X509* fast, X509* slow) {
  EXPECT_EQ(X509_get_version(fast), X509_get_version(slow));
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(fast), X509_get_subject_name(slow)), 0);
  EXPECT_EQ(I2d(X509_get_subject_name(fast), i2d_X509_NAME),
            I2d(X509_get_subject_name(slow), i2d_X509_NAME));
  EXPECT_EQ(I2d(X509_get_issuer_name(fast), i2d_X509_NAME),
            I2d(X509_get_issuer_name(slow), i2d_X509_NAME));
  EXPECT_EQ(I2d(const_cast<ASN1_TIME*>(X509_get0_notBefore(fast)), i2d_ASN1_TIME),
            I2d(const_cast<ASN1_TIME*>(X509_get0_notBefore(slow)), i2d_ASN1_TIME));
  EXPECT_EQ(I2d(const_cast<ASN1_TIME*>(X509_get0_notAfter(fast)), i2d_ASN1_TIME),
            I2d(const_cast<ASN1_TIME*>(X509_get0_notAfter(slow)), i2d_ASN1_TIME));
  EXPECT_EQ(I2d(X509_get_X509_PUBKEY(fast), i2d_X509_PUBKEY),
            I2d(X509_get_X509_PUBKEY(slow), i2d_X509_PUBKEY));
  EXPECT_EQ(X509_get_signature_nid(fast), X509_get_signature_nid(slow));
  ASSERT_EQ(X509_get_ext_count(fast), X509_get_ext_count(slow));
  for (int i = 0; i < X509_get_ext_count(slow); ++i) {
    X509_EXTENSION* a = X509_get_ext(fast, i);
    X509_EXTENSION* b = X509_get_ext(slow, i);
    EXPECT_EQ(I2d(a, i2d_X509_EXTENSION), I2d(b, i2d_X509_EXTENSION))
        << OBJ_nid2sn(OBJ_obj2nid(X509_EXTENSION_get_object(b)));
  }
  const ASN1_INTEGER* serial = X509_get0_serialNumber(fast);
  EXPECT_EQ(ASN1_STRING_length(serial), 20);
  EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER);  // positive
  EXPECT_EQ(SerialColon(fast).size(), 59u);
}

// The fast certificate's TBSCertificate bytes as written (the first element of its DER).
std::string TbsOf(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  long len = 0;
  int tag = 0, cls = 0;
  ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(der.size()));  // Certificate
  const unsigned char* start = p;
  ASN1_get_object(&p, &len, &tag, &cls, static_cast<long>(der.size()));  // TBSCertificate
  return std::string(reinterpret_cast<const char*>(start), static_cast<size_t>(p - start + len));
}

// Byte for byte: the X509 path's TBSCertificate, given the fast one's serial, re-encoded.
void ExpectSameTbs(const std::string& fast_der, X509* fast, X509* slow) {
  ASSERT_EQ(X509_set_serialNumber(slow, const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(fast))),
            1);
  unsigned char* out = nullptr;
  const int n = i2d_re_X509_tbs(slow, &out);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n)), TbsOf(fast_der));
  OPENSSL_free(out);
}

TEST(SignLeafDer, SameCertificateAsTheX509Path) {
  std::vector<CertTemplate> templates;
  {
    CertTemplate t;  // a kubelet-style leaf
    t.common_name = "system:node:worker-1";
    t.organization = {"system:nodes"};
    t.dns_names = {"worker-1", "worker-1.cluster.local"};
    t.ip_sans = {"10.0.0.3", "fd00::3", "::ffff:10.1.2.3"};
    t.key_usage = kDigitalSignature | kKeyEncipherment;
    t.ext_key_usage = {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"};
    templates.push_back(t);
  }
  {
    CertTemplate t;  // every subject field, emails and URIs, URLs, a 2050+ notAfter
    t.common_name = "everything.example.com";
    t.organization = {"O1", "O2"};
    t.ou = {"Unit"};
    t.country = {"DE"};
    t.locality = {"Berlin"};
    t.province = {"BE"};
    t.street_address = {"Street 1"};
    t.postal_code = {"10115"};
    t.serial_number = "SN-42";
    t.emails = {"ops@example.com"};
    t.uri_sans = {"spiffe://cluster.local/ns/default/sa/web"};
    t.key_usage = kDigitalSignature | kKeyAgreement | kDecipherOnly;
    t.ext_key_usage = {"1.3.6.1.4.1.311.10.3.3", "2.5.29.37.0"};
    t.issuing_certificates = {"http://pki.example.com/ca"};
    t.ocsp_servers = {"http://ocsp.example.com", "http://ocsp2.example.com"};
    t.crl_distribution_points = {"http://pki.example.com/crl", "http://b/crl"};
    t.not_after = 2600000000;  // 2052: GeneralizedTime
    templates.push_back(t);
  }
  {
    CertTemplate t;  // no subject: the SAN extension is critical; no key usage
    t.dns_names = {std::string(200, 'a') + ".example.com"};  // long lengths
    templates.push_back(t);
  }
  {
    CertTemplate t;  // 384-bit signature asked for
    t.common_name = "sha384.example.com";
    t.signature_bits = 384;
    t.key_usage = kCertSign;  // kept for a leaf as given
    templates.push_back(t);
  }
  {
    CertTemplate t;  // SHA-256 asked for on any issuer; notAfter at the last UTCTime second
    t.common_name = "sha256.example.com";
    t.signature_bits = 256;
    t.not_after = 2524607999;  // 2049-12-31T23:59:59Z
    templates.push_back(t);
  }
  {
    CertTemplate t;  // the first GeneralizedTime second; notBefore before 1970 and 1950
    t.common_name = "times.example.com";
    t.not_before = -700000000;  // 1947
    t.not_after = 2524608000;   // 2050-01-01T00:00:00Z
    templates.push_back(t);
  }
  {
    CertTemplate t;  // a commonName alone: 64 characters, the most X.509 allows
    t.common_name = std::string(52, 'n') + ".example.com";
    templates.push_back(t);
  }
  {
    CertTemplate t;  // characters a PrintableString lacks: still the UTF8String OpenSSL writes
    t.common_name = "*.a_b@c&d!";
    templates.push_back(t);
  }
  {
    CertTemplate t;  // a second before 1970, a leap day, 2100 (no leap day), the last second
    t.common_name = "calendar.example.com";  // X.509 can encode
    t.not_before = -1;
    t.not_after = 951782400;  // 2000-02-29T00:00:00Z
    templates.push_back(t);
    t.not_before = 4107456000;  // 2100-02-28T00:00:00Z
    t.not_after = 4107542400;   // 2100-03-01T00:00:00Z
    templates.push_back(t);
    t.not_after = 253402300799;  // 9999-12-31T23:59:59Z
    templates.push_back(t);
  }
  {
    CertTemplate t;  // a commonName alone outside printable ASCII (UTF-8, a tab)
    t.common_name = "z\xc3\xbcrich-node\t1";
    templates.push_back(t);
  }
  // A subject given as it came (sign-verbatim): a CSR's name, and one whose only RDN holds no
  // attribute (no subject as RFC 5280 counts: the SAN is critical).
  Name given(X509_NAME_new());
  X509_NAME_add_entry_by_txt(given.get(), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("given.example.com"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(given.get(), "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Given Org"), -1, -1, 0);
  {
    CertTemplate t;
    t.subject = given.get();
    t.dns_names = {"given.example.com"};
    templates.push_back(t);
  }
  const unsigned char empty_rdn[] = {0x30, 0x02, 0x31, 0x00};
  const unsigned char* er = empty_rdn;
  Name hollow(d2i_X509_NAME(nullptr, &er, sizeof(empty_rdn)));
  ASSERT_TRUE(hollow);
  {
    ASSERT_EQ(X509_NAME_entry_count(hollow.get()), 0);
    CertTemplate t;
    t.subject = hollow.get();
    t.dns_names = {"hollow.example.com"};
    templates.push_back(t);
  }
  for (int issuer_bits : {256, 384, 521}) {
    SCOPED_TRACE(issuer_bits);
    Issuer issuer = MakeIssuer(issuer_bits);
    for (KeySpec spec : {KeySpec{KeyType::kEc, 256}, KeySpec{KeyType::kEc, 521},
                         KeySpec{KeyType::kRsa, 2048}, KeySpec{KeyType::kEd25519, 0}}) {
      SCOPED_TRACE(static_cast<int>(spec.type));
      auto subject = GenerateKey(spec);
      ASSERT_TRUE(subject.ok());
      X509_PUBKEY* spki = nullptr;
      ASSERT_EQ(X509_PUBKEY_set(&spki, subject->get()), 1);
      for (size_t i = 0; i < templates.size(); ++i) {
        SCOPED_TRACE(i);
        CertTemplate t = templates[i];
        if (t.not_before == 0) t.not_before = 1764547200;  // 2025-12-01
        if (t.not_after == 0) t.not_after = 1796083200;
        auto fast = SignLeafDer(t, spki, issuer.cert.get(), issuer.key.get());
        ASSERT_TRUE(fast.has_value());
        auto slow = SignCertificate(t, spki, issuer.cert.get(), issuer.key.get());
        ASSERT_TRUE(slow.ok()) << slow.status();
        const auto* p = reinterpret_cast<const unsigned char*>(fast->der.data());
        Cert parsed(d2i_X509(nullptr, &p, static_cast<long>(fast->der.size())));
        ASSERT_TRUE(parsed);
        EXPECT_EQ(p, reinterpret_cast<const unsigned char*>(fast->der.data()) + fast->der.size());
        ExpectSameCertificate(parsed.get(), slow->get());
        ExpectSameTbs(fast->der, parsed.get(), slow->get());
        EXPECT_EQ(SerialColon(parsed.get()), SerialColonFromBytes(fast->serial));
        EXPECT_EQ(CertDer(parsed.get()), fast->der);  // re-encodes to the same bytes: valid DER
        EXPECT_EQ(X509_verify(parsed.get(), issuer.key.get()), 1);
        EXPECT_EQ(fast->not_after, t.not_after);
        const ASN1_INTEGER* serial = X509_get0_serialNumber(parsed.get());
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(serial)),
                              static_cast<size_t>(ASN1_STRING_length(serial))),
                  fast->serial);
      }
      X509_PUBKEY_free(spki);
    }
  }
}

// Outside the fast path: SignLeafDer declines and SignCertificate gives the answer.
TEST(SignLeafDer, DeclinesWhatTheX509PathDecides) {
  Leaf leaf("x.example.com");
  const Issuer& issuer = leaf.issuer;
  X509_PUBKEY* spki = leaf.spki;
  const CertTemplate& base = leaf.t;
  std::vector<std::pair<std::string, CertTemplate>> cases;
  auto with = [&](const char* what, auto change) {
    CertTemplate t = base;
    change(t);
    cases.emplace_back(what, t);
  };
  with("a CA", [](CertTemplate& t) { t.is_ca = true; });
  with("other names", [](CertTemplate& t) { t.other_sans = {{"1.2.3.4", "v"}}; });
  with("non-ASCII DNS", [](CertTemplate& t) { t.dns_names = {"b\xc3\xbcro.example"}; });
  with("a bad IP", [](CertTemplate& t) { t.ip_sans = {"10.0.0.256"}; });
  with("a bad OID", [](CertTemplate& t) { t.ext_key_usage = {"1.x"}; });
  with("notAfter first", [](CertTemplate& t) { t.not_after = t.not_before; });
  with("no name at all", [](CertTemplate& t) { t.common_name.clear(); });
  with("a 65-character name", [](CertTemplate& t) { t.common_name = std::string(65, 'n'); });
  with("an OID OpenSSL refuses", [](CertTemplate& t) { t.ext_key_usage = {"01.3.6.1.5.5.7.3.1"}; });
  for (const auto& [what, t] : cases) {
    SCOPED_TRACE(what);
    EXPECT_FALSE(SignLeafDer(t, spki, issuer.cert.get(), issuer.key.get()).has_value());
    // Declined templates that are errors are errors for the X509 path too.
    if (what != "a CA" && what != "other names") {
      EXPECT_FALSE(SignCertificate(t, spki, issuer.cert.get(), issuer.key.get()).ok());
    }
  }
  EXPECT_FALSE(SignLeafDer(base, spki, nullptr, issuer.key.get()).has_value());  // self-signed
  auto rsa = GenerateKey({KeyType::kRsa, 2048});
  ASSERT_TRUE(rsa.ok());
  EXPECT_FALSE(SignLeafDer(base, spki, issuer.cert.get(), rsa->get()).has_value());
}

// Serials take their random bits from a per-thread buffer: they never repeat, in this process
// or in a child forked after the buffer was filled (which must not hand out the same bytes as
// its parent).
TEST(SignLeafDer, SerialsNeverRepeatNotEvenAcrossAFork) {
  Leaf leaf("serial.example.com");
  auto random_part = [&] {
    auto c = leaf.Fast(leaf.t);
    EXPECT_TRUE(c.has_value());
    return c ? c->serial.substr(6) : std::string();
  };
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(seen.insert(random_part()).second);

  // More serials than one buffer holds on each side, so the test does not depend on where in
  // its buffer the parent was when it forked.
  constexpr size_t kEach = 40, kPart = 14;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string all;
    for (size_t i = 0; i < kEach; ++i) all += random_part();
    const bool ok = all.size() == kPart * kEach &&
                    write(fds[1], all.data(), all.size()) == static_cast<ssize_t>(all.size());
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  for (size_t i = 0; i < kEach; ++i) EXPECT_TRUE(seen.insert(random_part()).second);
  std::string theirs(kPart * kEach, '\0');
  size_t got = 0;
  for (ssize_t n = 1; n > 0 && got < theirs.size(); got += static_cast<size_t>(n))
    n = read(fds[0], theirs.data() + got, theirs.size() - got);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child could not sign";
  ASSERT_EQ(got, theirs.size());
  for (size_t i = 0; i < kEach; ++i)
    EXPECT_TRUE(seen.insert(theirs.substr(kPart * i, kPart)).second)
        << "the child repeated a serial of its parent";
}

// Many threads signing with one freshly parsed issuer key at once: OpenSSL makes its EC_KEY copy
// of the key on first use, which must race safely (ThreadSanitizer in CI), and every thread gets
// a certificate from the fast path that verifies.
TEST(SignLeafDer, ThreadsSignWithOneFreshKeyAtOnce) {
  Leaf leaf("threads.example.com");
  constexpr int kThreads = 8, kEach = 20;
  std::vector<std::vector<std::string>> ders(kThreads);
  {
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&, i] {
        for (int j = 0; j < kEach; ++j) {
          auto c = leaf.Fast(leaf.t);
          ders[i].push_back(c ? c->der : std::string());
        }
      });
    for (auto& th : threads) th.join();
  }
  std::set<std::string> serials;
  for (const auto& list : ders)
    for (const auto& der : list) {
      ASSERT_FALSE(der.empty()) << "SignLeafDer declined";
      const auto* p = reinterpret_cast<const unsigned char*>(der.data());
      Cert c(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
      ASSERT_TRUE(c);
      EXPECT_EQ(X509_verify(c.get(), leaf.issuer.key.get()), 1);
      EXPECT_TRUE(serials.insert(SerialColon(c.get())).second);
    }
}

// The X509 path refuses a validity X.509 cannot encode instead of writing a wrong time.
TEST(SignCertificate, RefusesAValidityPastTheYear9999) {
  Leaf leaf("far.example.com");
  CertTemplate t = leaf.t;
  t.not_after = 253402300800;  // 10000-01-01T00:00:00Z
  EXPECT_FALSE(leaf.Fast(t).has_value());
  auto slow = SignCertificate(t, leaf.spki, leaf.issuer.cert.get(), leaf.issuer.key.get());
  EXPECT_FALSE(slow.ok());
  EXPECT_NE(slow.status().message().find("years 0000-9999"), std::string::npos) << slow.status();
}

}  // namespace
}  // namespace coffer::crypto
