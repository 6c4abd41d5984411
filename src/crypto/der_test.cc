#include "crypto/der.h"

#include <gtest/gtest.h>

#include "util/encoding.h"

namespace coffer::crypto {
namespace {

TEST(Der, StrictLengths) {
  std::string_view ok("\x30\x03\x02\x01\x05", 5);
  auto t = der::Expect(ok, der::kSequence);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->contents.size(), 3u);
  EXPECT_TRUE(ok.empty());
  for (std::string_view bad : {std::string_view("\x30\x81\x03\x02\x01\x05", 6),  // long form < 128
                               std::string_view("\x30\x80\x00\x00", 4),          // indefinite
                               std::string_view("\x30\x04\x02\x01\x05", 5),      // truncated
                               std::string_view("\x1f\x01\x00", 3),              // high tag
                               std::string_view("\x30\x82\x00\x80", 4)}) {       // leading zero
    std::string_view in = bad;
    EXPECT_FALSE(der::Next(in)) << HexEncode(bad);
  }
}

}  // namespace
}  // namespace coffer::crypto
