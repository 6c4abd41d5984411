// What a read of sys/metrics computes besides the recorded request and audit metrics: the seal
// and HA state, the storage latencies (TimedStorage), the tokens by policy (a usage gauge, as
// Vault's vault.token.count.by_policy) and the gauges each mounted backend reports
// (Backend::AppendMetrics: the PKI issuers' expiry and certificate counts).
#include <algorithm>

#include "core/core.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace {
// The token walk of one usage gauge computation reads at most this many entries (about a
// second of work), however many tokens there are.
constexpr size_t kMaxTokensCounted = 100000;
}  // namespace

Scrape Core::ScrapeMetrics() {
  Scrape out;
  out.gauges.push_back({.name = "coffer.core.unsealed",
                        .help = "1 when the server is unsealed, 0 when sealed.",
                        .value = sealed_ ? 0.0 : 1.0});
  out.gauges.push_back({.name = "coffer.core.ha_enabled",
                        .help = "1 when the server runs in an HA cluster with standbys.",
                        .value = opts_.ha_enabled ? 1.0 : 0.0});
  out.gauges.push_back({.name = "coffer.core.active",
                        .help = "1 when this server is the active node and serves requests.",
                        .value = standby_ ? 0.0 : 1.0});
  if (opts_.ha_enabled) {
    static constexpr char kHelp[] =
        "Requests this server took as an HA standby that serves: run here (local) or, as they "
        "write, sent to the active server (forwarded). Counts since the server started.";
    out.gauges.push_back({.name = "coffer.ha.standby_requests",
                          .help = kHelp,
                          .labels = {{"outcome", "local"}},
                          .value = static_cast<double>(standby_local_.load())});
    out.gauges.push_back({.name = "coffer.ha.standby_requests",
                          .help = kHelp,
                          .labels = {{"outcome", "forwarded"}},
                          .value = static_cast<double>(standby_forwarded_.load())});
  }

  for (int op = 0; op < storage::TimedStorage::kNumOps; ++op) {
    const auto o = static_cast<storage::TimedStorage::Op>(op);
    out.histograms.push_back(
        {.prometheus_name = "coffer_storage_operation_seconds",
         .json_name = "coffer.storage.operation",
         .help = "Latency of the storage backend's operations, under the barrier, by operation.",
         .labels = {{"op", std::string(storage::TimedStorage::kOpNames[op])}},
         .snapshot = timed_physical_->histogram(o).Read()});
  }

  if (cache_) {
    static constexpr char kHelp[] =
        "Reads of the storage read cache (disable_cache, cache_size) since the server started: "
        "answered from it (hit) or from the backend (miss).";
    out.gauges.push_back({.name = "coffer.storage.cache",
                          .help = kHelp,
                          .labels = {{"result", "hit"}},
                          .value = static_cast<double>(cache_->hits())});
    out.gauges.push_back({.name = "coffer.storage.cache",
                          .help = kHelp,
                          .labels = {{"result", "miss"}},
                          .value = static_cast<double>(cache_->misses())});
  }

  if (opts_.usage_gauge_period > 0) {
    auto tokens = metrics_.UsageGauges(
        opts_.clock->NowUnix(), opts_.usage_gauge_period,
        [this]() -> absl::StatusOr<std::vector<MetricSample>> {
          bool complete = true;
          ASSIGN_OR_RETURN(auto counts, tokens_->CountByPolicy(kMaxTokensCounted, &complete));
          if (!complete)
            log::Warn("metrics: tokens by policy counted over the first tokens only",
                      {{"tokens_counted", std::to_string(kMaxTokensCounted)}});
          std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
          // Vault keeps the largest values when a gauge has more label values than
          // maximum_gauge_cardinality.
          std::stable_sort(sorted.begin(), sorted.end(),
                           [](const auto& a, const auto& b) { return a.second > b.second; });
          if (opts_.maximum_gauge_cardinality > 0 &&
              sorted.size() > static_cast<size_t>(opts_.maximum_gauge_cardinality))
            sorted.resize(static_cast<size_t>(opts_.maximum_gauge_cardinality));
          std::sort(sorted.begin(), sorted.end());
          std::vector<MetricSample> samples;
          samples.reserve(sorted.size());
          for (auto& [policy, n] : sorted)
            samples.push_back({.name = "coffer.token.count.by_policy",
                               .help = "Live tokens by policy (a token counts under each of its "
                                       "policies), recomputed every usage_gauge_period.",
                               .labels = {{"policy", policy}},
                               .value = static_cast<double>(n)});
          return samples;
        });
    if (tokens.ok()) {
      out.gauges.insert(out.gauges.end(), tokens->begin(), tokens->end());
    } else {
      log::Warn("metrics: counting the tokens by policy failed", {{"error", Msg(tokens.status())}});
    }
  }

  std::vector<std::shared_ptr<Mount>> mounts;
  {
    ReaderMutexLock l(&mounts_mu_);
    mounts.reserve(mounts_.size());
    for (const auto& [path, m] : mounts_)
      if (m->backend) mounts.push_back(m);  // "sys/" has none: the system backend is apart
  }
  for (const auto& m : mounts) {
    std::vector<MetricSample> samples;
    {
      // Under the gate, as a request: a mount being disabled or replaced waits for this, and a
      // retired backend (Cleanup() done) is not asked.
      ReaderMutexLock gate(&m->gate->mu);
      if (m->gate->retired) continue;
      m->backend->AppendMetrics(samples);
    }
    for (MetricSample& s : samples) {
      s.labels.insert(s.labels.begin(), {"mount", m->entry.path});
      out.gauges.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace coffer::core
