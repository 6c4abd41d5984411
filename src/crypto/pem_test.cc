#include "crypto/pem.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "crypto/cert_builder.h"
#include "crypto/keys.h"
#include "util/encoding.h"

namespace coffer::crypto {
namespace {

// CertPem (base64 of the DER in 64-column lines) is byte for byte what OpenSSL writes.
TEST(Pem, CertPemMatchesOpenSsl) {
  auto key = GenerateKey({KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  CertTemplate t;
  t.common_name = "pem.example.com";
  t.dns_names = {"pem.example.com"};
  t.not_before = 1700000000;
  t.not_after = 1800000000;
  auto cert = SignCertificate(t, key->get(), nullptr, key->get());
  ASSERT_TRUE(cert.ok()) << cert.status();
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert->get());
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string openssl(p, static_cast<size_t>(n));
  BIO_free(b);
  EXPECT_EQ(CertPem(cert->get()) + "\n", openssl);
  EXPECT_EQ(PemFromDer(std::string(130, 'a'), "X"),
            "-----BEGIN X-----\n" + Base64Encode(std::string(48, 'a')) + "\n" +
                Base64Encode(std::string(48, 'a')) + "\n" + Base64Encode(std::string(34, 'a')) +
                "\n-----END X-----");
}

}  // namespace
}  // namespace coffer::crypto
