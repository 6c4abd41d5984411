#include "util/json_parse.h"

#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "boost/json/parse.hpp"
#include "util/status.h"

namespace coffer {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// The first pass: counts what a parse would build and stops at the first limit crossed.
class LimitChecker {
 public:
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);

  explicit LimitChecker(const JsonLimits& l) : l_(l) {}
  const std::string& problem() const { return problem_; }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code& ec) { return Open(false, ec); }
  bool on_array_end(size_t, error_code&) { return Close(); }
  bool on_object_begin(error_code& ec) { return Open(true, ec); }
  bool on_object_end(size_t, error_code&) { return Close(); }
  bool on_string_part(std::string_view, size_t n, error_code& ec) {
    if (!in_string_ && !Value(ec)) return false;
    in_string_ = true;
    return Length(n, "string value", ec);
  }
  bool on_string(std::string_view, size_t n, error_code& ec) {
    if (!in_string_ && !Value(ec)) return false;
    in_string_ = false;
    return Length(n, "string value", ec);
  }
  bool on_key_part(std::string_view, size_t n, error_code& ec) {
    if (!in_key_ && !Key(ec)) return false;
    in_key_ = true;
    return Length(n, "object key", ec);
  }
  bool on_key(std::string_view, size_t n, error_code& ec) {
    if (!in_key_ && !Key(ec)) return false;
    in_key_ = false;
    return Length(n, "object key", ec);
  }
  bool on_number_part(std::string_view s, error_code& ec) {
    number_len_ += s.size();
    return Length(number_len_, "number", ec);
  }
  bool on_int64(int64_t, std::string_view s, error_code& ec) { return Number(s, true, ec); }
  bool on_uint64(uint64_t, std::string_view s, error_code& ec) { return Number(s, true, ec); }
  bool on_double(double d, std::string_view s, error_code& ec) {
    return Number(s, std::isfinite(d), ec);
  }
  bool on_bool(bool, error_code& ec) { return Value(ec); }
  bool on_null(error_code& ec) { return Value(ec); }
  bool on_comment_part(std::string_view, error_code&) { return true; }
  bool on_comment(std::string_view, error_code&) { return true; }

 private:
  struct Level {
    bool object;
    size_t count;
  };

  bool Fail(std::string msg, error_code& ec) {
    problem_ = std::move(msg);
    ec = json::error::exception;  // any error stops the parser; problem_ says which
    return false;
  }
  // A value starts: it is one more element of the enclosing array (object entries are counted
  // by their keys).
  bool Value(error_code& ec) {
    if (!Token(ec)) return false;
    if (stack_.empty() || stack_.back().object) return true;
    if (++stack_.back().count > l_.max_array_elements)
      return Fail(Cat("JSON array exceeds the allowed element count (max_json_array_element_count "
                      "= ",
                      l_.max_array_elements, ")"),
                  ec);
    return true;
  }
  bool Token(error_code& ec) {
    if (++tokens_ <= l_.max_tokens) return true;
    return Fail(Cat("JSON input exceeds the allowed number of values and keys (max_json_token = ",
                    l_.max_tokens, ")"),
                ec);
  }
  bool Key(error_code& ec) {
    if (!Token(ec)) return false;
    if (++stack_.back().count > l_.max_object_entries)
      return Fail(Cat("JSON object exceeds the allowed entry count (max_json_object_entry_count = ",
                      l_.max_object_entries, ")"),
                  ec);
    return true;
  }
  bool Open(bool object, error_code& ec) {
    if (!Value(ec)) return false;
    if (stack_.size() >= l_.max_depth)
      return Fail(
          Cat("JSON input exceeds the allowed nesting depth (max_json_depth = ", l_.max_depth, ")"),
          ec);
    stack_.push_back({object, 0});
    return true;
  }
  bool Close() {
    stack_.pop_back();
    return true;
  }
  bool Length(size_t n, std::string_view what, error_code& ec) {
    if (n <= l_.max_string_bytes) return true;
    return Fail(Cat("JSON ", what, " exceeds the allowed length (max_json_string_value_length = ",
                    l_.max_string_bytes, " bytes)"),
                ec);
  }
  bool Number(std::string_view last, bool finite, error_code& ec) {
    const size_t len = number_len_ + last.size();
    number_len_ = 0;
    if (!Value(ec) || !Length(len, "number", ec)) return false;
    if (!finite)
      return Fail("JSON number is out of range (it overflows a 64-bit floating point value)", ec);
    return true;
  }

  const JsonLimits& l_;
  std::vector<Level> stack_;
  bool in_string_ = false, in_key_ = false;
  size_t tokens_ = 0;
  size_t number_len_ = 0;
  std::string problem_;
};

}  // namespace

absl::StatusOr<json::value> ParseUntrustedJson(std::string_view text, const JsonLimits& limits) {
  json::parse_options opts;
  opts.max_depth = limits.max_depth + 1;  // the checker names the limit first
  {
    json::basic_parser<LimitChecker> check(opts, limits);
    error_code ec;
    const size_t used = check.write_some(false, text.data(), text.size(), ec);
    if (!check.handler().problem().empty())
      return absl::InvalidArgumentError(check.handler().problem());
    if (!ec && used != text.size()) ec = json::error::extra_data;
    if (ec) return absl::InvalidArgumentError(Cat("failed to parse JSON input: ", ec.message()));
  }
  error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return absl::InvalidArgumentError(Cat("failed to parse JSON input: ", ec.message()));
  return v;
}

}  // namespace coffer
