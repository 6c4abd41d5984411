// Times as a person reads them (issue 17): an instant as RFC 3339 in UTC, a remaining time as
// "364d 23h", a TTL as Vault's CLI prints durations ("8760h", "24h", "30m", "45s"), and
// kubeadm's check-expiration forms. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace coffer {

// A Unix time's civil date and time in UTC, proleptic Gregorian, for any int64 seconds (Howard
// Hinnant's days_from_civil inverse: no gmtime, no time zone database).
struct CivilTime {
  int64_t year, month, day, hour, minute, second;
};
CivilTime CivilUtc(int64_t unix_seconds);

// "2027-11-30T17:00:00Z".
std::string Rfc3339Utc(int64_t unix_seconds);
// The two largest units of a span: "364d 23h", "5h 3m", "42s", "0s" (negative spans as their
// absolute value; callers say "ago").
std::string SpanText(int64_t seconds);
// "in 364d 23h" for a future instant, "expired 2d 3h ago" for a past one, relative to now.
std::string Remaining(int64_t unix_seconds, int64_t now);
// "2027-11-30T17:00:00Z (in 364d 23h)".
std::string ExpiryText(int64_t unix_seconds, int64_t now);
// Vault's duration style: whole hours as "8760h", else minutes "90m", else seconds "45s";
// mixed values as Go prints them ("1h30m", "2m5s"); 0 is "0s".
std::string TtlText(int64_t seconds);
// kubeadm's EXPIRES column: "Nov 30, 2027 17:00 UTC".
std::string KubeadmDate(int64_t unix_seconds);
// kubeadm's RESIDUAL TIME column: "364d", "9y", "23h", "<invalid>" once expired.
std::string KubeadmResidual(int64_t unix_seconds, int64_t now);

}  // namespace coffer
