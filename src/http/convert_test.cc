#include "http/convert.h"

#include <gtest/gtest.h>

#include <string>

#include "boost/json.hpp"

namespace coffer::http {
namespace {
namespace json = boost::json;

// Vault's envelope as a JSON object, in Vault's key order: what RenderResponse must write, byte
// for byte, as boost::json serializes it.
std::string Envelope(const core::Response& r, const core::Request& req) {
  json::object env{{"request_id", req.id},
                   {"lease_id", r.lease_id},
                   {"renewable", r.renewable},
                   {"lease_duration", r.lease_duration},
                   {"data", r.data ? json::value(*r.data) : json::value(nullptr)},
                   {"wrap_info", r.wrap_info ? json::value(*r.wrap_info) : json::value(nullptr)},
                   {"warnings", nullptr},
                   {"auth", r.auth ? json::value(*r.auth) : json::value(nullptr)},
                   {"mount_type", req.mount_type}};
  if (!r.warnings.empty()) {
    json::array w;
    for (const auto& s : r.warnings) w.emplace_back(s);
    env["warnings"] = std::move(w);
  }
  if (r.duplicate_data_at_top && r.data)
    for (const auto& [k, v] : *r.data)
      if (!env.contains(k)) env[k] = v;
  return json::serialize(env);
}

core::Request Req() {
  core::Request req;
  req.id = "3f1c2a9e-0000-4000-8000-00000000abcd";
  req.mount_type = "pki";
  return req;
}

TEST(RenderResponse, WritesVaultsEnvelopeWithTheData) {
  core::Request req = Req();
  core::Response r;
  // Strings that need escaping: a PEM's newlines, quotes, a backslash, a control byte, UTF-8.
  r.data = json::object{
      {"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\"x\"\\y\x01\n-----END CERTIFICATE-----\n"},
      {"ca_chain", json::array{"a", "b"}},
      {"expiration", 1767225600},
      {"name", "n\xc3\xa9ud"},
      {"nested", json::object{{"ok", true}, {"none", nullptr}, {"ratio", 0.5}}}};
  r.lease_id = "pki/issue/web/abc";
  r.lease_duration = 3600;
  r.renewable = true;
  const RawResponse out = RenderResponse(r, req);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.content_type, "application/json");
  EXPECT_EQ(out.body, Envelope(r, req));
  const json::object parsed = json::parse(out.body).as_object();
  EXPECT_EQ(parsed.at("data").at("certificate").as_string(),
            "-----BEGIN CERTIFICATE-----\nMIIB\"x\"\\y\x01\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(parsed.at("lease_duration").as_int64(), 3600);
  EXPECT_TRUE(parsed.at("wrap_info").is_null());
  EXPECT_TRUE(parsed.at("warnings").is_null());
  EXPECT_EQ(parsed.at("mount_type").as_string(), "pki");
}

TEST(RenderResponse, WarningsAuthAndWrapInfo) {
  core::Request req = Req();
  req.mount_type = "";
  core::Response r;
  r.auth = json::object{{"client_token", "hvs.x"}, {"policies", json::array{"default"}}};
  r.warnings = {"first \"one\"", "second\nline"};
  EXPECT_EQ(RenderResponse(r, req).body, Envelope(r, req));
  core::Response w;
  w.wrap_info = json::object{{"token", "hvs.w"}, {"ttl", 60}};
  EXPECT_EQ(RenderResponse(w, req).body, Envelope(w, req));
}

TEST(RenderResponse, DataRepeatedAtTopLevelKeepsTheEnvelopesKeys) {
  core::Request req = Req();
  core::Response r;
  r.data = json::object{{"secret/", json::object{{"type", "kv"}}},
                        {"request_id", "must not replace the envelope's"},
                        {"data", "nor this"}};
  r.duplicate_data_at_top = true;
  const RawResponse out = RenderResponse(r, req);
  EXPECT_EQ(out.body, Envelope(r, req));
  const json::object parsed = json::parse(out.body).as_object();
  EXPECT_EQ(parsed.at("request_id").as_string(), req.id);
  EXPECT_EQ(parsed.at("secret/").at("type").as_string(), "kv");
  EXPECT_TRUE(parsed.at("data").is_object());
}

TEST(RenderResponse, LargeDataIsWrittenWhole) {
  core::Request req = Req();
  core::Response r;
  json::array many;
  for (int i = 0; i < 2000; ++i)
    many.emplace_back(std::string(37, static_cast<char>('a' + i % 26)));
  r.data = json::object{{"keys", many}};
  const RawResponse out = RenderResponse(r, req);
  EXPECT_GT(out.body.size(), 2000u * 37);
  EXPECT_EQ(out.body, Envelope(r, req));
}

TEST(RenderResponse, ErrorsEmptyAndRawBodies) {
  core::Request req = Req();
  const RawResponse err = RenderResponse(absl::NotFoundError("no such \"thing\""), req);
  EXPECT_EQ(err.status, 404);
  EXPECT_EQ(err.body, R"({"errors":["no such \"thing\""]})");
  core::Response empty;
  const RawResponse none = RenderResponse(empty, req);
  EXPECT_EQ(none.status, 204);
  EXPECT_EQ(none.body, "");
  core::Response raw;
  raw.raw = true;
  raw.content_type = "application/pkix-cert";
  raw.raw_body = std::string("\x30\x82\x01\x00", 4);
  const RawResponse der = RenderResponse(raw, req);
  EXPECT_EQ(der.status, 200);
  EXPECT_EQ(der.content_type, "application/pkix-cert");
  EXPECT_EQ(der.body, raw.raw_body);
}

}  // namespace
}  // namespace coffer::http
