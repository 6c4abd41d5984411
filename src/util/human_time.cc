#include "util/human_time.h"

#include <ctime>

#include "util/status.h"

namespace coffer {
namespace {

constexpr int64_t kMinute = 60, kHour = 3600, kDay = 86400, kYear = 365 * kDay;

std::tm Utc(int64_t t) {
  std::tm tm{};
  const auto tt = static_cast<std::time_t>(t);
  gmtime_r(&tt, &tm);
  return tm;
}

std::string Format(int64_t t, const char* fmt) {
  std::tm tm = Utc(t);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), fmt, &tm);
  return std::string(buf, n);
}

}  // namespace

std::string Rfc3339Utc(int64_t unix_seconds) { return Format(unix_seconds, "%Y-%m-%dT%H:%M:%SZ"); }

std::string SpanText(int64_t seconds) {
  uint64_t s = seconds < 0 ? static_cast<uint64_t>(-(seconds + 1)) + 1 : seconds;
  const uint64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  if (d > 0) return h > 0 ? Cat(d, "d ", h, "h") : Cat(d, "d");
  if (h > 0) return m > 0 ? Cat(h, "h ", m, "m") : Cat(h, "h");
  if (m > 0) return sec > 0 ? Cat(m, "m ", sec, "s") : Cat(m, "m");
  return Cat(sec, "s");
}

std::string Remaining(int64_t unix_seconds, int64_t now) {
  if (unix_seconds >= now) return Cat("in ", SpanText(unix_seconds - now));
  return Cat("expired ", SpanText(now - unix_seconds), " ago");
}

std::string ExpiryText(int64_t unix_seconds, int64_t now) {
  return Cat(Rfc3339Utc(unix_seconds), " (", Remaining(unix_seconds, now), ")");
}

std::string TtlText(int64_t seconds) {
  if (seconds <= 0) return "0s";
  const int64_t h = seconds / 3600, m = seconds % 3600 / 60, s = seconds % 60;
  std::string out;
  if (h > 0) out += Cat(h, "h");
  if (m > 0) out += Cat(m, "m");
  if (s > 0) out += Cat(s, "s");
  return out;
}

std::string KubeadmDate(int64_t unix_seconds) {
  return Format(unix_seconds, "%b %d, %Y %H:%M UTC");
}

std::string KubeadmResidual(int64_t unix_seconds, int64_t now) {
  // kubeadm prints the duration rounded down to its largest unit (duration.ShortHumanDuration).
  if (unix_seconds <= now) return "<invalid>";
  const int64_t s = unix_seconds - now;
  if (s < 2 * kMinute) return Cat(s, "s");
  if (s < 2 * kHour) return Cat(s / kMinute, "m");
  if (s < 2 * kDay) return Cat(s / kHour, "h");
  if (s < 2 * kYear) return Cat(s / kDay, "d");
  return Cat(s / kYear, "y");
}

}  // namespace coffer
