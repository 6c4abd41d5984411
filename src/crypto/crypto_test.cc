#include "crypto/crypto.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "crypto/shamir.h"
#include "util/encoding.h"
#include "util/mutex.h"

namespace coffer::crypto {
namespace {

TEST(ReadSecretFile, ReadsEveryByteAndTellsMissingFromUnreadable) {
  char tmpl[] = "/tmp/coffer-secret-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/key.pem";
  // Binary content with a NUL and no final newline, larger than one read of a small buffer.
  std::string content = "-----BEGIN PRIVATE KEY-----\n";
  content.push_back('\0');
  content += std::string(20000, 'k') + "\xff";
  { std::ofstream(path, std::ios::binary) << content; }
  auto got = ReadSecretFile(path);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((**got).view(), content);

  auto missing = ReadSecretFile(dir + "/none.pem");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  auto too_large = ReadSecretFile(path, 1000);
  ASSERT_FALSE(too_large.ok());
  EXPECT_NE(too_large.status().message().find(path), std::string_view::npos) << too_large.status();

  // A directory exists but is no key: an error naming it, not "missing".
  auto dir_read = ReadSecretFile(dir);
  ASSERT_FALSE(dir_read.ok());
  EXPECT_NE(dir_read.status().message().find(dir), std::string_view::npos) << dir_read.status();

  // A FIFO where a key belongs: refused at once, not waited on.
  const std::string fifo = dir + "/fifo.pem";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto fifo_read = ReadSecretFile(fifo);
  ASSERT_FALSE(fifo_read.ok());
  EXPECT_NE(fifo_read.status().message().find("not a regular file"), std::string_view::npos)
      << fifo_read.status();

  std::filesystem::remove_all(dir);
}

TEST(Gf256, MulMatchesKnownAesFieldProducts) {
  // FIPS-197 section 4.2: {57} * {83} = {c1}, {57} * {13} = {fe}.
  EXPECT_EQ(gf256::Mul(0x57, 0x83), 0xc1);
  EXPECT_EQ(gf256::Mul(0x57, 0x13), 0xfe);
  for (int a = 1; a < 256; ++a) EXPECT_EQ(gf256::Mul(a, gf256::Inv(a)), 1) << a;
}

TEST(Shamir, AnyThresholdSubsetRebuildsTheSecret) {
  auto secret = SecretBytes::Random(32);
  ASSERT_TRUE(secret.ok());
  auto shares = ShamirSplit(*secret, 5, 3);
  ASSERT_TRUE(shares.ok());
  ASSERT_EQ(shares->size(), 5u);
  std::set<uint8_t> xs;
  for (auto& s : *shares) {
    EXPECT_EQ(s.size(), 33u);
    xs.insert(s.data()[32]);
  }
  EXPECT_EQ(xs.size(), 5u);
  for (int a = 0; a < 5; ++a)
    for (int b = a + 1; b < 5; ++b)
      for (int c = b + 1; c < 5; ++c) {
        std::vector<SecretBytes> pick;
        pick.push_back((*shares)[a].Clone());
        pick.push_back((*shares)[b].Clone());
        pick.push_back((*shares)[c].Clone());
        auto out = ShamirCombine(pick);
        ASSERT_TRUE(out.ok());
        EXPECT_EQ(out->view(), secret->view());
      }
}

TEST(Shamir, TwoOfThreeSharesDoNotRebuildAThresholdThreeSecret) {
  auto secret = SecretBytes::Random(32);
  auto shares = ShamirSplit(*secret, 5, 3);
  std::vector<SecretBytes> pick;
  pick.push_back((*shares)[0].Clone());
  pick.push_back((*shares)[1].Clone());
  auto out = ShamirCombine(pick);
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->view(), secret->view());
}

TEST(Shamir, RejectsDuplicatesAndBadParameters) {
  auto secret = SecretBytes::Random(32);
  auto shares = ShamirSplit(*secret, 3, 2);
  std::vector<SecretBytes> dup;
  dup.push_back((*shares)[0].Clone());
  dup.push_back((*shares)[0].Clone());
  EXPECT_EQ(ShamirCombine(dup).status().message(), "duplicate share detected");
  EXPECT_FALSE(ShamirSplit(*secret, 2, 3).ok());
  EXPECT_FALSE(ShamirSplit(*secret, 256, 3).ok());
  EXPECT_FALSE(ShamirSplit(*secret, 5, 1).ok());
}

TEST(Shamir, CombinesAHandMadeVaultLayoutShare) {
  // Secret byte 0x42, polynomial f(x) = 0x42 + 0x07*x; shares at x=1 and x=2 in Vault's layout
  // (y bytes, then x).
  uint8_t y1 = 0x42 ^ gf256::Mul(0x07, 1), y2 = 0x42 ^ gf256::Mul(0x07, 2);
  std::vector<SecretBytes> s;
  s.emplace_back(std::string_view(std::string{static_cast<char>(y1), 1}));
  s.emplace_back(std::string_view(std::string{static_cast<char>(y2), 2}));
  auto out = ShamirCombine(s);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ(out->data()[0], 0x42);
}

TEST(AesGcm, RoundTripAndTamperDetection) {
  auto key = SecretBytes::Random(32);
  auto ct = AesGcmSeal(*key, "hello", "path/a");
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->size(), 12u + 5 + 16);
  EXPECT_EQ(*AesGcmOpen(*key, *ct, "path/a"), "hello");
  EXPECT_EQ(AesGcmOpen(*key, *ct, "path/b").status().code(), absl::StatusCode::kDataLoss);
  std::string bad = *ct;
  bad[14] ^= 1;
  EXPECT_FALSE(AesGcmOpen(*key, bad, "path/a").ok());
  auto ct2 = AesGcmSeal(*key, "hello", "path/a");
  EXPECT_NE(ct->substr(0, 12), ct2->substr(0, 12)) << "nonce must be fresh per write";
}

TEST(Hmac, MatchesRfc4231TestCase2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hmac, PreparedKeyMatchesOneShotFromManyThreads) {
  HmacSha256Key jefe("Jefe");
  EXPECT_EQ(HexEncode(jefe.Sign("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string key(100, 'k');  // longer than the block: hashed first
  HmacSha256Key prepared(key);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string data = std::to_string(t * 1000 + i);
        if (prepared.Sign(data) != HmacSha256(key, data)) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_FALSE(prepared.empty());
  EXPECT_TRUE(HmacSha256Key().empty());
}

// Version 4 layout (version nibble 4, variant 10xx), lowercase hex, and no repeats across
// threads.
TEST(Tokens, RequestIdsAreVersion4AndDistinct) {
  auto check = [](const std::string& id) {
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t i = 0; i < id.size(); ++i) {
      if (i == 8 || i == 13 || i == 18 || i == 23)
        EXPECT_EQ(id[i], '-') << id;
      else
        EXPECT_TRUE(isdigit(id[i]) || (id[i] >= 'a' && id[i] <= 'f')) << id;
    }
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  };
  check(RandomUuid());
  std::set<std::string> seen;
  Mutex mu;
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::string id = RequestId();
        check(id);
        MutexLock l(&mu);
        seen.insert(std::move(id));
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(seen.size(), 8000u);
}

TEST(Tokens, RandomTokensAreLongAndDistinct) {
  auto a = RandomToken("hvs."), b = RandomToken("hvs.");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 28u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(ConstantTimeEquals(*a, *a));
  EXPECT_FALSE(ConstantTimeEquals(*a, *b));
  EXPECT_EQ(RandomUuid().size(), 36u);
}

TEST(Encoding, Base64AndHex) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(*Base64Decode("Zm8="), "fo");
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");
  EXPECT_FALSE(Base64Decode("Z!==").has_value());
  EXPECT_EQ(*HexDecode("0aFF"), std::string("\x0a\xff", 2));
  EXPECT_FALSE(HexDecode("0g").has_value());
}

// Base64 of every length from 0 to 200 bytes agrees with OpenSSL's encoder and decodes back;
// a character outside the alphabet at any place, a length of 4n+1 and non-zero leftover bits are
// refused.
TEST(Encoding, Base64MatchesOpenSslAtEveryLength) {
  std::string bytes;
  for (int i = 0; i < 200; ++i) bytes.push_back(static_cast<char>((i * 151 + 7) & 0xff));
  for (size_t n = 0; n <= bytes.size(); ++n) {
    SCOPED_TRACE(n);
    const std::string in = bytes.substr(0, n);
    std::string want(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(want.data()),
                        reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(n));
    want.resize(static_cast<size_t>(len));
    const std::string b64 = Base64Encode(in);
    EXPECT_EQ(b64, want);
    auto back = Base64Decode(b64);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, in);
    std::string unpadded = b64;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(Base64Decode(unpadded).value_or("(refused)"), in);
    for (size_t at = 0; at < unpadded.size(); ++at) {
      std::string bad = unpadded;
      bad[at] = at % 2 ? '!' : '\x80';
      EXPECT_FALSE(Base64Decode(bad).has_value()) << "bad character at " << at;
    }
  }
  EXPECT_FALSE(Base64Decode("Zm9vY").has_value());  // 4n+1 characters
  EXPECT_FALSE(Base64Decode("Zm9=").has_value());   // "fo" is Zm8=: leftover bits set
  EXPECT_FALSE(Base64Decode("Zh==").has_value());   // "f" is Zg==
  EXPECT_EQ(*Base64Decode("Zg=="), "f");
  EXPECT_EQ(*Base64Decode(""), "");
}

}  // namespace
}  // namespace coffer::crypto
