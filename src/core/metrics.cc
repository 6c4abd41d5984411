#include "core/metrics.h"

#include "absl/strings/str_format.h"
#include "boost/json.hpp"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

namespace {
std::string Escape(std::string_view v) { return EscapeLabelValue(v); }

std::string PrometheusName(std::string_view dotted) {
  std::string out(dotted);
  for (char& c : out)
    if (c == '.') c = '_';
  return out;
}

// Whole numbers (counts, unix times) exactly, anything else with full precision.
std::string FormatValue(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -9.0e15 && v < 9.0e15)
    return std::to_string(static_cast<int64_t>(v));
  return absl::StrFormat("%.17g", v);
}

json::value JsonValue(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v > -9.0e15 && v < 9.0e15)
    return static_cast<int64_t>(v);
  return v;
}

std::string LabelText(const MetricLabels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += Cat(out.empty() ? "" : ",", k, "=\"", Escape(v), "\"");
  return out;
}

json::object LabelObject(const MetricLabels& labels) {
  json::object o;
  for (const auto& [k, v] : labels) o[k] = v;
  return o;
}

// Each family once: HELP and TYPE, then its samples, families in order of first appearance.
void AppendGauges(std::string& out, const std::vector<MetricSample>& gauges) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const MetricSample*>, std::less<>> by_name;
  for (const MetricSample& g : gauges) {
    std::string name = PrometheusName(g.name);
    auto& list = by_name[name];
    if (list.empty()) order.push_back(name);
    list.push_back(&g);
  }
  for (const std::string& name : order) {
    const auto& list = by_name[name];
    out += Cat("# HELP ", name, " ", list.front()->help, "\n# TYPE ", name, " gauge\n");
    for (const MetricSample* g : list) {
      std::string labels = LabelText(g->labels);
      out += Cat(name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                 FormatValue(g->value), "\n");
    }
  }
}

void AppendHistograms(std::string& out, const std::vector<HistogramSample>& histograms) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const HistogramSample*>, std::less<>> by_name;
  for (const HistogramSample& h : histograms) {
    auto& list = by_name[h.prometheus_name];
    if (list.empty()) order.push_back(h.prometheus_name);
    list.push_back(&h);
  }
  for (const std::string& name : order) {
    const auto& list = by_name[name];
    out += Cat("# HELP ", name, " ", list.front()->help, "\n# TYPE ", name, " histogram\n");
    for (const HistogramSample* h : list) {
      const std::string labels = LabelText(h->labels);
      const std::string sep = labels.empty() ? "" : ",";
      for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i)
        out += Cat(name, "_bucket{", labels, sep, "le=\"",
                   absl::StrFormat("%g", LatencyHistogram::kBounds[i]), "\"} ",
                   h->snapshot.cumulative[i], "\n");
      out += Cat(name, "_bucket{", labels, sep, "le=\"+Inf\"} ", h->snapshot.count, "\n");
      const std::string braced = labels.empty() ? "" : Cat("{", labels, "}");
      out += Cat(name, "_sum", braced, " ", absl::StrFormat("%.6f", h->snapshot.sum), "\n");
      out += Cat(name, "_count", braced, " ", h->snapshot.count, "\n");
    }
  }
}
}  // namespace

void Metrics::Record(std::string_view mount, std::string_view op, int status, double seconds) {
  Series* series = nullptr;
  {
    ReaderMutexLock l(&mu_);
    auto it = series_.find(std::make_pair(std::string(mount), std::string(op)));
    if (it != series_.end()) series = it->second.get();
  }
  if (!series) {
    MutexLock l(&mu_);
    auto& slot = series_[{std::string(mount), std::string(op)}];
    if (!slot) slot = std::make_unique<Series>();
    series = slot.get();
  }
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) series->buckets[i].fetch_add(1, std::memory_order_relaxed);
  series->count.fetch_add(1, std::memory_order_relaxed);
  series->sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
  MutexLock l(&series->codes_mu);
  ++series->codes[status];
}

std::string Metrics::Prometheus(const Scrape& extra) const {
  ReaderMutexLock l(&mu_);
  std::string out =
      "# HELP coffer_requests_total Requests handled, by mount, operation and HTTP status.\n"
      "# TYPE coffer_requests_total counter\n";
  for (const auto& [k, s] : series_) {
    MutexLock cl(&s->codes_mu);
    for (const auto& [code, n] : s->codes)
      out += Cat("coffer_requests_total{mount=\"", Escape(k.first), "\",operation=\"", k.second,
                 "\",code=\"", code, "\"} ", n, "\n");
  }
  out +=
      "# HELP coffer_request_duration_seconds Request latency, by mount and operation.\n"
      "# TYPE coffer_request_duration_seconds histogram\n";
  for (const auto& [k, s] : series_) {
    std::string labels = Cat("mount=\"", Escape(k.first), "\",operation=\"", k.second, "\"");
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"",
                 absl::StrFormat("%g", kBuckets[i]), "\"} ", s->buckets[i].load(), "\n");
    out += Cat("coffer_request_duration_seconds_bucket{", labels, ",le=\"+Inf\"} ", s->count.load(),
               "\n");
    out += Cat("coffer_request_duration_seconds_sum{", labels, "} ",
               absl::StrFormat("%.6f", static_cast<double>(s->sum_ns.load()) / 1e9), "\n");
    out += Cat("coffer_request_duration_seconds_count{", labels, "} ", s->count.load(), "\n");
  }
  out +=
      "# HELP coffer_audit_device_failed 1 while the audit device's last write or open failed, "
      "by device path.\n"
      "# TYPE coffer_audit_device_failed gauge\n";
  for (const auto& [path, a] : audit_)
    out += Cat("coffer_audit_device_failed{path=\"", Escape(path), "\"} ", a.failed ? 1 : 0, "\n");
  out +=
      "# HELP coffer_audit_write_failures_total Audit entries the device could not record, by "
      "device path.\n"
      "# TYPE coffer_audit_write_failures_total counter\n";
  for (const auto& [path, a] : audit_)
    out += Cat("coffer_audit_write_failures_total{path=\"", Escape(path), "\"} ", a.write_failures,
               "\n");
  AppendHistograms(out, extra.histograms);
  AppendGauges(out, extra.gauges);
  return out;
}

boost::json::object Metrics::Json(const Scrape& extra) const {
  ReaderMutexLock l(&mu_);
  boost::json::array counters, samples, gauges;
  for (const auto& [k, s] : series_) {
    MutexLock cl(&s->codes_mu);
    for (const auto& [code, n] : s->codes)
      counters.push_back(boost::json::object{
          {"Name", "coffer.requests"},
          {"Count", n},
          {"Labels",
           boost::json::object{
               {"mount", k.first}, {"operation", k.second}, {"code", std::to_string(code)}}}});
    double sum = static_cast<double>(s->sum_ns.load()) / 1e9;
    uint64_t count = s->count.load();
    samples.push_back(boost::json::object{
        {"Name", "coffer.request.duration"},
        {"Count", count},
        {"Sum", sum},
        {"Mean", count ? sum / static_cast<double>(count) : 0.0},
        {"Labels", boost::json::object{{"mount", k.first}, {"operation", k.second}}}});
  }
  for (const auto& [path, a] : audit_) {
    counters.push_back(boost::json::object{{"Name", "coffer.audit.write_failures"},
                                           {"Count", a.write_failures},
                                           {"Labels", boost::json::object{{"path", path}}}});
    gauges.push_back(boost::json::object{{"Name", "coffer.audit.device_failed"},
                                         {"Value", a.failed ? 1 : 0},
                                         {"Labels", boost::json::object{{"path", path}}}});
  }
  for (const HistogramSample& h : extra.histograms) {
    const uint64_t count = h.snapshot.count;
    samples.push_back(
        boost::json::object{{"Name", h.json_name},
                            {"Count", count},
                            {"Sum", h.snapshot.sum},
                            {"Mean", count ? h.snapshot.sum / static_cast<double>(count) : 0.0},
                            {"Labels", LabelObject(h.labels)}});
  }
  for (const MetricSample& g : extra.gauges)
    gauges.push_back(boost::json::object{
        {"Name", g.name}, {"Value", JsonValue(g.value)}, {"Labels", LabelObject(g.labels)}});
  return boost::json::object{{"Counters", counters}, {"Samples", samples}, {"Gauges", gauges}};
}

absl::StatusOr<std::vector<MetricSample>> Metrics::UsageGauges(
    int64_t now, int64_t period,
    const std::function<absl::StatusOr<std::vector<MetricSample>>()>& compute) {
  MutexLock l(&usage_mu_);
  if (usage_valid_ && now >= usage_at_ && now - usage_at_ < period) return usage_;
  ASSIGN_OR_RETURN(auto fresh, compute());
  usage_ = std::move(fresh);
  usage_at_ = now;
  usage_valid_ = true;
  return usage_;
}

void Metrics::SetAuditDeviceFailed(std::string_view path, bool failed) {
  MutexLock l(&mu_);
  audit_[std::string(path)].failed = failed;
}

void Metrics::AddAuditWriteFailure(std::string_view path) {
  MutexLock l(&mu_);
  ++audit_[std::string(path)].write_failures;
}

void Metrics::RemoveAuditDevice(std::string_view path) {
  MutexLock l(&mu_);
  if (auto it = audit_.find(path); it != audit_.end()) audit_.erase(it);
}

}  // namespace coffer::core
