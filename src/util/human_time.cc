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

CivilTime CivilUtc(int64_t unix_seconds) {
  int64_t days = unix_seconds / kDay, secs = unix_seconds % kDay;
  if (secs < 0) {
    secs += kDay;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return {yoe + era * 400 + (month <= 2 ? 1 : 0),
          month,
          day,
          secs / kHour,
          secs % kHour / kMinute,
          secs % kMinute};
}

// Without strftime or a time zone database: this runs on every token lookup and audit entry.
std::string Rfc3339Utc(int64_t unix_seconds) {
  const CivilTime c = CivilUtc(unix_seconds);
  if (c.year < 0 || c.year > 9999) return Format(unix_seconds, "%Y-%m-%dT%H:%M:%SZ");
  char buf[21];
  auto put = [&buf](int at, int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) buf[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, c.year, 4);
  buf[4] = '-';
  put(5, c.month, 2);
  buf[7] = '-';
  put(8, c.day, 2);
  buf[10] = 'T';
  put(11, c.hour, 2);
  buf[13] = ':';
  put(14, c.minute, 2);
  buf[16] = ':';
  put(17, c.second, 2);
  buf[19] = 'Z';
  return std::string(buf, 20);
}

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
