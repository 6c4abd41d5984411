#include "util/human_time.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

constexpr int64_t kNow = 1796058000;  // 2026-11-30T17:00:00Z
constexpr int64_t kDay = 86400, kHour = 3600;

TEST(HumanTime, InstantsAndSpans) {
  EXPECT_EQ(Rfc3339Utc(kNow), "2026-11-30T17:00:00Z");
  EXPECT_EQ(SpanText(364 * kDay + 23 * kHour + 59), "364d 23h");
  EXPECT_EQ(SpanText(5 * kHour + int64_t{3} * 60 + 2), "5h 3m");
  EXPECT_EQ(SpanText(kDay), "1d");
  EXPECT_EQ(SpanText(42), "42s");
  EXPECT_EQ(SpanText(0), "0s");
  EXPECT_EQ(Remaining(kNow + 365 * kDay - 3600, kNow), "in 364d 23h");
  EXPECT_EQ(Remaining(kNow - 2 * kDay - 3 * kHour, kNow), "expired 2d 3h ago");
  EXPECT_EQ(ExpiryText(kNow + 86400, kNow), "2026-12-01T17:00:00Z (in 1d)");
}

TEST(HumanTime, TtlsAsVaultPrintsThem) {
  EXPECT_EQ(TtlText(8760 * kHour), "8760h");
  EXPECT_EQ(TtlText(24 * kHour), "24h");
  EXPECT_EQ(TtlText(5400), "1h30m");
  EXPECT_EQ(TtlText(125), "2m5s");
  EXPECT_EQ(TtlText(45), "45s");
  EXPECT_EQ(TtlText(0), "0s");
}

TEST(HumanTime, KubeadmColumns) {
  EXPECT_EQ(KubeadmDate(kNow + 365 * kDay), "Nov 30, 2027 17:00 UTC");
  EXPECT_EQ(KubeadmDate(1767225600), "Jan 01, 2026 00:00 UTC");
  EXPECT_EQ(KubeadmResidual(kNow + 365 * kDay - 60, kNow), "364d");
  EXPECT_EQ(KubeadmResidual(kNow + kDay * 365 * 10, kNow), "10y");
  EXPECT_EQ(KubeadmResidual(kNow + 23 * kHour, kNow), "23h");
  EXPECT_EQ(KubeadmResidual(kNow + 90, kNow), "90s");
  EXPECT_EQ(KubeadmResidual(kNow - 1, kNow), "<invalid>");
}

}  // namespace
}  // namespace coffer
