#include "http/api.h"

#include <openssl/crypto.h>

#include "util/status.h"

namespace coffer::http {
namespace json = boost::json;

Api::Api(ClientOptions o) : o_(std::move(o)) {
  ClientOptions shared = o_;
  shared.token.clear();
  // 8 idle connections kept: cluster setup makes up to 8 calls at once (cluster/setup.cc).
  auto pool = ConnectionPool::Create(std::move(shared), 8);
  if (pool.ok())
    pool_ = std::move(*pool);
  else
    pool_error_ = pool.status();
}

Api::~Api() { OPENSSL_cleanse(o_.token.data(), o_.token.size()); }

void Api::set_token(std::string t) {
  OPENSSL_cleanse(o_.token.data(), o_.token.size());
  o_.token.swap(t);  // `t` now holds the old buffer, wiped above, and frees it
}

absl::StatusOr<json::object> Api::Call(std::string_view method, std::string_view path,
                                       const json::object* body) const {
  if (!pool_) return pool_error_;
  std::string payload = body ? json::serialize(*body) : std::string();
  std::vector<ConnectionPool::Header> headers;
  if (!o_.token.empty()) headers.emplace_back("X-Vault-Token", o_.token);
  ASSIGN_OR_RETURN(auto r, pool_->Call(method, Cat("/v1/", path), payload, headers,
                                       method == "GET" || method == "LIST"));
  ASSIGN_OR_RETURN(r, FollowRedirects(o_, method, payload, std::move(r)));
  json::object parsed;
  if (!r.body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (!ec && v.is_object()) parsed = std::move(v.as_object());
  }
  if (r.status >= 200 && r.status < 300) return parsed;
  std::string msg;
  if (auto* errs = parsed.if_contains("errors"); errs && errs->is_array()) {
    for (const auto& e : errs->as_array()) {
      if (!e.is_string()) continue;
      if (!msg.empty()) msg += "; ";
      msg += std::string(e.as_string());
    }
  }
  const std::string what =
      Cat(method, " ", path, ": HTTP ", r.status, msg.empty() ? "" : ": ", msg);
  switch (r.status) {
    case 400:
    case 405:
    case 413:
      return absl::InvalidArgumentError(what);
    case 403:
      return absl::PermissionDeniedError(what);
    case 404:
      return absl::NotFoundError(what);
    case 429:
    case 503:
      return absl::UnavailableError(what);
    default:
      if (r.status >= 500) return absl::UnavailableError(what);
      return absl::FailedPreconditionError(what);
  }
}

absl::StatusOr<json::object> Api::Read(std::string_view path) const {
  ASSIGN_OR_RETURN(auto r, Call("GET", path));
  if (auto* d = r.if_contains("data"); d && d->is_object()) return d->as_object();
  return json::object{};
}

absl::StatusOr<json::object> Api::Write(std::string_view path, const json::object& body) const {
  return Call("POST", path, &body);
}

absl::StatusOr<std::vector<std::string>> Api::List(std::string_view path) const {
  auto r = Call("LIST", path);
  if (!r.ok() && absl::IsNotFound(r.status())) return std::vector<std::string>{};
  if (!r.ok()) return r.status();
  std::vector<std::string> keys;
  if (auto* d = r->if_contains("data"); d && d->is_object())
    if (auto* k = d->as_object().if_contains("keys"); k && k->is_array())
      for (const auto& v : k->as_array())
        if (v.is_string()) keys.emplace_back(v.as_string());
  return keys;
}

absl::Status Api::Delete(std::string_view path) const { return Call("DELETE", path).status(); }

}  // namespace coffer::http
