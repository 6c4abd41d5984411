#include "util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "util/status.h"

namespace coffer::log {
namespace {

std::atomic<bool> g_json{false};
std::once_flag g_default_once;

void EnsureConfigured() {
  std::call_once(g_default_once, [] {
    if (spdlog::default_logger_raw()->name() != "coffer") (void)Configure("info", "text");
  });
}

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view Name(Level l) {
  switch (l) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

}  // namespace

absl::Status Configure(std::string_view level, std::string_view format, std::string_view path) {
  spdlog::level::level_enum lvl;
  if (level == "trace")
    lvl = spdlog::level::trace;
  else if (level == "debug")
    lvl = spdlog::level::debug;
  else if (level == "info" || level.empty())
    lvl = spdlog::level::info;
  else if (level == "warn" || level == "warning")
    lvl = spdlog::level::warn;
  else if (level == "error" || level == "err")
    lvl = spdlog::level::err;
  else
    return absl::InvalidArgumentError(
        Cat("log_level \"", level, "\" is not one of trace, debug, info, warn, error"));
  if (format == "json")
    g_json = true;
  else if (format == "text" || format == "standard" || format.empty())
    g_json = false;
  else
    return absl::InvalidArgumentError(Cat("log_format \"", format, "\" is not text or json"));
  std::shared_ptr<spdlog::logger> logger;
  if (path.empty()) {
    logger = std::make_shared<spdlog::logger>("coffer",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "coffer", std::make_shared<spdlog::sinks::basic_file_sink_mt>(std::string(path)));
  }
  logger->set_pattern("%v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

bool Enabled(Level level) {
  EnsureConfigured();
  return spdlog::default_logger_raw()->should_log(ToSpd(level));
}

void Log(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  EnsureConfigured();
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(ToSpd(level))) return;
  std::string now = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (g_json) {
    boost::json::object o{{"@timestamp", now}, {"@level", Name(level)}, {"@message", msg}};
    for (const auto& [k, v] : fields) o[k] = v;
    line = boost::json::serialize(o);
  } else {
    line = Cat(now, " [", Name(level), "] ", msg);
    for (const auto& [k, v] : fields) {
      line += Cat(" ", k, "=");
      line += NeedsQuotes(v) ? boost::json::serialize(boost::json::value(v)) : v;
    }
  }
  logger->log(ToSpd(level), "{}", line);
}

}  // namespace coffer::log
