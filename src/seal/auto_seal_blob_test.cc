// The stored seal configuration and wrapped-key format: round trips, and corrupt input is a
// DataLoss error, never a crash or a half-read value.
#include <gtest/gtest.h>

#include "seal/seal.h"

namespace coffer::seal {
namespace {

TEST(SealConfigFormat, RoundTripsAndReadsOldShamirConfigs) {
  SealConfig c;
  c.type = "pkcs11";
  c.secret_shares = 1;
  c.secret_threshold = 1;
  c.recovery_shares = 5;
  c.recovery_threshold = 3;
  auto back = ParseSealConfig(SerializeSealConfig(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->type, "pkcs11");
  EXPECT_TRUE(back->recovery());
  EXPECT_EQ(back->shares(), 5);
  EXPECT_EQ(back->threshold(), 3);
  // What a store written before auto seals holds.
  auto old = ParseSealConfig(R"({"type":"shamir","secret_shares":5,"secret_threshold":3})");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->recovery());
  EXPECT_EQ(old->shares(), 5);
}

TEST(SealConfigFormat, CorruptIsDataLoss) {
  for (const char* bad : {"", "[]", "{", R"({"type":7})", R"({"secret_shares":0})",
                          R"({"secret_shares":3,"secret_threshold":4})",
                          R"({"type":"transit","secret_shares":1,"secret_threshold":1})",
                          R"({"secret_shares":"5","secret_threshold":3})",
                          R"({"secret_shares":300,"secret_threshold":3})"}) {
    auto r = ParseSealConfig(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

TEST(WrappedBlobFormat, RoundTripsAndRefusesCorrupt) {
  WrappedBlob b{"transit", "autounseal:v2", std::string("\x00\x01\xffzz", 5)};
  auto back = ParseWrappedBlob(SerializeWrappedBlob(b));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->seal, "transit");
  EXPECT_EQ(back->key_id, "autounseal:v2");
  EXPECT_EQ(back->ciphertext, b.ciphertext);
  for (const char* bad : {"", "null", R"({"seal":"transit","key_id":"k"})",
                          R"({"seal":"transit","key_id":"k","ciphertext":"!!"})",
                          R"({"seal":"","key_id":"k","ciphertext":"AAAA"})",
                          R"({"seal":"transit","key_id":1,"ciphertext":"AAAA"})"}) {
    EXPECT_EQ(ParseWrappedBlob(bad).status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

}  // namespace
}  // namespace coffer::seal
