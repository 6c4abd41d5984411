// Durations as Vault accepts them: an integer number of seconds (JSON number or string),
// or a Go-style duration string ("90s", "15m", "1h30m", "2d").
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"

namespace coffer {

// 100 years: longer durations are refused so that time arithmetic can never overflow.
inline constexpr int64_t kMaxDurationSeconds = 100LL * 365 * 86400;

absl::StatusOr<int64_t> ParseDurationSeconds(std::string_view s);
absl::StatusOr<int64_t> ParseDurationSeconds(const boost::json::value& v);
inline absl::StatusOr<int64_t> ParseDurationSeconds(const char* s) {
  return ParseDurationSeconds(std::string_view(s));
}

}  // namespace coffer
