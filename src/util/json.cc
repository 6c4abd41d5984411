#include "util/json.h"

#include <charconv>
#include <cmath>

#include "util/status.h"

namespace coffer {

std::string_view JsonTypeName(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "unknown";
}

absl::StatusOr<std::optional<int64_t>> JsonInt(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= INT64_MAX)
    return std::optional<int64_t>(static_cast<int64_t>(v->as_uint64()));
  if (v->is_double()) {
    // Only whole numbers inside int64's range convert (casting anything else is undefined;
    // found by fuzz/json_body_fuzz).
    const double d = v->as_double();
    if (d >= -9.2e18 && d <= 9.2e18 && d == std::floor(d))
      return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  if (v->is_string()) {
    std::string_view s = v->as_string();
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size() && !s.empty())
      return std::optional<int64_t>(out);
  }
  return absl::InvalidArgumentError(
      Cat("field \"", key, "\" must be an integer, got ", JsonTypeName(*v),
          v->is_string() ? Cat(" \"", std::string_view(v->as_string()).substr(0, 64), "\"") : ""));
}

absl::StatusOr<std::optional<bool>> JsonBool(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<bool>();
  if (v->is_bool()) return std::optional<bool>(v->as_bool());
  if (v->is_string()) {
    std::string_view s = v->as_string();
    if (s == "true" || s == "1" || s == "t" || s == "True" || s == "TRUE")
      return std::optional<bool>(true);
    if (s == "false" || s == "0" || s == "f" || s == "False" || s == "FALSE" || s.empty())
      return std::optional<bool>(false);
  }
  if (v->is_int64() && (v->as_int64() == 0 || v->as_int64() == 1))
    return std::optional<bool>(v->as_int64() == 1);
  return absl::InvalidArgumentError(
      Cat("field \"", key, "\" must be a boolean, got ", JsonTypeName(*v)));
}

absl::StatusOr<std::optional<std::string>> JsonString(const boost::json::object& o,
                                                      std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(std::string(v->as_string()));
  return absl::InvalidArgumentError(
      Cat("field \"", key, "\" must be a string, got ", JsonTypeName(*v)));
}

std::string JsonStringOr(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t JsonIntOr(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace coffer
