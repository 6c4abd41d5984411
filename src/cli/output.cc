// Output formats (json, yaml, pretty), -field values and -output-curl-string; see output.h.
#include "cli/output.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>
#include <regex>
#include <vector>

#include "cli/client_util.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

std::string Spaces(size_t n) { return std::string(n, ' '); }

std::string NumberText(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.as_double());
  return ec == std::errc() ? std::string(buf, end) : json::serialize(v);
}

std::vector<std::pair<std::string_view, const json::value*>> SortedEntries(const json::object& o) {
  std::vector<std::pair<std::string_view, const json::value*>> out;
  out.reserve(o.size());
  for (const auto& [k, v] : o) out.emplace_back(std::string_view(k), &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// ---- json, as Go's json.MarshalIndent(v, "", "  ") --------------------------------------------

void JsonTo(const json::value& v, size_t indent, std::string* out) {
  if (v.is_object() && !v.as_object().empty()) {
    *out += "{\n";
    bool first = true;
    for (const auto& [k, x] : v.as_object()) {
      if (!first) *out += ",\n";
      first = false;
      *out += Spaces(indent + 2) + json::serialize(json::string(k)) + ": ";
      JsonTo(x, indent + 2, out);
    }
    *out += "\n" + Spaces(indent) + "}";
  } else if (v.is_array() && !v.as_array().empty()) {
    *out += "[\n";
    bool first = true;
    for (const auto& x : v.as_array()) {
      if (!first) *out += ",\n";
      first = false;
      *out += Spaces(indent + 2);
      JsonTo(x, indent + 2, out);
    }
    *out += "\n" + Spaces(indent) + "]";
  } else if (v.is_double()) {
    *out += NumberText(v);
  } else {
    *out += json::serialize(v);  // scalars, {} and []
  }
}

// ---- yaml, as vault's ghodss/yaml (go-yaml v2 and libyaml's emitter) --------------------------

// A plain scalar YAML 1.1 would read as something other than a string (go-yaml's resolve table,
// and PyYAML's, which also reads timestamps): such strings are double-quoted.
bool ResolvesToNonString(const std::string& s) {
  static const char* const kWords[] = {
      "",      "~",     "null",  "Null", "NULL", "y",    "Y",    "yes",   "Yes",   "YES",   "n",
      "N",     "no",    "No",    "NO",   "true", "True", "TRUE", "false", "False", "FALSE", "on",
      "On",    "ON",    "off",   "Off",  "OFF",  ".inf", ".Inf", ".INF",  "-.inf", "-.Inf", "-.INF",
      "+.inf", "+.Inf", "+.INF", ".nan", ".NaN", ".NAN", "=",    "<<"};
  for (const char* w : kWords)
    if (s == w) return true;
  const char c = s[0];
  if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.'))
    return false;
  static const std::regex kNumber(
      "[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(:[0-5]?[0-9])*(\\.[0-9_]*)?"
      "([eE][-+]?[0-9]+)?|\\.[0-9_]+([eE][-+]?[0-9]+)?)");
  static const std::regex kTimestamp("[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?");
  return std::regex_match(s, kNumber) || std::regex_match(s, kTimestamp);
}

bool Printable(unsigned char c) { return c >= 0x20 && c != 0x7f; }

std::string DoubleQuoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (Printable(c)) {
          out += ch;
        } else {
          static const char kHex[] = "0123456789ABCDEF";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
    }
  }
  return out + "\"";
}

// A one-line string's scalar: plain when libyaml would write it plain, else single-quoted (or
// double-quoted when it has characters single quotes cannot hold, or reads as another type).
std::string YamlScalarText(const std::string& s) {
  if (ResolvesToNonString(s)) return DoubleQuoted(s);
  for (char ch : s)
    if (!Printable(static_cast<unsigned char>(ch))) return DoubleQuoted(s);
  bool plain = s.front() != ' ' && s.back() != ' ' && s.back() != ':';
  static constexpr std::string_view kIndicators = "#,[]{}&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string_view::npos) plain = false;
  if ((s.front() == '-' || s.front() == '?' || s.front() == ':') && (s.size() == 1 || s[1] == ' '))
    plain = false;
  if (s.starts_with("---") || s.starts_with("...")) plain = false;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) plain = false;
  if (plain) return s;
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

// A string as a scalar whose block content (a literal block) sits at `indent`.
std::string YamlString(const std::string& s, size_t indent) {
  if (s.find('\n') == std::string::npos) return s.empty() ? "\"\"" : YamlScalarText(s);
  // A literal block, unless a character or a space before a line break forbids it (libyaml).
  bool block = true;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c != '\n' && !Printable(c)) || (s[i] == '\n' && i > 0 && s[i - 1] == ' ')) block = false;
  }
  if (!s.empty() && s.back() == ' ') block = false;
  if (!block) return DoubleQuoted(s);
  std::string header = "|";
  if (s.front() == ' ' || s.front() == '\n') header += "2";
  std::string body = s;
  if (s.back() != '\n') {
    header += "-";
  } else if (s.size() == 1 || s[s.size() - 2] == '\n') {
    header += "+";
    body.pop_back();
  } else {
    body.pop_back();
  }
  std::string out = header;
  size_t start = 0;
  for (;;) {
    const size_t nl = body.find('\n', start);
    std::string_view line(body.data() + start,
                          (nl == std::string::npos ? body.size() : nl) - start);
    out += "\n";
    if (!line.empty()) out += Spaces(indent) + std::string(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string YamlScalar(const json::value& v, size_t indent) {
  if (v.is_string()) return YamlString(std::string(v.as_string()), indent);
  if (v.is_null()) return "null";
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return NumberText(v);
}

bool IsCollection(const json::value& v) {
  return (v.is_object() && !v.as_object().empty()) || (v.is_array() && !v.as_array().empty());
}

// Emits `v` (a non-empty collection) with its lines at `indent`; every line ends in "\n".
void YamlTo(const json::value& v, size_t indent, std::string* out) {
  if (v.is_object()) {
    for (const auto& [k, x] : SortedEntries(v.as_object())) {
      const std::string key(k);
      *out += Spaces(indent) +
              (key.find('\n') == std::string::npos ? YamlString(key, indent) : DoubleQuoted(key)) +
              ":";
      if (!IsCollection(*x)) {
        *out += " " + YamlScalar(*x, indent + 2) + "\n";
      } else {
        *out += "\n";
        // go-yaml writes a sequence under a key at the key's own indentation.
        YamlTo(*x, x->is_array() ? indent : indent + 2, out);
      }
    }
    return;
  }
  for (const auto& x : v.as_array()) {
    *out += Spaces(indent) + "-";
    if (!IsCollection(x)) {
      *out += " " + YamlScalar(x, indent + 2) + "\n";
      continue;
    }
    // The collection's first line goes on the dash's line.
    std::string inner;
    YamlTo(x, indent + 2, &inner);
    *out += " " + inner.substr(indent + 2);
  }
}

// ---- pretty -----------------------------------------------------------------------------------

std::string PrettyScalar(const json::value& v, size_t column) {
  std::string s = v.is_null() ? "n/a" : ValueText(v);
  for (size_t at = 0; (at = s.find('\n', at)) != std::string::npos; at += column + 1)
    s.insert(at + 1, Spaces(column));
  return s;
}

void PrettyTo(const json::value& v, size_t indent, std::string* out) {
  if (v.is_object()) {
    const auto entries = SortedEntries(v.as_object());
    size_t width = 0;
    for (const auto& [k, x] : entries)
      if (!IsCollection(*x)) width = std::max(width, k.size() + 1);
    for (const auto& [k, x] : entries) {
      std::string label = std::string(k) + ":";
      if (IsCollection(*x)) {
        *out += Spaces(indent) + label + "\n";
        PrettyTo(*x, indent + 3, out);
      } else {
        const size_t column = indent + width + 4;
        const std::string value = PrettyScalar(*x, column);
        *out += Spaces(indent) + label;
        if (!value.empty()) *out += Spaces(width + 4 - label.size()) + value;
        *out += "\n";
      }
    }
    return;
  }
  if (v.is_array()) {
    size_t i = 0;
    for (const auto& x : v.as_array()) {
      if (IsCollection(x)) {
        *out += Spaces(indent) + "[" + std::to_string(i) + "]\n";
        PrettyTo(x, indent + 3, out);
      } else {
        *out += Spaces(indent) + PrettyScalar(x, indent) + "\n";
      }
      ++i;
    }
    return;
  }
  *out += Spaces(indent) + PrettyScalar(v, indent) + "\n";
}

bool g_curl_mode = false;
bool g_curl_printed = false;

// Single-quoted for a shell ('"'"' for a quote), as vault quotes -d and file names.
std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string IndentedJson(const json::value& v) {
  std::string out;
  JsonTo(v, 0, &out);
  return out;
}

std::string Yaml(const json::value& v) {
  if (!IsCollection(v)) return YamlScalar(v, 2);
  std::string out;
  YamlTo(v, 0, &out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string Pretty(const json::value& v) {
  std::string out;
  PrettyTo(v, 0, &out);
  return out;
}

bool KnownFormat(std::string_view format, bool raw_allowed) {
  return format.empty() || format == "table" || format == "json" || format == "yaml" ||
         format == "yml" || format == "pretty" || (raw_allowed && format == "raw");
}

void CheckFormat(const ClientFlags& f, bool raw_allowed) {
  const std::string format = Format(f);
  if (KnownFormat(format, raw_allowed)) return;
  if (format == "raw")
    std::cerr << "Could not parse output: This command does not support the -format=raw option; "
                 "only `coffer read` does.\n";
  else
    std::cerr << "Invalid output format: " << format << "\n";
  throw CLI::RuntimeError(kExitLocal);
}

bool PrintStructured(const json::value& v, std::string_view format) {
  if (format == "json") {
    std::cout << IndentedJson(v) << "\n";
  } else if (format == "yaml" || format == "yml") {
    std::cout << Yaml(v) << "\n";
  } else if (format == "pretty") {
    std::cout << Pretty(v);
  } else {
    return false;
  }
  return true;
}

void PrintFieldValue(const json::value& v, std::string_view format) {
  if (format == "json")
    std::cout << IndentedJson(v);
  else if (format == "yaml" || format == "yml")
    std::cout << Yaml(v) << "\n";
  else
    std::cout << ValueText(v);
  if (isatty(STDOUT_FILENO)) std::cout << "\n";
}

void SetCurlMode(bool on) { g_curl_mode = on; }
bool CurlMode() { return g_curl_mode; }
bool CurlPrinted() { return g_curl_printed; }

CurlSuspended::CurlSuspended() : was_(g_curl_mode) { g_curl_mode = false; }
CurlSuspended::~CurlSuspended() { g_curl_mode = was_; }

std::string CurlString(const http::ClientOptions& o, std::string_view method, std::string_view path,
                       std::string_view body) {
  std::string out = "curl ";
  if (o.skip_verify) out += "--insecure ";
  std::string url = o.address + std::string(path);
  if (method == "LIST") {
    method = "GET";
    url += url.find('?') == std::string::npos ? "?list=true" : "&list=true";
  }
  if (method != "GET") out += "-X " + std::string(method) + " ";
  if (!o.ca_cert.empty()) out += "--cacert " + ShellQuote(o.ca_cert) + " ";
  if (!o.client_cert_file.empty()) out += "--cert " + ShellQuote(o.client_cert_file) + " ";
  if (!o.client_key_file.empty()) out += "--key " + ShellQuote(o.client_key_file) + " ";
  out += "-H \"X-Vault-Request: true\" ";
  if (!o.token.empty()) out += "-H \"X-Vault-Token: $(coffer print token)\" ";
  if (!o.wrap_ttl.empty()) out += "-H " + ShellQuote("X-Vault-Wrap-TTL: " + o.wrap_ttl) + " ";
  for (const auto& [name, value] : o.headers) {
    std::string header = name;
    header += ": ";
    header += value;
    out += "-H " + ShellQuote(header) + " ";
  }
  if (!body.empty()) out += "-d " + ShellQuote(body) + " ";
  // Vault leaves the URL bare; a query's ? and & would mean something to the shell.
  const bool bare = url.find_first_of("?&;*[]$'\"\\ ()<>|`!#") == std::string::npos;
  return out + (bare ? url : ShellQuote(url));
}

void PrintCurl(const http::ClientOptions& o, std::string_view method, std::string_view path,
               std::string_view body) {
  std::cout << CurlString(o, method, path, body) << "\n";
  g_curl_printed = true;
}

}  // namespace coffer::cli
