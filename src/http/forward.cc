#include "http/forward.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/encoding.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::http {
namespace json = boost::json;
namespace {

constexpr std::string_view kRequestAad = "coffer forwarded request v1";
constexpr std::string_view kResponseAad = "coffer forwarded response v1";
constexpr size_t kSaltBytes = 16;

// Each message has a key of its own: HMAC-SHA256(forwarding key, direction label || salt), the
// salt random and sent in front. So no AES-GCM key ever sees many random nonces (the forwarding
// key lives as long as the root key), and the two directions never share a key.
crypto::SecretBytes MessageKey(const crypto::SecretBytes& key, std::string_view aad,
                               std::string_view salt) {
  std::string mac = crypto::HmacSha256(key.view(), Cat(aad, "|", salt));
  crypto::SecretBytes k(mac);
  OPENSSL_cleanse(mac.data(), mac.size());
  return k;
}

absl::StatusOr<std::string> SealMessage(const crypto::SecretBytes& key, std::string_view plain,
                                        std::string_view aad) {
  ASSIGN_OR_RETURN(std::string salt, crypto::RandomBytes(kSaltBytes));
  ASSIGN_OR_RETURN(std::string sealed, crypto::AesGcmSeal(MessageKey(key, aad, salt), plain, aad));
  return salt + sealed;
}

absl::StatusOr<json::object> OpenObject(const crypto::SecretBytes& key, std::string_view sealed,
                                        std::string_view aad) {
  absl::StatusOr<std::string> plain = absl::DataLossError("too short");
  if (sealed.size() > kSaltBytes)
    plain = crypto::AesGcmOpen(MessageKey(key, aad, sealed.substr(0, kSaltBytes)),
                               sealed.substr(kSaltBytes), aad);
  if (!plain.ok())
    return absl::PermissionDeniedError(
        "the forwarded request was not sealed with this cluster's forwarding key (another "
        "cluster, a root key changed since, or altered on the way)");
  // Authentic (sealed by a server of the cluster), and holding the client's bytes as they came:
  // a header may carry bytes that are not UTF-8.
  json::parse_options opts;
  opts.allow_invalid_utf8 = true;
  json::error_code ec;
  json::value v = json::parse(*plain, ec, {}, opts);
  if (ec || !v.is_object())
    return absl::InvalidArgumentError("the forwarded message is not a JSON object");
  return std::move(v.as_object());
}

absl::StatusOr<std::string> Str(const json::object& o, std::string_view k) {
  ASSIGN_OR_RETURN(auto s, JsonString(o, k));
  return s ? std::move(*s) : std::string();
}

absl::StatusOr<std::string> Bytes(const json::object& o, std::string_view k) {
  ASSIGN_OR_RETURN(std::string b64, Str(o, k));
  auto raw = Base64Decode(b64);
  if (!raw) return absl::InvalidArgumentError(Cat("the forwarded ", k, " is not base64"));
  return std::move(*raw);
}

// The sender and sequence number a response must repeat.
absl::Status SameExchange(const json::object& o, const ForwardedRequest& to) {
  ASSIGN_OR_RETURN(std::string sender, Str(o, "sender"));
  ASSIGN_OR_RETURN(auto seq, JsonInt(o, "seq"));
  if (sender != to.sender || !seq || static_cast<uint64_t>(*seq) != to.seq)
    return absl::PermissionDeniedError("the forwarded response answers another request");
  return absl::OkStatus();
}

}  // namespace

RawRequest ForwardedRequest::Raw() const {
  RawRequest raw;
  raw.method = method;
  raw.target = target;
  raw.vault_token = vault_token;
  raw.authorization = authorization;
  raw.wrap_ttl = wrap_ttl;
  for (const auto& h : unsupported_headers) raw.unsupported_headers.emplace_back(h);
  raw.body = body;
  raw.remote_address = remote_address;
  return raw;
}

absl::StatusOr<std::string> SealRequest(const crypto::SecretBytes& key, const ForwardedRequest& r) {
  json::array unsupported;
  for (const auto& h : r.unsupported_headers) unsupported.emplace_back(h);
  json::object o{{"sender", r.sender},
                 {"seq", static_cast<int64_t>(r.seq)},
                 {"time", r.time},
                 {"to", r.to},
                 {"remote", r.remote_address},
                 {"method", r.method},
                 {"target", r.target},
                 {"token", r.vault_token},
                 {"authorization", r.authorization},
                 {"wrap_ttl", r.wrap_ttl},
                 {"unsupported", std::move(unsupported)},
                 {"body", Base64Encode(r.body)}};
  std::string plain = json::serialize(o);
  auto sealed = SealMessage(key, plain, kRequestAad);
  OPENSSL_cleanse(plain.data(), plain.size());  // it holds the client's token
  return sealed;
}

absl::StatusOr<ForwardedRequest> OpenRequest(const crypto::SecretBytes& key,
                                             std::string_view sealed) {
  ASSIGN_OR_RETURN(json::object o, OpenObject(key, sealed, kRequestAad));
  ForwardedRequest r;
  ASSIGN_OR_RETURN(r.sender, Str(o, "sender"));
  ASSIGN_OR_RETURN(auto seq, JsonInt(o, "seq"));
  ASSIGN_OR_RETURN(auto time, JsonInt(o, "time"));
  if (r.sender.empty() || !seq || *seq < 0 || !time)
    return absl::InvalidArgumentError("the forwarded request has no sender, seq or time");
  r.seq = static_cast<uint64_t>(*seq);
  r.time = *time;
  ASSIGN_OR_RETURN(r.to, Str(o, "to"));
  ASSIGN_OR_RETURN(r.remote_address, Str(o, "remote"));
  ASSIGN_OR_RETURN(r.method, Str(o, "method"));
  ASSIGN_OR_RETURN(r.target, Str(o, "target"));
  if (r.method.empty() || !r.target.starts_with("/"))
    return absl::InvalidArgumentError("the forwarded request has no method or target");
  ASSIGN_OR_RETURN(r.vault_token, Str(o, "token"));
  ASSIGN_OR_RETURN(r.authorization, Str(o, "authorization"));
  ASSIGN_OR_RETURN(r.wrap_ttl, Str(o, "wrap_ttl"));
  if (const json::value* u = o.if_contains("unsupported")) {
    if (!u->is_array()) return absl::InvalidArgumentError("forwarded unsupported: not an array");
    for (const auto& h : u->as_array()) {
      if (!h.is_string()) return absl::InvalidArgumentError("forwarded header: not a string");
      r.unsupported_headers.emplace_back(h.as_string());
    }
  }
  ASSIGN_OR_RETURN(r.body, Bytes(o, "body"));
  return r;
}

absl::StatusOr<std::string> SealResponse(const crypto::SecretBytes& key, const ForwardedRequest& to,
                                         const RawResponse& r) {
  json::object o{{"sender", to.sender},    {"seq", static_cast<int64_t>(to.seq)},
                 {"status", r.status},     {"content_type", r.content_type},
                 {"location", r.location}, {"body", Base64Encode(r.body)}};
  std::string plain = json::serialize(o);
  auto sealed = SealMessage(key, plain, kResponseAad);
  OPENSSL_cleanse(plain.data(), plain.size());  // it may hold a new token or a private key
  return sealed;
}

absl::StatusOr<RawResponse> OpenResponse(const crypto::SecretBytes& key, const ForwardedRequest& to,
                                         std::string_view sealed) {
  ASSIGN_OR_RETURN(json::object o, OpenObject(key, sealed, kResponseAad));
  RETURN_IF_ERROR(SameExchange(o, to));
  RawResponse r;
  ASSIGN_OR_RETURN(auto status, JsonInt(o, "status"));
  if (!status || *status < 100 || *status > 599)
    return absl::InvalidArgumentError("the forwarded response has no valid status");
  r.status = static_cast<int>(*status);
  ASSIGN_OR_RETURN(r.content_type, Str(o, "content_type"));
  ASSIGN_OR_RETURN(r.location, Str(o, "location"));
  // Both become header values on the standby.
  for (const std::string* h : {&r.content_type, &r.location})
    if (h->find_first_of("\r\n") != std::string::npos)
      return absl::InvalidArgumentError("a forwarded response header holds a line break");
  if (r.content_type.empty()) r.content_type = "application/json";
  ASSIGN_OR_RETURN(r.body, Bytes(o, "body"));
  return r;
}

absl::Status ReplayGuard::Accept(const ForwardedRequest& r, int64_t now) {
  if (r.time < now - kForwardMaxAgeSeconds || r.time > now + kForwardMaxAgeSeconds)
    return absl::PermissionDeniedError(Cat("the forwarded request is ",
                                           r.time < now ? now - r.time : r.time - now,
                                           "s away from this server's clock (at most ",
                                           kForwardMaxAgeSeconds, "s): check the servers' clocks"));
  MutexLock l(&mu_);
  // Senders quiet for longer than a request may live are forgotten (a restarted standby is a
  // new sender): their old requests are refused by time anyway. Measured against the latest
  // time seen, so a clock stepping back does not bring their requests back.
  latest_ = std::max(latest_, now);
  for (auto it = senders_.begin(); it != senders_.end();)
    it = it->second.last_time < latest_ - 2 * kForwardMaxAgeSeconds ? senders_.erase(it) : ++it;
  Sender& s = senders_[r.sender];
  s.last_time = std::max(s.last_time, r.time);
  if (r.seq + kWindow <= s.highest)
    return absl::AlreadyExistsError("the forwarded request is too old (replayed?)");
  if (r.seq > s.highest) {
    // Slots between the old highest and this one are now free for their numbers.
    for (uint64_t q = s.highest + 1; q < r.seq && q <= s.highest + kWindow; ++q)
      s.seen[q % kWindow] = false;
    s.highest = r.seq;
    s.seen[r.seq % kWindow] = true;
    return absl::OkStatus();
  }
  if (s.seen[r.seq % kWindow])
    return absl::AlreadyExistsError("the forwarded request was seen before (replayed)");
  s.seen[r.seq % kWindow] = true;
  return absl::OkStatus();
}

}  // namespace coffer::http
