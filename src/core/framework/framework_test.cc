#include "core/framework/framework.h"

#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "storage/memory_storage.h"

namespace coffer::core::framework {
namespace {
namespace json = boost::json;

using Captures = std::vector<std::pair<std::string, std::string>>;

Handler Echo() {
  return [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    json::object o;
    for (const char* f : {"name", "ref", "fmt", "path"})
      if (d.Has(f)) o[f] = d.String(f);
    return Response::Data(std::move(o));
  };
}

FrameworkBackend Table() {
  std::vector<Path> paths;
  paths.push_back({.patterns = {"roles"}, .operations = {{Operation::kList, {Echo()}}}});
  paths.push_back({.patterns = {"roles/{name}"},
                   .fields = {{"name", {FieldType::kString, "role"}},
                              {"ttl", {FieldType::kDuration, "ttl", "1h"}},
                              {"max", {FieldType::kInt, "max", 7}},
                              {"on", {FieldType::kBool, "on", true}},
                              {"domains", {FieldType::kCommaStringSlice, "domains"}},
                              {"names", {FieldType::kStringSlice, "names"}},
                              {"labels", {FieldType::kMap, "labels"}},
                              {"must", {FieldType::kString, "needed"}}},
                   .operations = {{Operation::kRead, {Echo()}}, {Operation::kUpdate, {Echo()}}}});
  paths.push_back({.patterns = {"issuer/{ref}/crl/{fmt:pem|der}", "issuer/{ref}/crl"},
                   .operations = {{Operation::kRead, {Echo()}}},
                   .unsupported = "{op} on pki path \"{path}\""});
  paths.push_back({.patterns = {"data/{path*}"},
                   .operations = {{Operation::kRead, {Echo()}}, {Operation::kList, {Echo()}}}});
  paths.push_back({.patterns = {"{path*}"}, .operations = {{Operation::kDelete, {Echo()}}}});
  return FrameworkBackend("test backend", std::move(paths));
}

TEST(Framework, PatternsMatchSegmentsChoicesAndRest) {
  auto b = Table();
  Captures c;
  const Path* p = b.Match("roles/web", &c);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->patterns[0], "roles/{name}");
  EXPECT_EQ(c, (Captures{{"name", "web"}}));

  c.clear();
  p = b.Match("roles/", &c, /*list=*/true);  // LIST's trailing slash
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->patterns[0], "roles");
  // Any other operation matches exactly: "roles/web/" is not "roles/web".
  c.clear();
  EXPECT_EQ(b.Match("roles/web/", &c)->patterns[0], "{path*}");

  c.clear();
  p = b.Match("issuer/default/crl/pem", &c);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(c, (Captures{{"ref", "default"}, {"fmt", "pem"}}));
  c.clear();
  EXPECT_EQ(b.Match("issuer/default/crl", &c), p);
  // "json" is not one of the choices and nothing else matches the literal first segment ...
  c.clear();
  const Path* q = b.Match("issuer/default/crl/json", &c);
  // ... so the catch-all {path*} takes it, and captures nothing of the failed attempt.
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->patterns[0], "{path*}");
  EXPECT_EQ(c, (Captures{{"path", "issuer/default/crl/json"}}));

  c.clear();
  p = b.Match("data/a/b/", &c);  // rest keeps slashes, the trailing one too
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(c, (Captures{{"path", "a/b/"}}));
  c.clear();
  p = b.Match("data", &c);  // empty rest
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->patterns[0], "data/{path*}");
  EXPECT_EQ(c, (Captures{{"path", ""}}));

  c.clear();
  EXPECT_EQ(b.Match("roles/a/b", &c)->patterns[0], "{path*}");  // one segment only
  c.clear();
  EXPECT_EQ(b.Match("roles//", &c)->patterns[0], "{path*}");  // captures are non-empty
}

absl::StatusOr<Response> Call(FrameworkBackend& b, Operation op, std::string path,
                              json::object data = {}) {
  Request r;
  r.op = op;
  r.path = std::move(path);
  r.data = std::move(data);
  r.mount_point = "test/";
  r.mount_type = "test";
  return b.Handle(r);
}

TEST(Framework, FieldsAreTypeCheckedWithTheFieldsName) {
  auto b = Table();
  struct Case {
    const char* field;
    json::value value;
    const char* message;
  };
  const Case cases[] = {
      {"ttl", json::object{}, "ttl: "},
      {"ttl", "forever", "ttl: "},
      {"max", "seven", "field \"max\" must be an integer, got string \"seven\""},
      {"on", "maybe", "field \"on\" must be a boolean, got string"},
      {"domains", 3, "field \"domains\" must be a list of strings or a comma-separated string"},
      {"names", json::array{"a", json::object{}}, "field \"names\" must be a list of strings"},
      {"labels", "a=b", "field \"labels\" must be an object, got string"},
      {"must", json::array{}, "field \"must\" must be a string, got array"},
  };
  for (const auto& c : cases) {
    auto r = Call(b, Operation::kUpdate, "roles/web", json::object{{c.field, c.value}});
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(std::string(r.status().message()).find(c.message), std::string::npos)
        << c.field << ": " << r.status().message();
  }
}

TEST(Framework, FieldValuesAreNormalizedAndDefaultsApply) {
  std::map<std::string, FieldSchema> schema{
      {"ttl", {FieldType::kDuration, "", "1h"}}, {"max", {FieldType::kInt, "", 7}},
      {"on", {FieldType::kBool, "", true}},      {"domains", {FieldType::kCommaStringSlice, ""}},
      {"names", {FieldType::kStringSlice, ""}},  {"label", {FieldType::kString, ""}}};
  auto d = FieldData::Parse(schema, json::object{}, {});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->Has("ttl"));
  EXPECT_EQ(d->Duration("ttl"), 3600);
  EXPECT_EQ(d->Int("max"), 7);
  EXPECT_TRUE(d->Bool("on"));
  EXPECT_TRUE(d->Strings("domains").empty());

  d = FieldData::Parse(schema,
                       json::object{{"ttl", "90m"},
                                    {"max", "12"},
                                    {"on", "false"},
                                    {"domains", " a.com, ,b.com "},
                                    {"names", "x,y"},
                                    {"label", "42"},
                                    {"unknown", "ignored"}},
                       {});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->Has("ttl"));
  EXPECT_EQ(d->Duration("ttl"), 5400);
  EXPECT_EQ(d->Int("max"), 12);
  EXPECT_FALSE(d->Bool("on"));
  EXPECT_EQ(d->Strings("domains"), (std::vector<std::string>{"a.com", "b.com"}));
  EXPECT_EQ(d->Strings("names"), (std::vector<std::string>{"x,y"}));  // not comma-split
  EXPECT_EQ(d->String("label"), "42");
  // A number where a string belongs is refused (docs/compatibility.md), naming the field.
  EXPECT_EQ(FieldData::Parse(schema, json::object{{"label", 42}}, {}).status().message(),
            "field \"label\" must be a string, got number");
  EXPECT_FALSE(d->Has("unknown"));

  // URL captures win over the body.
  d = FieldData::Parse(schema, json::object{{"label", "body"}}, {{"label", "url"}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->String("label"), "url");

  std::map<std::string, FieldSchema> required{{"csr", {FieldType::kString, "", {}, true}}};
  auto missing = FieldData::Parse(required, json::object{}, {});
  EXPECT_EQ(missing.status().message(), "missing required field \"csr\"");
}

TEST(Framework, UnsupportedOperationsAre405AndUnknownPaths404) {
  auto b = Table();
  auto r = Call(b, Operation::kDelete, "roles/web");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(r.status().message(),
            "unsupported operation: delete on \"roles/web\"; this path supports: read, update");
  EXPECT_EQ(HttpStatusFor(r.status()), 405);
  r = Call(b, Operation::kUpdate, "issuer/x/crl/pem");
  EXPECT_EQ(r.status().message(), "unsupported operation: update on pki path \"issuer/x/crl/pem\"");
  // Create falls back to the update handler; HEAD to read.
  EXPECT_TRUE(Call(b, Operation::kCreate, "roles/web").ok());
  EXPECT_TRUE(Call(b, Operation::kHead, "roles/web").ok());

  std::vector<Path> none;
  none.push_back({.patterns = {"only"}, .operations = {{Operation::kRead, {Echo()}}}});
  FrameworkBackend small("", std::move(none));
  r = Call(small, Operation::kRead, "other");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "unsupported path \"other\" on the test mount at \"test/\"");
}

TEST(Framework, HelpAndOpenApiComeFromTheTable) {
  auto b = Table();
  Request req;
  req.op = Operation::kRead;
  req.path = "roles/web";
  req.query = {{"help", "1"}};
  req.mount_point = "pki/";
  auto r = b.Handle(req);
  ASSERT_TRUE(r.ok());
  const auto& d = *r->data;
  EXPECT_NE(std::string(d.at("help").as_string()).find("roles/{name}"), std::string::npos);
  EXPECT_EQ(d.at("fields").at("ttl").at("type").as_string(), "duration");
  EXPECT_EQ(d.at("fields").at("max").at("default").as_int64(), 7);
  EXPECT_EQ(d.at("operations").as_array().size(), 2u);
  EXPECT_TRUE(d.at("openapi").at("paths").as_object().contains("/pki/roles/{name}"));

  json::object paths;
  b.OpenApi("/pki/", paths);
  ASSERT_TRUE(paths.contains("/pki/roles/{name}"));
  const auto& item = paths.at("/pki/roles/{name}").as_object();
  EXPECT_TRUE(item.contains("get"));
  EXPECT_TRUE(item.contains("post"));
  EXPECT_EQ(item.at("parameters").as_array()[0].at("name").as_string(), "name");
  EXPECT_EQ(item.at("post")
                .at("requestBody")
                .at("content")
                .at("application/json")
                .at("schema")
                .at("properties")
                .at("domains")
                .at("type")
                .as_string(),
            "array");
  ASSERT_TRUE(paths.contains("/pki/issuer/{ref}/crl/{fmt}"));
}

TEST(Framework, ExistenceCheckRunsWithParsedFields) {
  std::vector<Path> paths;
  paths.push_back(
      {.patterns = {"items/{name}"},
       .operations = {{Operation::kUpdate, {Echo()}}},
       .exists = [](Request&, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
         return std::optional<bool>(d.String("name") == "there");
       }});
  FrameworkBackend b("", std::move(paths));
  Request r;
  r.op = Operation::kUpdate;
  r.path = "items/there";
  EXPECT_EQ(**b.Exists(r), true);
  r.path = "items/missing";
  EXPECT_EQ(**b.Exists(r), false);
  r.path = "elsewhere";
  EXPECT_FALSE(b.Exists(r)->has_value());  // no opinion: the core asks for update
}

TEST(SpecialPaths, VaultGlobSyntax) {
  PathList l{"root", "cert/*", "issuer/+/pem", "accessors*", "issuers/"};
  EXPECT_TRUE(l.Matches("root"));
  EXPECT_FALSE(l.Matches("root/"));
  EXPECT_FALSE(l.Matches("rootx"));
  EXPECT_TRUE(l.Matches("cert/"));
  EXPECT_TRUE(l.Matches("cert/ab:cd"));
  EXPECT_FALSE(l.Matches("cert"));
  EXPECT_TRUE(l.Matches("issuer/default/pem"));
  EXPECT_FALSE(l.Matches("issuer//pem"));
  EXPECT_FALSE(l.Matches("issuer/a/b/pem"));
  EXPECT_FALSE(l.Matches("issuer/a/pem/x"));
  EXPECT_TRUE(l.Matches("accessors"));
  EXPECT_TRUE(l.Matches("accessors/"));
  EXPECT_TRUE(l.Matches("issuers/"));
  EXPECT_FALSE(l.Matches("issuers"));
  EXPECT_FALSE(PathList{}.Matches(""));
}

}  // namespace
}  // namespace coffer::core::framework

namespace coffer::core::framework {
namespace {

TEST(Framework, FieldsAPathDoesNotDeclareAreRefusedWithTheirName) {
  auto b = Table();
  auto r = Call(b, Operation::kUpdate, "roles/web", {{"must", "x"}, {"colour", "blue"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusFor(r.status()), 400);
  EXPECT_NE(r.status().message().find("unknown field \"colour\""), std::string::npos);
  EXPECT_NE(r.status().message().find("this path takes: domains, labels, max, must, name, names, "
                                      "on, ttl"),
            std::string::npos);
  // Unset parameters as clients send them (null or the zero value) ask for nothing.
  for (json::value zero :
       {json::value(nullptr), json::value(false), json::value(""), json::value(0),
        json::value(json::array()), json::value(json::object())}) {
    EXPECT_TRUE(Call(b, Operation::kUpdate, "roles/web", {{"must", "x"}, {"colour", zero}}).ok())
        << json::serialize(zero);
  }
  // A free-form body takes anything.
  std::vector<Path> free;
  free.push_back(
      {.patterns = {"{path*}"}, .operations = {{Operation::kUpdate, {Echo()}}}, .any_field = true});
  FrameworkBackend open("", std::move(free));
  EXPECT_TRUE(Call(open, Operation::kUpdate, "a/b", {{"anything", "goes"}}).ok());
}

}  // namespace
}  // namespace coffer::core::framework
