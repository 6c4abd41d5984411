#include "crypto/keys.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include "crypto/cert_builder.h"
#include "crypto/pem.h"

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

// An encrypted private key (PKCS#8 with a passphrase, as `openssl genpkey -aes256` writes), or a
// certificate PEM block with an encryption header, is refused at once. OpenSSL's default without
// a passphrase callback prompts on the terminal or, with none, reads stdin: here stdin is a pipe
// nobody writes, so that read would block.
TEST(PemPassphrase, EncryptedPemIsRefusedWithoutAPrompt) {
  auto key = GenerateKey({KeyType::kEc, 256});
  ASSERT_TRUE(key.ok());
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out.get(), key->get(), EVP_aes_256_cbc(), pass,
                                          sizeof pass - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  const std::string encrypted_key(data, static_cast<size_t>(n));
  ASSERT_NE(encrypted_key.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
  const std::string encrypted_cert =
      "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n"
      "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n"
      "-----END CERTIFICATE-----\n";

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const int saved_stdin = ::dup(0);
  ASSERT_GE(saved_stdin, 0);
  ASSERT_GE(::dup2(pipe_fds[0], 0), 0);
  auto parsed = std::async(std::launch::async, [&] {
    auto k = ParsePrivateKeyPem(encrypted_key);
    auto c = ParseCertPem(encrypted_cert);
    return std::make_pair(k.status(), c.status());
  });
  const bool answered = parsed.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  // Unblock a prompt's reads (one line per parse), so that the test fails instead of hanging.
  if (!answered) (void)!::write(pipe_fds[1], "\n\n", 2);
  const auto [key_status, cert_status] = parsed.get();
  ::dup2(saved_stdin, 0);
  ::close(saved_stdin);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_TRUE(answered) << "a parse waited for a passphrase on stdin";
  EXPECT_EQ(key_status.code(), absl::StatusCode::kInvalidArgument) << key_status;
  EXPECT_EQ(cert_status.code(), absl::StatusCode::kInvalidArgument) << cert_status;
}

}  // namespace
}  // namespace coffer::crypto
