#include "util/human_time.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

namespace coffer {
namespace {

constexpr int64_t kNow = 1796058000;  // 2026-11-30T17:00:00Z
constexpr int64_t kDay = 86400, kHour = 3600;

// The hand-written calendar arithmetic against the C library's, over leap days, century years
// (2000 is a leap year, 2100 is not), the epoch, instants before it and the last second of 9999;
// years before 1000 keep four digits as RFC 3339 wants.
TEST(HumanTime, Rfc3339MatchesGmtime) {
  auto libc = [](int64_t t) {
    std::tm tm{};
    const auto tt = static_cast<std::time_t>(t);
    gmtime_r(&tt, &tm);
    char buf[64];
    return std::string(buf, std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm));
  };
  EXPECT_EQ(Rfc3339Utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339Utc(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(Rfc3339Utc(951782400), "2000-02-29T00:00:00Z");
  EXPECT_EQ(Rfc3339Utc(4107542400), "2100-03-01T00:00:00Z");
  EXPECT_EQ(Rfc3339Utc(253402300799), "9999-12-31T23:59:59Z");
  EXPECT_EQ(Rfc3339Utc(-62135596800), "0001-01-01T00:00:00Z");  // glibc writes "1-01-01..."
  for (int64_t t = -30610224000; t < 253402300800; t += 86400 * 7 + 3607)
    ASSERT_EQ(Rfc3339Utc(t), libc(t)) << t;
  for (int64_t t = 946684800 - 86400 * 3; t < 946684800 + 86400 * 70; t += 61)
    ASSERT_EQ(Rfc3339Utc(t), libc(t)) << t;
}

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
