#include "cli/output.h"

#include <gtest/gtest.h>

#include "boost/json.hpp"

namespace coffer::cli {
namespace {
namespace json = boost::json;

TEST(IndentedJson, TwoSpacesAsGo) {
  json::value v = json::parse(R"({"a":1,"b":[true,null],"c":{},"d":[],"e":{"f":"x\ny"}})");
  EXPECT_EQ(IndentedJson(v),
            "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null\n  ],\n  \"c\": {},\n  \"d\": [],\n"
            "  \"e\": {\n    \"f\": \"x\\ny\"\n  }\n}");
}

TEST(Yaml, KeysSortedSequencesUnderKeysNotIndented) {
  json::value v = json::parse(R"({"z":1,"a":["x","y"],"m":{"k":"v"},"e":{},"l":[]})");
  EXPECT_EQ(Yaml(v), "a:\n- x\n- \"y\"\ne: {}\nl: []\nm:\n  k: v\nz: 1");
}

TEST(Yaml, QuotesWhatYamlWouldReadAsAnotherType) {
  for (const char* s : {"true", "no", "~", "null", "123", "-1", "0755", "0x1f", "1.5", ".5", "1e3",
                        "1:20", ".inf", "2026-01-02", "2026-01-02T03:04:05Z", ""})
    EXPECT_EQ(Yaml(json::value(s)), "\"" + std::string(s) + "\"") << s;
  for (const char* s : {"hello world", "abc-123", "3f1a0c2e-5b", "hvs.abc", "a,b", "-x", "a:b"})
    EXPECT_EQ(Yaml(json::value(s)), s) << s;
}

TEST(Yaml, SingleQuotesYamlSyntax) {
  EXPECT_EQ(Yaml(json::value("a: b")), "'a: b'");
  EXPECT_EQ(Yaml(json::value(" lead")), "' lead'");
  EXPECT_EQ(Yaml(json::value("#x")), "'#x'");
  EXPECT_EQ(Yaml(json::value("it's: x")), "'it''s: x'");
  EXPECT_EQ(Yaml(json::value("- x")), "'- x'");
  EXPECT_EQ(Yaml(json::value("a\tb")), "\"a\\tb\"");
}

TEST(Yaml, MultiLineStringsAreLiteralBlocks) {
  json::value v = json::parse(R"({"pem":"-----BEGIN-----\nabc\n-----END-----","nl":"a\n"})");
  EXPECT_EQ(Yaml(v), "nl: |\n  a\npem: |-\n  -----BEGIN-----\n  abc\n  -----END-----");
  EXPECT_EQ(Yaml(json::parse(R"(["a\n\nb"])")), "- |-\n  a\n\n  b");
  // A space before a line break rules out a block (libyaml): double quotes.
  EXPECT_EQ(Yaml(json::value("a \nb")), "\"a \\nb\"");
}

TEST(Yaml, CollectionsInSequences) {
  json::value v = json::parse(R"([{"b":1,"a":2},["x","y"]])");
  EXPECT_EQ(Yaml(v), "- a: 2\n  b: 1\n- - x\n  - \"y\"");
}

TEST(Pretty, OutlineIndentedThreeSpaces) {
  json::value v = json::parse(R"({"name":"x","data":{"k":"v","list":["a","b"]},"n":null})");
  EXPECT_EQ(Pretty(v), "data:\n   k:    v\n   list:\n      a\n      b\nn:       n/a\nname:    x\n");
}

TEST(CurlString, AsVaultPrintsIt) {
  http::ClientOptions o;
  o.address = "https://127.0.0.1:8200";
  o.token = "hvs.secret";
  o.ca_cert = "/tmp/ca's.pem";
  EXPECT_EQ(CurlString(o, "PUT", "/v1/secret/data/foo", R"({"foo":"it's"})"),
            "curl -X PUT --cacert '/tmp/ca'\"'\"'s.pem' -H \"X-Vault-Request: true\" "
            "-H \"X-Vault-Token: $(coffer print token)\" -d '{\"foo\":\"it'\"'\"'s\"}' "
            "https://127.0.0.1:8200/v1/secret/data/foo");
  o.token.clear();
  o.ca_cert.clear();
  o.skip_verify = true;
  EXPECT_EQ(CurlString(o, "LIST", "/v1/secret/metadata/", ""),
            "curl --insecure -H \"X-Vault-Request: true\" "
            "'https://127.0.0.1:8200/v1/secret/metadata/?list=true'");
}

}  // namespace
}  // namespace coffer::cli
