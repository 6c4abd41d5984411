// The PKI engine's gauges in sys/metrics: each issuer's notAfter, so that an alert on a CA about
// to expire is one line of PromQL, and how many certificates the mount stores and has revoked
// (the counts also appear in tidy-status, under Vault's names).
//
// The issuers come from the issuer cache (their notAfter was parsed when they were loaded, and
// InvalidateIssuers drops them with the rest). The counts list certs/ and revoked/ a page at a
// time (names only: no record is read or decrypted), and a count is reused until twenty times the
// time it took has passed: a small mount is counted afresh at every read, and counting a large
// one costs at most a twentieth of one core however often the metrics are read.
#include "engines/pki/pki_internal.h"
#include "util/status.h"

namespace coffer::engines::pki {
namespace {

// How long a count is reused, as a multiple of the time it took.
constexpr int kCountReuseFactor = 20;

absl::StatusOr<int64_t> CountKeys(storage::Storage* s, std::string_view prefix) {
  int64_t n = 0;
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(auto names, s->List(prefix, after, kPage));
    n += static_cast<int64_t>(names.size());
    if (names.size() < kPage) return n;
    after = names.back();
  }
}

}  // namespace

absl::StatusOr<PkiBackend::CertCounts> PkiBackend::Counts(storage::Storage* s) {
  MutexLock l(&counts_mu_);
  const auto start = std::chrono::steady_clock::now();
  if (counts_.valid && start < counts_.due) return counts_;
  counts_.valid = false;
  ASSIGN_OR_RETURN(int64_t stored, CountKeys(s, "certs/"));
  ASSIGN_OR_RETURN(int64_t revoked, CountKeys(s, "revoked/"));
  const auto end = std::chrono::steady_clock::now();
  counts_ = {.valid = true,
             .stored = stored,
             .revoked = revoked,
             .due = end + (end - start) * kCountReuseFactor};
  return counts_;
}

void PkiBackend::AppendMetrics(std::vector<core::MetricSample>& out) {
  storage::Storage* s = config_.storage;
  if (!s) return;
  auto issuers = AllIssuers(s);
  if (issuers.ok()) {
    for (const auto& is : *issuers)
      out.push_back({.name = "coffer.pki.issuer.not_after_seconds",
                     .help = "The issuer certificate's notAfter, in unix seconds.",
                     .labels = {{"issuer_id", is->id}, {"issuer_name", is->name}},
                     .value = static_cast<double>(is->not_after)});
  } else {
    config_.LogWarn(Cat("pki metrics: the issuers could not be loaded: ", Msg(issuers.status())));
  }

  auto counts = Counts(s);
  if (!counts.ok()) {
    config_.LogWarn(Cat("pki metrics: counting the certificates failed: ", Msg(counts.status())));
    return;
  }
  out.push_back({.name = "coffer.pki.certificates.stored",
                 .help = "Certificates stored in the mount (certs/, revoked ones included).",
                 .value = static_cast<double>(counts->stored)});
  out.push_back(
      {.name = "coffer.pki.certificates.revoked",
       .help = "Revoked certificates the mount keeps (revoked/, until tidy removes them).",
       .value = static_cast<double>(counts->revoked)});
}

}  // namespace coffer::engines::pki
