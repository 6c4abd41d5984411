#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "util/duration.h"
#include "util/json.h"

namespace coffer {
namespace {

TEST(Duration, VaultForms) {
  EXPECT_EQ(*ParseDurationSeconds("90"), 90);
  EXPECT_EQ(*ParseDurationSeconds("90s"), 90);
  EXPECT_EQ(*ParseDurationSeconds("15m"), 900);
  EXPECT_EQ(*ParseDurationSeconds("1h30m"), 5400);
  EXPECT_EQ(*ParseDurationSeconds("2d"), 172800);
  EXPECT_EQ(*ParseDurationSeconds("1.5h"), 5400);
  EXPECT_EQ(*ParseDurationSeconds(boost::json::value(3600)), 3600);
}

TEST(Duration, GarbageIsAnErrorNotACrash) {
  // ".h30m" once reached std::stod and threw (found by fuzz/json_body_fuzz).
  for (const char* bad :
       {"", ".h30m", ".", "1.2.3h", "h", "10y", "-5s", "1e400h", "99999999999999999"})
    EXPECT_EQ(ParseDurationSeconds(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(-1)).ok());
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(boost::json::array{})).ok());
}

TEST(JsonFields, TypesAndMessages) {
  boost::json::object o{
      {"n", 5}, {"s", "7"}, {"b", "true"}, {"x", "abc"}, {"arr", boost::json::array{}}};
  EXPECT_EQ(**JsonInt(o, "n"), 5);
  EXPECT_EQ(**JsonInt(o, "s"), 7);
  EXPECT_EQ(std::string(JsonInt(o, "x").status().message()),
            "field \"x\" must be an integer, got string \"abc\"");
  EXPECT_TRUE(**JsonBool(o, "b"));
  EXPECT_FALSE(JsonBool(o, "arr").ok());
  EXPECT_FALSE(JsonString(o, "n").ok());
  EXPECT_FALSE(JsonInt(o, "missing")->has_value());
}

}  // namespace
}  // namespace coffer
