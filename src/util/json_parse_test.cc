#include "util/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace coffer {
namespace {

std::string Error(std::string_view text, const JsonLimits& l = {}) {
  auto v = ParseUntrustedJson(text, l);
  EXPECT_FALSE(v.ok()) << text.substr(0, 80);
  return v.ok() ? "" : std::string(v.status().message());
}

TEST(JsonParse, AcceptsOrdinaryDocuments) {
  auto v = ParseUntrustedJson(R"({"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c":"\u00e9"})");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->at("a").as_array().size(), 7u);
  EXPECT_EQ(v->at("c").as_string(), "\xc3\xa9");
}

TEST(JsonParse, RefusesNumbersThatOverflowToInfinity) {
  // Boost.JSON alone reads these as +-Infinity, which serialize() writes back as non-JSON.
  for (const char* t : {R"({"a":1e999999})", R"({"a":-1e400})", R"([1e309])"})
    EXPECT_NE(Error(t).find("out of range"), std::string::npos) << t;
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":1e308,"b":1e-400})").ok());  // underflow is 0
}

TEST(JsonParse, EachLimitIsNamedWithItsConfigKey) {
  JsonLimits l;
  l.max_depth = 3;
  l.max_string_bytes = 8;
  l.max_object_entries = 2;
  l.max_array_elements = 3;
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":[[1]]})", l).ok());
  EXPECT_NE(Error(R"({"a":[[[1]]]})", l).find("max_json_depth = 3"), std::string::npos);
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":"12345678"})", l).ok());
  EXPECT_NE(Error(R"({"a":"123456789"})", l).find("max_json_string_value_length"),
            std::string::npos);
  EXPECT_NE(Error(R"({"123456789":1})", l).find("object key"), std::string::npos);
  EXPECT_NE(Error(R"({"a":1234567890})", l).find("number"), std::string::npos);
  // Escapes count as the bytes they decode to.
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":"\n\n\n\n\n\n\n\n"})", l).ok());
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":1,"b":2})", l).ok());
  EXPECT_NE(Error(R"({"a":1,"b":2,"c":3})", l).find("max_json_object_entry_count = 2"),
            std::string::npos);
  EXPECT_TRUE(ParseUntrustedJson(R"({"a":[1,"x",{}]})", l).ok());
  EXPECT_NE(Error(R"({"a":[1,"x",{},null]})", l).find("max_json_array_element_count = 3"),
            std::string::npos);
}

TEST(JsonParse, NestedArraysWithinTheOtherLimitsAreBoundedInTotal) {
  JsonLimits l;
  l.max_tokens = 20;
  // 4 arrays of 4: 21 values (the outer array counts too).
  EXPECT_NE(Error("[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]", l).find("max_json_token = 20"),
            std::string::npos);
  EXPECT_TRUE(ParseUntrustedJson("[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3]]", l).ok());
  // With the defaults: 201 arrays of 5,000 zeros pass every per-container limit but hold over a
  // million values.
  std::string inner = "[0";
  for (int i = 1; i < 5000; ++i) inner += ",0";
  inner += "]";
  std::string body = "[" + inner;
  for (int i = 1; i < 201; ++i) body += "," + inner;
  body += "]";
  EXPECT_NE(Error(body).find("max_json_token = 1000000"), std::string::npos);
}

TEST(JsonParse, AHugeArrayIsRefusedWithoutBeingBuilt) {
  // The body of the amplification attack: 30 MB of zeros is 15 M elements.
  std::string body = R"({"v":[0)";
  body.reserve(30'000'100);
  while (body.size() < 30'000'000) body += ",0";
  body += "]}";
  EXPECT_NE(Error(body).find("max_json_array_element_count = 10000"), std::string::npos);
}

TEST(JsonParse, SyntaxErrorsAndTrailingDataAreRefused) {
  EXPECT_NE(Error(R"({"a":1} x)").find("failed to parse JSON input"), std::string::npos);
  EXPECT_NE(Error(R"({"a":)").find("failed to parse JSON input"), std::string::npos);
  EXPECT_NE(Error("{\"a\":1,}").find("failed to parse JSON input"), std::string::npos);
  EXPECT_NE(Error(R"({"a":"\q"})").find("failed to parse JSON input"), std::string::npos);
  EXPECT_NE(Error("{\"a\":\"\xff\"}").find("failed to parse JSON input"), std::string::npos);
}

TEST(JsonParse, DepthAtTheDefaultLimitParses) {
  std::string deep(500, '['), close(500, ']');
  EXPECT_TRUE(ParseUntrustedJson(deep + close).ok());
  EXPECT_NE(Error("[" + deep + close + "]").find("max_json_depth = 500"), std::string::npos);
}

}  // namespace
}  // namespace coffer
