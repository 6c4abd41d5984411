#include "crypto/keys.h"

#include <gtest/gtest.h>

#include "crypto/cert_builder.h"

namespace coffer::crypto {
namespace {

// Generated EC keys (held as EC_KEY for speed) encode, decode and sign like any other key, and
// their encodings are what OpenSSL's provider encoders write for the same key.
TEST(EcKeys, GeneratedKeysRoundTripAndSign) {
  for (int bits : {256, 384, 521}) {
    SCOPED_TRACE(bits);
    auto key = GenerateKey({KeyType::kEc, bits});
    ASSERT_TRUE(key.ok());
    auto spec = DescribeKey(key->get());
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(spec->type, KeyType::kEc);
    EXPECT_EQ(spec->bits, bits);
    for (const char* format : {"", "pkcs8"}) {
      auto pem = PrivateKeyPem(key->get(), format);
      ASSERT_TRUE(pem.ok());
      EXPECT_NE(
          std::string(pem->view()).find(*format ? "BEGIN PRIVATE KEY" : "BEGIN EC PRIVATE KEY"),
          std::string::npos);
      auto back = ParsePrivateKeyPem(pem->view());
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_TRUE(SameKey(key->get(), back->get()));
      // The provider-held copy encodes to the same bytes.
      auto again = PrivateKeyPem(back->get(), format);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(std::string(again->view()), std::string(pem->view()));
    }
    EXPECT_EQ(PublicKeyDer(key->get()),
              PublicKeyDer(ParsePrivateKeyPem(PrivateKeyPem(key->get(), "")->view())->get()));
    // A certificate signed by it verifies with OpenSSL.
    CertTemplate t;
    t.common_name = "ec.example.com";
    t.is_ca = true;
    t.not_before = 1700000000;
    t.not_after = 1800000000;
    auto cert = SignCertificate(t, key->get(), nullptr, key->get());
    ASSERT_TRUE(cert.ok()) << cert.status();
    EXPECT_EQ(X509_verify(cert->get(), key->get()), 1);
  }
}

}  // namespace
}  // namespace coffer::crypto
