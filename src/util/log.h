// Structured logging over spdlog. Lines are "text" (time level message key=value ...) or "json"
// (one object per line). Callers pass only non-secret fields: tokens, keys, request bodies and
// secret values are never given to the logger (tests grep the log for them).
//
// The logger is spdlog's process-wide default (configured once at start-up by the CLI); this is
// the one global in Coffer, kept because every layer logs. Thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace coffer::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError };

// level: trace|debug|info|warn|error; format: text|json. `path` empty: stderr.
absl::Status Configure(std::string_view level, std::string_view format, std::string_view path = "");

using Field = std::pair<std::string_view, std::string>;
void Log(Level level, std::string_view msg, std::initializer_list<Field> fields = {});
bool Enabled(Level level);

inline void Info(std::string_view m, std::initializer_list<Field> f = {}) {
  Log(Level::kInfo, m, f);
}
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) {
  Log(Level::kWarn, m, f);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) {
  Log(Level::kError, m, f);
}
inline void Debug(std::string_view m, std::initializer_list<Field> f = {}) {
  Log(Level::kDebug, m, f);
}

}  // namespace coffer::log
