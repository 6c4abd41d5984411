#include "util/duration.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "util/status.h"

namespace coffer {

namespace {
absl::Status OutOfRange() {
  return absl::InvalidArgumentError("duration out of range: the longest accepted is 100 years");
}
}  // namespace

absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view s) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        Cat("invalid duration \"", s, "\": use seconds or a unit such as 30s, 15m, 12h, 7d"));
  };
  if (s.empty()) return bad();
  bool all_digits = true;
  for (char c : s) all_digits = all_digits && std::isdigit(static_cast<unsigned char>(c));
  if (all_digits) {
    if (s.size() > 12) return bad();
    int64_t n = std::stoll(std::string(s));
    if (n > kMaxDurationSeconds) return OutOfRange();
    return n;
  }
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start || i - start > 12) return bad();
    // strtod never throws; the whole number must be consumed ("." or "1.2.3" are refused).
    std::string digits(s.substr(start, i - start));
    char* end = nullptr;
    double num = std::strtod(digits.c_str(), &end);
    if (end != digits.c_str() + digits.size()) return bad();
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double mult;
    if (unit == "s")
      mult = 1;
    else if (unit == "m")
      mult = 60;
    else if (unit == "h")
      mult = 3600;
    else if (unit == "d")
      mult = 86400;
    else if (unit == "ms")
      mult = 0.001;
    else
      return bad();
    total += num * mult;
  }
  if (!(total <= static_cast<double>(kMaxDurationSeconds))) return OutOfRange();
  return static_cast<int64_t>(std::floor(total));
}

absl::StatusOr<int64_t> ParseDurationSeconds(const boost::json::value& v) {
  if (v.is_int64()) {
    if (v.as_int64() < 0) return absl::InvalidArgumentError("duration must not be negative");
    if (v.as_int64() > kMaxDurationSeconds) return OutOfRange();
    return v.as_int64();
  }
  if (v.is_uint64()) return OutOfRange();  // above INT64_MAX
  if (v.is_double()) {
    const double d = v.as_double();
    if (!(d >= 0 && d <= static_cast<double>(kMaxDurationSeconds))) return OutOfRange();
    return static_cast<int64_t>(d);
  }
  if (v.is_string()) return ParseDurationSeconds(std::string_view(v.as_string()));
  return absl::InvalidArgumentError(
      "duration must be a number of seconds or a string such as \"1h\"");
}

}  // namespace coffer
