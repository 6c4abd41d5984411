#include "auth/github/github_backend.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "http/client.h"
#include "util/duration.h"
#include "util/json_parse.h"
#include "util/status.h"

namespace coffer::auth::github {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;
using core::framework::Path;

namespace {

constexpr std::string_view kDefaultBaseUrl = "https://api.github.com/";
constexpr std::string_view kHelp =
    "The GitHub auth method logs in members of a GitHub organization with a personal access "
    "token: the token's user must belong to the configured organization; the policies come from "
    "token_policies, the user's teams (map/teams) and the user (map/users).";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The base URL split for http::Call: scheme://host[:port] and the path prefix ("/api/v3/").
struct Base {
  std::string address, prefix;
};

absl::StatusOr<Base> ParseBase(std::string_view url) {
  const bool https = url.substr(0, 8) == "https://";
  const bool http = url.substr(0, 7) == "http://";
  if (!https && !http) return absl::InvalidArgumentError("base_url must start with https://");
  std::string_view rest = url.substr(https ? 8 : 7);
  const size_t slash = rest.find('/');
  Base b;
  b.address = Cat(https ? "https://" : "http://", rest.substr(0, slash));
  b.prefix = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (b.prefix.back() != '/') b.prefix.push_back('/');
  if (!https) {
    // A GitHub token must not cross a network in clear: plain HTTP only to this machine (a test
    // double of the API).
    std::string_view host = rest.substr(0, std::min(slash, rest.find(':')));
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]")
      return absl::InvalidArgumentError(
          "base_url must use https:// (plain http:// is only allowed to 127.0.0.1 or localhost)");
  }
  return b;
}

std::vector<std::string> SplitPolicies(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    std::string_view p = s.substr(start, end == std::string_view::npos ? end : end - start);
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.front()))) p.remove_prefix(1);
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.remove_suffix(1);
    if (!p.empty()) out.emplace_back(p);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

json::array ToArray(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

absl::StatusOr<std::optional<json::object>> GetJson(storage::Storage* s, std::string_view key) {
  ASSIGN_OR_RETURN(auto raw, s->Get(key));
  if (!raw) return std::optional<json::object>();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError(Cat("stored ", key, " is not JSON"));
  return std::optional<json::object>(std::move(v.as_object()));
}

std::string Text(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

int64_t Number(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_number() ? v->to_number<int64_t>() : 0;
}

class GithubBackend final : public core::framework::FrameworkBackend {
 public:
  explicit GithubBackend(std::vector<Path> paths)
      : FrameworkBackend(std::string(kHelp), std::move(paths),
                         core::SpecialPaths{.unauthenticated = {"login"}}) {}
};

absl::StatusOr<Response> ReadConfig(Request& req, const FieldData&) {
  ASSIGN_OR_RETURN(auto cfg, GetJson(req.storage, "config"));
  json::object c = cfg.value_or(json::object{});
  json::array policies = c.contains("token_policies") && c["token_policies"].is_array()
                             ? c["token_policies"].as_array()
                             : json::array{};
  return Response::Data(json::object{{"organization", Text(c, "organization")},
                                     {"organization_id", Number(c, "organization_id")},
                                     {"base_url", Text(c, "base_url")},
                                     {"token_policies", policies},
                                     {"token_ttl", Number(c, "token_ttl")},
                                     {"token_max_ttl", Number(c, "token_max_ttl")}});
}

absl::StatusOr<Response> WriteConfig(Request& req, const FieldData& d) {
  ASSIGN_OR_RETURN(auto cfg, GetJson(req.storage, "config"));
  json::object c = cfg.value_or(json::object{});
  if (d.Has("organization")) c["organization"] = d.String("organization");
  if (d.Has("organization_id")) c["organization_id"] = d.Int("organization_id");
  if (d.Has("base_url")) {
    std::string url = d.String("base_url");
    if (!url.empty()) RETURN_IF_ERROR(ParseBase(url).status());
    c["base_url"] = url;
  }
  if (d.Has("token_policies")) c["token_policies"] = ToArray(d.Strings("token_policies"));
  // ttl and max_ttl are Vault's older names.
  for (auto [field, old] :
       {std::pair<const char*, const char*>{"token_ttl", "ttl"}, {"token_max_ttl", "max_ttl"}}) {
    if (d.Has(field))
      c[field] = d.Duration(field);
    else if (d.Has(old))
      c[field] = d.Duration(old);
  }
  if (Number(c, "token_ttl") < 0 || Number(c, "token_max_ttl") < 0)
    return absl::InvalidArgumentError("token_ttl and token_max_ttl must not be negative");
  RETURN_IF_ERROR(req.storage->Put("config", json::serialize(c)));
  return Response::Empty();
}

// map/teams/<team> and map/users/<user>: a comma-separated list of policies.
core::framework::Handler MapRead(const std::string& kind) {
  return [kind](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(Cat("map/", kind, "/", Lower(d.String("key")))));
    if (!raw) return absl::NotFoundError("");
    return Response::Data(json::object{{"key", d.String("key")}, {"value", *raw}});
  };
}
core::framework::Handler MapWrite(const std::string& kind) {
  return [kind](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string policies = d.String("value");
    // Stored as given, compared case-insensitively (GitHub names are).
    RETURN_IF_ERROR(req.storage->Put(Cat("map/", kind, "/", Lower(d.String("key"))), policies));
    return Response::Empty();
  };
}
core::framework::Handler MapDelete(const std::string& kind) {
  return [kind](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(req.storage->Delete(Cat("map/", kind, "/", Lower(d.String("key")))));
    return Response::Empty();
  };
}
core::framework::Handler MapList(const std::string& kind) {
  return [kind](Request& req, const FieldData&) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(auto keys, req.storage->List(Cat("map/", kind, "/")));
    if (keys.empty()) return absl::NotFoundError("");
    return Response::Data(json::object{{"keys", ToArray(keys)}});
  };
}

// One GET of the GitHub API with the caller's token.
absl::StatusOr<json::value> Api(const Base& base, const std::string& token, std::string_view path) {
  http::ClientOptions o;
  o.address = base.address;
  o.timeout = std::chrono::seconds(15);
  o.headers = {{"Authorization", "Bearer " + token}, {"Accept", "application/vnd.github+json"}};
  auto r = http::Call(o, "GET", Cat(base.prefix, path));
  if (!r.ok())
    return absl::UnavailableError(Cat("the GitHub API did not answer: ", Msg(r.status())));
  if (r->status == 401 || r->status == 403)
    return absl::PermissionDeniedError("the GitHub token was refused by the GitHub API");
  if (r->status != 200)
    return absl::UnavailableError(Cat("the GitHub API answered ", r->status, " to ", path));
  // Another service's answer: bounded as a request body is.
  auto v = ParseUntrustedJson(r->body);
  if (!v.ok())
    return absl::UnavailableError(
        Cat("the GitHub API's answer to ", path, " is not usable JSON: ", Msg(v.status())));
  return *v;
}

absl::StatusOr<Response> Login(Request& req, const FieldData& d) {
  const std::string token = d.String("token");
  if (token.empty()) return absl::InvalidArgumentError("missing token");
  ASSIGN_OR_RETURN(auto cfg, GetJson(req.storage, "config"));
  if (!cfg || Text(*cfg, "organization").empty())
    return absl::InvalidArgumentError(
        "organization not found in config: write auth/<mount>/config organization=<org>");
  const std::string org = Lower(Text(*cfg, "organization"));
  const int64_t org_id = Number(*cfg, "organization_id");
  std::string url = Text(*cfg, "base_url");
  ASSIGN_OR_RETURN(Base base, ParseBase(url.empty() ? kDefaultBaseUrl : url));

  ASSIGN_OR_RETURN(json::value user, Api(base, token, "user"));
  if (!user.is_object() || !user.as_object().contains("login"))
    return absl::UnavailableError("the GitHub API's user has no login");
  const std::string login = std::string(user.as_object()["login"].as_string());

  ASSIGN_OR_RETURN(json::value orgs, Api(base, token, "user/orgs?per_page=100"));
  bool member = false;
  if (orgs.is_array())
    for (const auto& o : orgs.as_array())
      if (o.is_object() && ((org_id != 0 && Number(o.as_object(), "id") == org_id) ||
                            Lower(Text(o.as_object(), "login")) == org))
        member = true;
  if (!member) return absl::PermissionDeniedError("user is not part of required org");

  std::set<std::string> policies;
  if (const auto* tp = cfg->if_contains("token_policies"); tp && tp->is_array())
    for (const auto& p : tp->as_array())
      if (p.is_string()) policies.emplace(p.as_string());
  ASSIGN_OR_RETURN(json::value teams, Api(base, token, "user/teams?per_page=100"));
  if (teams.is_array())
    for (const auto& t : teams.as_array()) {
      if (!t.is_object()) continue;
      const auto& to = t.as_object();
      const auto* o = to.if_contains("organization");
      if (!o || !o->is_object() || Lower(Text(o->as_object(), "login")) != org) continue;
      // A team is mapped by its name or its slug.
      for (const std::string& key : {Lower(Text(to, "name")), Lower(Text(to, "slug"))}) {
        if (key.empty()) continue;
        ASSIGN_OR_RETURN(auto mapped, req.storage->Get("map/teams/" + key));
        if (mapped)
          for (auto& p : SplitPolicies(*mapped)) policies.insert(p);
      }
    }
  ASSIGN_OR_RETURN(auto user_map, req.storage->Get("map/users/" + Lower(login)));
  if (user_map)
    for (auto& p : SplitPolicies(*user_map)) policies.insert(p);

  core::LoginGrant g;
  g.policies.assign(policies.begin(), policies.end());
  g.ttl = Number(*cfg, "token_ttl");
  g.max_ttl = Number(*cfg, "token_max_ttl");
  g.display_name = login;  // the core prefixes the mount: "github-<login>"
  g.metadata["username"] = login;
  g.metadata["org"] = Text(*cfg, "organization");
  Response r;
  r.login = std::move(g);
  return r;
}

std::vector<Path> Paths() {
  std::vector<Path> p;
  p.push_back(
      {.patterns = {"config"},
       .fields = {{"organization",
                   {FieldType::kString, "The GitHub organization users must be in"}},
                  {"organization_id",
                   {FieldType::kInt, "Its numeric id (matched before the name)"}},
                  {"base_url",
                   {FieldType::kString,
                    "The API's URL, for GitHub Enterprise (default https://api.github.com/)"}},
                  {"token_policies", {FieldType::kCommaStringSlice, "Policies every login gets"}},
                  {"token_ttl", {FieldType::kDuration, "The tokens' TTL"}},
                  {"token_max_ttl", {FieldType::kDuration, "The tokens' maximum TTL"}},
                  {"ttl", {FieldType::kDuration, "token_ttl's older name"}},
                  {"max_ttl", {FieldType::kDuration, "token_max_ttl's older name"}}},
       .operations = {{Operation::kRead, {ReadConfig, "Reads the configuration"}},
                      {Operation::kUpdate, {WriteConfig, "Configures the organization"}}},
       .synopsis = "The organization and the defaults of the tokens logins get"});
  for (const std::string kind : {"teams", "users"}) {
    p.push_back({.patterns = {Cat("map/", kind)},
                 .operations = {{Operation::kList, {MapList(kind), "Lists the mapped names"}},
                                {Operation::kRead, {MapList(kind), "Lists the mapped names"}}},
                 .synopsis = Cat("The GitHub ", kind, " mapped to policies")});
    p.push_back(
        {.patterns = {Cat("map/", kind, "/{key}")},
         .fields = {{"key", {FieldType::kString, "The team or user name"}},
                    {"value", {FieldType::kString, "Comma-separated policies"}}},
         .operations = {{Operation::kRead, {MapRead(kind), "Reads the policies"}},
                        {Operation::kUpdate, {MapWrite(kind), "Maps it to policies"}},
                        {Operation::kDelete, {MapDelete(kind), "Removes the mapping"}}},
         .synopsis = Cat("The policies of one GitHub ", kind == "teams" ? "team" : "user")});
  }
  p.push_back({.patterns = {"login"},
               .fields = {{"token",
                           {FieldType::kString, "A GitHub personal access token", {}, true, true}}},
               .operations = {{Operation::kUpdate, {Login, "Logs in with a GitHub token"}}},
               .synopsis = "Exchanges a GitHub personal access token for a Coffer token"});
  return p;
}

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig&) {
  return std::unique_ptr<core::Backend>(new GithubBackend(Paths()));
}

}  // namespace coffer::auth::github
