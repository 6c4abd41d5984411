// The JWT parser and verifier with tokens signed in the test by keys the test makes.
#include "crypto/jwt.h"

#include <gtest/gtest.h>

#include "crypto/cert_builder.h"
#include "crypto/jwt_test_util.h"
#include "crypto/pem.h"
#include "util/status.h"

namespace coffer::crypto {
namespace {
namespace json = boost::json;
using testing::B64Url;
using testing::MakeJwt;
using testing::MakeKey;
using testing::PublicPem;

const json::object kClaims{{"sub", "system:serviceaccount:default:app"}, {"exp", 2000000000}};

TEST(JwtTest, RsaAndEcTokensVerifyWithTheirKeyOnly) {
  PKey rsa = MakeKey(KeyType::kRsa, 2048);
  PKey ec = MakeKey(KeyType::kEc, 256);
  PKey other = MakeKey(KeyType::kEc, 256);
  auto r = ParseJwt(MakeJwt(rsa.get(), "RS256", kClaims));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->alg, "RS256");
  EXPECT_EQ(r->claims.at("sub").as_string(), "system:serviceaccount:default:app");
  EXPECT_TRUE(VerifyJwt(*r, rsa.get()).ok());
  // An RS256 token against an EC key: refused, naming the misfit.
  auto misfit = VerifyJwt(*r, ec.get());
  EXPECT_EQ(misfit.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(misfit.message().find("does not fit the key"), std::string::npos);

  auto e = ParseJwt(MakeJwt(ec.get(), "ES256", kClaims));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->signature.size(), 64u);  // raw r||s
  EXPECT_TRUE(VerifyJwt(*e, ec.get()).ok());
  auto wrong = VerifyJwt(*e, other.get());
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(wrong.message(), "JWT signature does not verify");

  PKey ec384 = MakeKey(KeyType::kEc, 384);
  auto e384 = ParseJwt(MakeJwt(ec384.get(), "ES384", kClaims, EVP_sha384()));
  ASSERT_TRUE(e384.ok());
  EXPECT_TRUE(VerifyJwt(*e384, ec384.get()).ok());
  auto rs512 = ParseJwt(MakeJwt(rsa.get(), "RS512", kClaims, EVP_sha512()));
  ASSERT_TRUE(rs512.ok());
  EXPECT_TRUE(VerifyJwt(*rs512, rsa.get()).ok());
}

TEST(JwtTest, ATamperedTokenDoesNotVerify) {
  PKey rsa = MakeKey(KeyType::kRsa, 2048);
  const std::string good = MakeJwt(rsa.get(), "RS256", kClaims);
  // The claims swapped for others, the signature kept.
  const size_t dot1 = good.find('.'), dot2 = good.rfind('.');
  json::object forged = kClaims;
  forged["sub"] = "system:serviceaccount:kube-system:admin";
  const std::string bad =
      good.substr(0, dot1 + 1) + B64Url(json::serialize(forged)) + good.substr(dot2);
  auto t = ParseJwt(bad);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(VerifyJwt(*t, rsa.get()).code(), absl::StatusCode::kPermissionDenied);
  // An ES256 signature of the wrong length is refused before OpenSSL sees it.
  PKey ec = MakeKey(KeyType::kEc, 256);
  std::string es = MakeJwt(ec.get(), "ES256", kClaims);
  es = Cat(es.substr(0, es.rfind('.') + 1), B64Url(std::string(63, 'x')));
  auto short_sig = ParseJwt(es);
  ASSERT_TRUE(short_sig.ok());
  auto st = VerifyJwt(*short_sig, ec.get());
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("63 bytes"), std::string::npos) << st;
}

TEST(JwtTest, MalformedTokensAndUnsafeAlgorithmsAreRefusedWithTheReason) {
  const std::string header = B64Url(R"({"alg":"RS256"})");
  const std::string claims = B64Url(R"({"sub":"x"})");
  const std::string sig = B64Url("signature");
  struct Case {
    std::string token, message;
  };
  for (const auto& c : std::vector<Case>{
           {"", "JWT is empty"},
           {"abc", "compact JWS format must have three parts"},
           {Cat(header, ".", claims), "compact JWS format must have three parts"},
           {Cat(header, ".", claims, ".", sig, ".x"), "compact JWS format must have three parts"},
           {Cat("!!.", claims, ".", sig), "JWT header is not valid base64url"},
           {Cat(header, "=.", claims, ".", sig), "JWT header is not valid base64url"},
           {Cat(B64Url("not json"), ".", claims, ".", sig), "JWT header is not valid JSON"},
           {Cat(B64Url("[1]"), ".", claims, ".", sig), "JWT header is not a JSON object"},
           {Cat(B64Url(R"({"typ":"JWT"})"), ".", claims, ".", sig), "JWT header has no \"alg\""},
           {Cat(B64Url(R"({"alg":"none"})"), ".", claims, ".", sig),
            "JWT signing algorithm \"none\" is not accepted"},
           {Cat(B64Url(R"({"alg":"none"})"), ".", claims, "."), "\"none\" is not accepted"},
           {Cat(B64Url(R"({"alg":"HS256"})"), ".", claims, ".", sig),
            "JWT signing algorithm \"HS256\" is not accepted"},
           {Cat(B64Url(R"({"alg":"RS256","crit":["b64"],"b64":false})"), ".", claims, ".", sig),
            "not supported"},
           {Cat(header, ".", B64Url("[]"), ".", sig), "JWT claims is not a JSON object"},
           {Cat(header, ".", claims, "."), "JWT has no signature"},
           {Cat(header, ".", claims, ".a+b"), "JWT signature is not valid base64url"},
           {std::string(kMaxJwtBytes + 1, 'a'), "at most 32768 are accepted"},
       }) {
    auto r = ParseJwt(c.token);
    ASSERT_FALSE(r.ok()) << c.token.substr(0, 80);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << r.status() << " wanted " << c.message;
  }
  // Deep nesting in the claims stays within the parser's limits.
  std::string deep(100, '[');
  auto d = ParseJwt(Cat(header, ".", B64Url(Cat(R"({"a":)", deep)), ".", sig));
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JwtTest, TimeClaimsAndAudience) {
  const int64_t now = 1800000000;
  EXPECT_TRUE(CheckJwtTimes({}, now).ok());
  EXPECT_TRUE(CheckJwtTimes({{"exp", now + 1}, {"nbf", now}, {"iat", now}}, now).ok());
  EXPECT_EQ(CheckJwtTimes({{"exp", now}}, now).message(), "token is expired");
  EXPECT_EQ(CheckJwtTimes({{"exp", now - 10}}, now).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckJwtTimes({{"exp", now - 10}}, now, 60).ok());
  EXPECT_EQ(CheckJwtTimes({{"nbf", now + 1}}, now).message(), "token is not valid yet");
  EXPECT_EQ(CheckJwtTimes({{"iat", now + 1}}, now).message(), "token used before issued");
  EXPECT_TRUE(CheckJwtTimes({{"exp", 1.9e9}, {"nbf", 1.7e9}}, now).ok());
  EXPECT_EQ(CheckJwtTimes({{"exp", -9.3e18}}, now).message(), "token is expired");
  EXPECT_EQ(CheckJwtTimes({{"exp", "soon"}}, now).code(), absl::StatusCode::kInvalidArgument);

  EXPECT_TRUE(JwtHasAudience({{"aud", "vault"}}, "vault"));
  EXPECT_TRUE(JwtHasAudience({{"aud", json::array{"api", "vault"}}}, "vault"));
  EXPECT_FALSE(JwtHasAudience({{"aud", json::array{"api"}}}, "vault"));
  EXPECT_FALSE(JwtHasAudience({}, "vault"));
}

TEST(JwtTest, PublicKeysComeFromPemKeysOrCertificatesUnderTheKeyPolicy) {
  PKey ec = MakeKey(KeyType::kEc, 256);
  auto k = ParsePublicKeyPem(PublicPem(ec.get()));
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_TRUE(SameKey(k->get(), ec.get()));

  CertTemplate t;
  t.common_name = "sa-signer";
  t.not_before = 1700000000;
  t.not_after = 2000000000;
  auto cert = SignCertificate(t, ec.get(), nullptr, ec.get());
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto from_cert = ParsePublicKeyPem(CertPem(cert->get()));
  ASSERT_TRUE(from_cert.ok()) << from_cert.status();
  EXPECT_TRUE(SameKey(from_cert->get(), ec.get()));

  EXPECT_EQ(ParsePublicKeyPem("pem_key").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ParsePublicKeyPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .status()
                .message()
                .find("data does not contain any valid RSA or ECDSA public keys"),
            std::string::npos);
  auto priv = PrivateKeyPem(ec.get(), "pkcs8");
  ASSERT_TRUE(priv.ok());
  EXPECT_EQ(ParsePublicKeyPem(priv->view()).status().message(),
            "a private key was given where a public key is expected");
  PKey ed = MakeKey(KeyType::kEd25519, 0);
  EXPECT_EQ(ParsePublicKeyPem(PublicPem(ed.get())).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::crypto
