// Response wrapping (Vault's X-Vault-Wrap-TTL and sys/wrapping/*) and the cubbyhole engine.
//
// A wrapped response is stored in the cubbyhole of a new single-use token (policy
// "response-wrapping", orphan, not renewable, TTL = the requested wrap TTL); the caller gets only
// that token in `wrap_info`. Unwrapping spends the token's one use — TokenStore::Use() lets one
// caller through and revokes the token, and revoking a token deletes its cubbyhole — so a
// wrapped secret can be read once, and is gone from storage when its TTL passes (the token tidy
// revokes expired tokens).
//
// Storage: the cubbyhole of the token with salted hash H lives under
// `sys/token/cubbyhole/H/`; the wrapped response is its key `response`.
#include "absl/time/time.h"
#include "boost/json.hpp"
#include "core/core.h"
#include "core/framework/framework.h"
#include "util/human_time.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
using framework::FieldData;
using framework::FieldType;
using framework::Path;

namespace {

constexpr std::string_view kWrappingPolicy = "response-wrapping";
constexpr std::string_view kResponseKey = "response";
// sys/wrapping/wrap without X-Vault-Wrap-TTL (Vault's default).
constexpr int64_t kDefaultWrapTtl = 300;
constexpr const char* kInvalidWrappingToken = "wrapping token is not valid or does not exist";

// The cubbyhole: a kv store private to the calling token. The view handed to it is
// `sys/token/cubbyhole/`; keys are "<the caller's hash>/<path>".
absl::StatusOr<std::string> CubbyKey(const Request& req, std::string_view path) {
  if (!req.token) return absl::PermissionDeniedError("permission denied");
  if (path.size() > 1024) return absl::InvalidArgumentError("path is longer than 1024 characters");
  for (char c : path)
    if (static_cast<unsigned char>(c) < 0x20)
      return absl::InvalidArgumentError("path must not contain control characters");
  return Cat(req.token->id_hash, "/", path);
}

absl::Status NeedKey(std::string_view key) {
  if (key.empty() || key.back() == '/')
    return absl::InvalidArgumentError("a secret path is required after \"cubbyhole/\"");
  return absl::OkStatus();
}

std::vector<Path> CubbyholePaths() {
  using H = framework::Handler;
  H read = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string p = d.String("path");
    RETURN_IF_ERROR(NeedKey(p));
    ASSIGN_OR_RETURN(std::string key, CubbyKey(req, p));
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
    if (!raw) return absl::NotFoundError("");
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("stored secret is not a JSON object");
    return Response::Data(std::move(v.as_object()));
  };
  H write = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string p = d.String("path");
    RETURN_IF_ERROR(NeedKey(p));
    if (req.data.empty())
      return absl::InvalidArgumentError("missing data fields: write at least one key=value pair");
    ASSIGN_OR_RETURN(std::string key, CubbyKey(req, p));
    RETURN_IF_ERROR(req.storage->Put(key, json::serialize(req.data)));
    return Response::Empty();
  };
  H del = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string p = d.String("path");
    RETURN_IF_ERROR(NeedKey(p));
    ASSIGN_OR_RETURN(std::string key, CubbyKey(req, p));
    RETURN_IF_ERROR(req.storage->Delete(key));
    return Response::Empty();
  };
  H list = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    std::string p = d.String("path");
    if (!p.empty() && p.back() != '/') p.push_back('/');
    ASSIGN_OR_RETURN(std::string prefix, CubbyKey(req, p));
    ASSIGN_OR_RETURN(auto keys, req.storage->List(prefix, "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    json::array arr;
    for (auto& k : keys) arr.emplace_back(k);
    return Response::Data(json::object{{"keys", std::move(arr)}});
  };
  std::vector<Path> paths;
  paths.push_back(
      {.patterns = {"{path*}"},
       .fields = {{"path", {FieldType::kString, "Location of the secret in the cubbyhole"}}},
       .operations = {{Operation::kRead, {read, "Reads a secret of the calling token"}},
                      {Operation::kUpdate, {write, "Stores a secret for the calling token"}},
                      {Operation::kDelete, {del, "Deletes a secret of the calling token"}},
                      {Operation::kList, {list, "Lists the calling token's secrets"}}},
       .synopsis = "Secrets private to the calling token, destroyed with it",
       .any_field = true});
  return paths;
}

// The stored form of a wrapped response.
json::object StoredResponse(const Request& req, const Response& resp, int64_t now, int64_t ttl) {
  json::array warnings;
  for (const auto& w : resp.warnings) warnings.emplace_back(w);
  return json::object{{"data", resp.data ? json::value(*resp.data) : json::value(nullptr)},
                      {"auth", resp.auth ? json::value(*resp.auth) : json::value(nullptr)},
                      {"lease_id", resp.lease_id},
                      {"lease_duration", resp.lease_duration},
                      {"renewable", resp.renewable},
                      {"warnings", std::move(warnings)},
                      {"creation_path", req.path},
                      {"creation_time", now},
                      {"creation_ttl", ttl}};
}

}  // namespace

std::unique_ptr<Backend> NewCubbyholeBackend() {
  return std::make_unique<framework::FrameworkBackend>(
      "The cubbyhole backend stores secrets that only the token that wrote them can read; they "
      "are deleted when the token is revoked or expires. Response wrapping keeps wrapped "
      "responses in the cubbyhole of the wrapping token.",
      CubbyholePaths());
}

absl::Status Core::WrapResponse(const Request& req, Response& resp, int64_t ttl) {
  // Nothing to wrap: errors, raw system answers and empty (204) responses go out as they are.
  if (resp.raw || resp.wrap_info || (!resp.data && !resp.auth)) return absl::OkStatus();
  ttl = std::min(ttl, opts_.max_lease_ttl);
  TokenEntry e;
  e.policies = {std::string(kWrappingPolicy)};
  e.path = req.path;
  e.display_name = "response-wrapping";
  e.ttl = ttl;
  e.num_uses = 1;
  e.renewable = false;
  ASSIGN_OR_RETURN(auto created, tokens_->Create(std::move(e)));
  const int64_t now = created.entry.creation_time;
  json::object stored = StoredResponse(req, resp, now, ttl);
  std::string wrapped_accessor;
  if (resp.auth)
    if (const auto* a = resp.auth->if_contains("accessor"); a && a->is_string())
      wrapped_accessor = std::string(a->as_string());
  RETURN_IF_ERROR(barrier_->Put(Cat(kCubbyholePrefix, created.entry.id_hash, "/", kResponseKey),
                                json::serialize(stored)));
  json::object info{{"token", created.token},
                    {"accessor", created.entry.accessor},
                    {"ttl", ttl},
                    {"creation_time", Rfc3339Utc(now)},
                    {"creation_path", req.path}};
  if (!wrapped_accessor.empty()) info["wrapped_accessor"] = wrapped_accessor;
  Response wrapped;
  wrapped.wrap_info = std::move(info);
  resp = std::move(wrapped);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<TokenEntry, json::object>> Core::WrappedBy(std::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError(kInvalidWrappingToken);
  ASSIGN_OR_RETURN(auto e, tokens_->Lookup(token));
  if (!e || e->policies.size() != 1 || e->policies[0] != kWrappingPolicy)
    return absl::InvalidArgumentError(kInvalidWrappingToken);
  ASSIGN_OR_RETURN(auto raw, barrier_->Get(Cat(kCubbyholePrefix, e->id_hash, "/", kResponseKey)));
  if (!raw) return absl::InvalidArgumentError(kInvalidWrappingToken);
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("wrapped response is corrupt");
  return std::make_pair(std::move(*e), std::move(v.as_object()));
}

absl::StatusOr<std::string> Core::WrappingTokenOf(const Request& req) {
  // The wrapping token is the body's "token", or else the client token itself. When both are
  // given, the client token must be a valid token that may call sys/wrapping/unwrap.
  ASSIGN_OR_RETURN(auto body_token, JsonString(req.data, "token"));
  if (!body_token || body_token->empty()) return req.client_token;
  if (!req.client_token.empty() && req.client_token != *body_token) {
    ASSIGN_OR_RETURN(auto caller, tokens_->Lookup(req.client_token));
    if (!caller) return absl::PermissionDeniedError("permission denied");
    ASSIGN_OR_RETURN(auto acl, policies_->AclFor(caller->policies));
    // req.path is relative to sys/ here; policies name the full path.
    if (!acl->Allows(Cat("sys/", req.path), Operation::kUpdate, false))
      return absl::PermissionDeniedError("permission denied");
  }
  return *body_token;
}

absl::StatusOr<Response> Core::HandleWrapping(Request& req, std::string_view what) {
  if (what == "wrap") {
    // An authenticated path: the body is the secret to wrap.
    Response r = Response::Data(req.data);
    Request origin = req;
    origin.path = "sys/wrapping/wrap";  // the handler sees the path relative to sys/
    RETURN_IF_ERROR(WrapResponse(origin, r, req.wrap_ttl > 0 ? req.wrap_ttl : kDefaultWrapTtl));
    if (!r.wrap_info) return absl::InvalidArgumentError("nothing to wrap: the body is empty");
    req.wrap_ttl = 0;  // wrapped already
    return r;
  }
  ASSIGN_OR_RETURN(std::string token, WrappingTokenOf(req));
  ASSIGN_OR_RETURN(auto found, WrappedBy(token));
  auto& [entry, stored] = found;
  if (what == "lookup") {
    const int64_t created = stored.at("creation_time").to_number<int64_t>();
    return Response::Data(json::object{{"creation_path", stored.at("creation_path")},
                                       {"creation_time", Rfc3339Utc(created)},
                                       {"creation_ttl", stored.at("creation_ttl")}});
  }
  // unwrap and rewrap spend the token's single use: one caller wins, the token is revoked and
  // its cubbyhole deleted.
  if (!tokens_->Use(entry).ok()) return absl::InvalidArgumentError(kInvalidWrappingToken);
  Response r;
  if (const auto& d = stored.at("data"); d.is_object()) r.data = d.as_object();
  if (const auto& a = stored.at("auth"); a.is_object()) r.auth = a.as_object();
  r.lease_id = std::string(stored.at("lease_id").as_string());
  r.lease_duration = stored.at("lease_duration").to_number<int64_t>();
  r.renewable = stored.at("renewable").as_bool();
  for (const auto& w : stored.at("warnings").as_array())
    if (w.is_string()) r.warnings.emplace_back(w.as_string());
  if (what == "unwrap") return r;
  // rewrap: the same response under a new token with the original TTL and creation path.
  Request origin = req;
  origin.path = std::string(stored.at("creation_path").as_string());
  RETURN_IF_ERROR(WrapResponse(origin, r, stored.at("creation_ttl").to_number<int64_t>()));
  req.wrap_ttl = 0;
  return r;
}

}  // namespace coffer::core
