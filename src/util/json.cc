#include "util/json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

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

const boost::json::object* JsonObjectOr(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::vector<std::string> JsonStringsOr(const boost::json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const boost::json::value* v = o.if_contains(key); v && v->is_array())
    for (const auto& e : v->as_array())
      if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

int64_t JsonIntOr(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Which bytes a JSON string must escape: control characters, '"' and '\\' (boost::json
// escapes nothing else: DEL and bytes >= 0x80 pass as they are).
constexpr std::array<bool, 256> MakeEscapeTable() {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = true;
  t['"'] = t['\\'] = true;
  return t;
}
constexpr auto kMustEscape = MakeEscapeTable();

// Nesting below this depth goes through boost's serializer, which keeps its own stack: a deep
// document from a client must not run this recursion out of stack.
constexpr int kMaxDepth = 32;

void AppendSerialized(std::string& out, const boost::json::value& v) {
  boost::json::serializer sr;
  sr.reset(&v);
  char buf[4096];
  while (!sr.done()) {
    const std::string_view chunk = sr.read(buf, sizeof buf);
    out.append(chunk.data(), chunk.size());
  }
}

void AppendObject(std::string& out, const boost::json::object& o, int depth);

void AppendValue(std::string& out, const boost::json::value& v, int depth) {
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
    case boost::json::kind::uint64: {
      char buf[24];
      const auto r = v.is_int64() ? std::to_chars(buf, buf + sizeof buf, v.get_int64())
                                  : std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      out.append(buf, static_cast<size_t>(r.ptr - buf));
      return;
    }
    case boost::json::kind::double_:
      AppendSerialized(out, v);  // boost's own shortest form ("1E0")
      return;
    case boost::json::kind::string:
      AppendJsonText(out, std::string_view(v.get_string()));
      return;
    case boost::json::kind::array: {
      if (depth >= kMaxDepth) return AppendSerialized(out, v);
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendValue(out, e, depth + 1);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object:
      if (depth >= kMaxDepth) return AppendSerialized(out, v);
      AppendObject(out, v.get_object(), depth);
      return;
  }
}

void AppendObject(std::string& out, const boost::json::object& o, int depth) {
  out += '{';
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out += ',';
    first = false;
    AppendJsonText(out, std::string_view(kv.key()));
    out += ':';
    AppendValue(out, kv.value(), depth + 1);
  }
  out += '}';
}

}  // namespace

// Whether any of the 8 bytes in `v` must be escaped (< 0x20, '"' or '\\'), with the usual
// word-at-a-time tests: a byte below n is one where (b - n) borrows into its top bit while b's top
// bit is clear; a byte equal to c is a zero byte of v ^ c.
inline bool AnyMustEscape(uint64_t v) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  const uint64_t below_space = (v - 0x20 * kOnes) & ~v & kHigh;
  const uint64_t q = v ^ ('"' * kOnes), b = v ^ ('\\' * kOnes);
  const uint64_t quote = (q - kOnes) & ~q & kHigh, backslash = (b - kOnes) & ~b & kHigh;
  return (below_space | quote | backslash) != 0;
}

void AppendJsonText(std::string& out, std::string_view s) {
  out += '"';
  const char* p = s.data();
  const char* const end = p + s.size();
  const char* run = p;  // start of the bytes not yet copied
  while (p != end) {
    // Eight plain bytes at a time (PEM lines, base64, names), then byte by byte.
    if (end - p >= 8) {
      uint64_t v;
      std::memcpy(&v, p, sizeof v);
      if (!AnyMustEscape(v)) {
        p += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(*p);
    if (!kMustEscape[c]) {
      ++p;
      continue;
    }
    out.append(run, static_cast<size_t>(p - run));
    run = ++p;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 15]};
        out.append(u, sizeof u);
      }
    }
  }
  out.append(run, static_cast<size_t>(end - run));
  out += '"';
}

void AppendJsonText(std::string& out, const boost::json::value& v) { AppendValue(out, v, 0); }

void AppendJsonText(std::string& out, const boost::json::object& o) { AppendObject(out, o, 0); }

}  // namespace coffer
