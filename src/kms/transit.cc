#include "kms/transit.h"

#include <algorithm>
#include <charconv>

#include "boost/json.hpp"
#include "http/api.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::kms {
namespace json = boost::json;

absl::StatusOr<int64_t> CiphertextVersion(std::string_view ciphertext) {
  constexpr std::string_view kPrefix = "vault:v";
  auto bad = [&] {
    return absl::InvalidArgumentError(
        "the ciphertext is not a Transit ciphertext (\"vault:v<N>:<base64>\")");
  };
  if (ciphertext.substr(0, kPrefix.size()) != kPrefix) return bad();
  std::string_view rest = ciphertext.substr(kPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 18) return bad();
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + colon, n);
  if (ec != std::errc() || ptr != rest.data() + colon || n < 1) return bad();
  return n;
}

HttpTransit::HttpTransit(HttpTransitOptions o, TokenSource* tokens)
    : o_(std::move(o)), tokens_(tokens) {}

absl::StatusOr<json::object> HttpTransit::Call(std::string_view method, std::string_view path,
                                               const json::object* body,
                                               std::chrono::milliseconds timeout) {
  http::ClientOptions c = o_.client;
  // The client's timeout is in whole seconds; round up so a short deadline still gets a try.
  c.timeout = std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(timeout));
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(c.token, tokens_->Token());
    http::Api api(c);
    auto r = api.Call(method, path, body);
    if (r.ok() || !absl::IsPermissionDenied(r.status()) || attempt > 0) return r;
    if (!tokens_->Rejected(api.options().token)) return r;
  }
}

absl::StatusOr<EncryptResult> HttpTransit::Encrypt(std::string_view plaintext,
                                                   std::chrono::milliseconds timeout) {
  json::object body{{"plaintext", Base64Encode(plaintext)}};
  ASSIGN_OR_RETURN(auto r, Call("POST", Cat(o_.mount, "/encrypt/", o_.key), &body, timeout));
  const json::value* data = r.if_contains("data");
  const json::value* ct =
      data != nullptr && data->is_object() ? data->as_object().if_contains("ciphertext") : nullptr;
  if (ct == nullptr || !ct->is_string())
    return absl::UnavailableError(
        Cat("POST ", o_.mount, "/encrypt/", o_.key, ": the response holds no data.ciphertext"));
  EncryptResult out;
  out.ciphertext = std::string(ct->as_string());
  auto v = CiphertextVersion(out.ciphertext);
  if (!v.ok())
    return absl::UnavailableError(
        Cat("POST ", o_.mount, "/encrypt/", o_.key,
            ": unexpected ciphertext format: ", std::string(v.status().message())));
  out.version = *v;
  return out;
}

absl::StatusOr<std::string> HttpTransit::Decrypt(std::string_view ciphertext,
                                                 std::chrono::milliseconds timeout) {
  json::object body{{"ciphertext", ciphertext}};
  ASSIGN_OR_RETURN(auto r, Call("POST", Cat(o_.mount, "/decrypt/", o_.key), &body, timeout));
  const json::value* data = r.if_contains("data");
  const json::value* pt =
      data != nullptr && data->is_object() ? data->as_object().if_contains("plaintext") : nullptr;
  if (pt == nullptr || !pt->is_string())
    return absl::UnavailableError(
        Cat("POST ", o_.mount, "/decrypt/", o_.key, ": the response holds no data.plaintext"));
  auto plain = Base64Decode(std::string_view(pt->as_string()));
  if (!plain)
    return absl::UnavailableError(
        Cat("POST ", o_.mount, "/decrypt/", o_.key, ": data.plaintext is not base64"));
  return std::move(*plain);
}

absl::StatusOr<int64_t> HttpTransit::LatestVersion(std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(auto r, Call("GET", Cat(o_.mount, "/keys/", o_.key), nullptr, timeout));
  const json::value* data = r.if_contains("data");
  const json::value* v = data != nullptr && data->is_object()
                             ? data->as_object().if_contains("latest_version")
                             : nullptr;
  if (v != nullptr && v->is_int64() && v->as_int64() > 0) return v->as_int64();
  if (v != nullptr && v->is_uint64() && v->as_uint64() > 0)
    return static_cast<int64_t>(v->as_uint64());
  return absl::UnavailableError(
      Cat("GET ", o_.mount, "/keys/", o_.key, ": the response holds no data.latest_version"));
}

}  // namespace coffer::kms
