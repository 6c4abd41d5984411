#include "http/convert.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <type_traits>

#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::http {
namespace json = boost::json;
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return absl::InvalidArgumentError("invalid percent-encoding in URL");
      int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
      if (hi < 0 || lo < 0) return absl::InvalidArgumentError("invalid percent-encoding in URL");
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    ASSIGN_OR_RETURN(std::string k, PercentDecode(part.substr(0, eq), true));
    std::string v;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(v, PercentDecode(part.substr(eq + 1), true));
    }
    out.emplace_back(std::move(k), std::move(v));
    if (out.size() > 256) return absl::InvalidArgumentError("too many query parameters");
  }
  return out;
}

absl::StatusOr<core::Request> ParseRequest(const RawRequest& raw, const RequestLimits& limits) {
  core::Request req;
  req.id = crypto::RequestId();
  req.remote_address = raw.remote_address;
  std::string_view target = raw.target;
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  if (qpos != std::string_view::npos) {
    ASSIGN_OR_RETURN(req.query, ParseQuery(target.substr(qpos + 1)));
  }
  if (path.substr(0, 4) != "/v1/")
    return absl::NotFoundError(
        Cat("unknown path \"", path.substr(0, 256), "\": the API lives under /v1/"));
  ASSIGN_OR_RETURN(req.path, PercentDecode(path.substr(4), false));
  while (!req.path.empty() && req.path.front() == '/') req.path.erase(0, 1);
  if (req.path.empty()) return absl::NotFoundError("missing path after /v1/");
  if (req.path.find('\0') != std::string::npos)
    return absl::InvalidArgumentError("path contains a NUL byte");

  if (!raw.unsupported_headers.empty())
    return absl::InvalidArgumentError(
        Cat("header ", raw.unsupported_headers.front().substr(0, 64),
            " is not supported by Coffer: remove it (see docs/compatibility.md)"));
  if (!raw.wrap_ttl.empty()) {
    auto ttl = ParseDurationSeconds(raw.wrap_ttl);
    if (!ttl.ok() || *ttl <= 0)
      return absl::InvalidArgumentError(Cat("invalid X-Vault-Wrap-TTL \"",
                                            raw.wrap_ttl.substr(0, 64),
                                            "\": give a positive duration such as 60s or 5m"));
    req.wrap_ttl = *ttl;
  }

  // ?list= is read as Go's strconv.ParseBool does (Vault): 1 t T TRUE true True, 0 f F ...
  bool list_param = false;
  for (const auto& [k, v] : req.query) {
    if (k != "list") continue;
    if (v.empty() || v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True")
      list_param = true;
    else if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False")
      list_param = false;
    else
      return absl::InvalidArgumentError(Cat("invalid value for list: \"",
                                            std::string_view(v).substr(0, 32),
                                            "\": use true or false"));
  }

  const std::string_view m = raw.method;
  if (m == "GET")
    req.op = list_param ? core::Operation::kList : core::Operation::kRead;
  else if (m == "LIST")
    req.op = core::Operation::kList;
  else if (m == "PUT" || m == "POST")
    req.op = core::Operation::kUpdate;
  else if (m == "DELETE")
    req.op = core::Operation::kDelete;
  else if (m == "PATCH")
    req.op = core::Operation::kPatch;
  else if (m == "HEAD")
    req.op = core::Operation::kHead;
  else
    return UnsupportedOperation(Cat("method ", m.substr(0, 32),
                                    " is not allowed: use GET, LIST, PUT, POST, PATCH or DELETE"));
  if (req.op == core::Operation::kList && !req.path.empty() && req.path.back() != '/')
    req.path.push_back('/');

  // Token: X-Vault-Token, else "Authorization: Bearer <token>".
  if (!raw.vault_token.empty()) {
    req.client_token = std::string(raw.vault_token);
  } else if (raw.authorization.size() > 7 && IEquals(raw.authorization.substr(0, 7), "Bearer ")) {
    req.client_token = std::string(raw.authorization.substr(7));
  }

  if (raw.body.size() > limits.max_request_size)
    return absl::InvalidArgumentError(Cat("request body too large: the limit is ",
                                          limits.max_request_size, " bytes (max_request_size)"));
  std::string_view body = raw.body;
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front())))
    body.remove_prefix(1);
  if (!body.empty()) {
    ASSIGN_OR_RETURN(json::value v, ParseUntrustedJson(body, limits.json));
    if (!v.is_object())
      return absl::InvalidArgumentError(
          Cat("failed to parse JSON input: the body must be a JSON object, got ",
              v.is_array()    ? "an array"
              : v.is_string() ? "a string"
                              : "a scalar"));
    req.data = std::move(v.as_object());
  }
  // As Vault does, query parameters are request data for reads, lists and deletes.
  if (req.op == core::Operation::kRead || req.op == core::Operation::kList ||
      req.op == core::Operation::kDelete || req.op == core::Operation::kHead) {
    for (const auto& [k, v] : req.query)
      if (k != "list" && !req.data.contains(k)) req.data[k] = v;
  } else {
    // A write's parameters are its JSON body (Vault reads no query parameter there): one in the
    // URL would be silently ignored, so it is refused with its name.
    for (const auto& [k, v] : req.query)
      if (k != "help")
        return absl::InvalidArgumentError(
            Cat("query parameter \"", std::string_view(k).substr(0, 64), "\" is not read on ",
                raw.method, ": send it in the JSON body"));
  }
  return req;
}

namespace {

// Appends the JSON text of `v` (a value, object or string) to `out`, as json::serialize writes it.
template <typename T>
void AppendJson(std::string& out, const T& v) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    AppendJsonText(out, std::string_view(v));
  } else {
    AppendJsonText(out, v);
  }
}

void AppendJsonOrNull(std::string& out, const std::optional<json::object>& v) {
  if (v)
    AppendJson(out, *v);
  else
    out += "null";
}

}  // namespace

RawResponse RenderError(int status, std::string_view message) {
  RawResponse out;
  out.status = status;
  json::array errs;
  if (!message.empty()) errs.emplace_back(message);
  out.body = json::serialize(json::object{{"errors", errs}});
  return out;
}

RawResponse RenderResponse(const absl::StatusOr<core::Response>& r, const core::Request& req) {
  if (!r.ok()) return RenderError(core::HttpStatusFor(r.status()), Msg(r.status()));
  const core::Response& resp = *r;
  RawResponse out;
  if (resp.raw) {
    out.status = resp.http_status ? resp.http_status : 200;
    out.content_type = resp.content_type;
    out.body = resp.raw_body;
    return out;
  }
  if (!resp.data && !resp.auth && !resp.wrap_info && resp.warnings.empty()) {
    out.status = resp.http_status ? resp.http_status : 204;
    return out;
  }
  // Vault's envelope, serialized straight into the body (the same bytes json::serialize makes of
  // the object, without copying the response's data into one first).
  std::string& b = out.body;
  b.reserve(512);
  b += R"({"request_id":)";
  AppendJson(b, req.id);
  b += R"(,"lease_id":)";
  AppendJson(b, resp.lease_id);
  b += R"(,"renewable":)";
  b += resp.renewable ? "true" : "false";
  b += R"(,"lease_duration":)";
  b += std::to_string(resp.lease_duration);
  b += R"(,"data":)";
  AppendJsonOrNull(b, resp.data);
  b += R"(,"wrap_info":)";
  AppendJsonOrNull(b, resp.wrap_info);
  b += R"(,"warnings":)";
  if (resp.warnings.empty()) {
    b += "null";
  } else {
    b += '[';
    for (size_t i = 0; i < resp.warnings.size(); ++i) {
      if (i > 0) b += ',';
      AppendJson(b, resp.warnings[i]);
    }
    b += ']';
  }
  b += R"(,"auth":)";
  AppendJsonOrNull(b, resp.auth);
  b += R"(,"mount_type":)";
  AppendJson(b, req.mount_type);
  // Some of Vault's endpoints (sys/mounts, sys/auth, ...) repeat their data at the top level,
  // where the envelope's own keys win.
  if (resp.duplicate_data_at_top && resp.data) {
    static constexpr std::string_view kEnvelope[] = {"request_id",     "lease_id", "renewable",
                                                     "lease_duration", "data",     "wrap_info",
                                                     "warnings",       "auth",     "mount_type"};
    for (const auto& [k, v] : *resp.data) {
      if (std::find(std::begin(kEnvelope), std::end(kEnvelope), std::string_view(k)) !=
          std::end(kEnvelope))
        continue;
      b += ',';
      AppendJson(b, std::string_view(k));
      b += ':';
      AppendJson(b, v);
    }
  }
  b += '}';
  out.status = resp.http_status ? resp.http_status : 200;
  return out;
}

}  // namespace coffer::http
