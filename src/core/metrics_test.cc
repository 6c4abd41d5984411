// The metrics' rendering (Prometheus text format and Vault's JSON shape), the usage gauge cache,
// the latency histogram and the storage timing decorator.
#include "core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "storage/memory_storage.h"
#include "storage/timed_storage.h"

namespace coffer::core {
namespace {
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

Scrape TwoMountsOfIssuers() {
  Scrape s;
  s.gauges.push_back({.name = "coffer.pki.issuer.not_after_seconds",
                      .help = "The issuer certificate's notAfter, in unix seconds.",
                      .labels = {{"mount", "pki/"}, {"issuer_id", "a1"}, {"issuer_name", "root"}},
                      .value = 1893456000});
  s.gauges.push_back({.name = "coffer.pki.certificates.stored",
                      .help = "Certificates stored.",
                      .labels = {{"mount", "pki/"}},
                      .value = 3});
  // A second mount's samples come after the first mount's other gauges: the family is still
  // written once, in one block.
  s.gauges.push_back({.name = "coffer.pki.issuer.not_after_seconds",
                      .help = "ignored: the first sample's help is the family's",
                      .labels = {{"mount", "odd\"mount\\with\nnewline/"},
                                 {"issuer_id", "b2"},
                                 {"issuer_name", ""}},
                      .value = 1700000000.5});
  s.gauges.push_back({.name = "coffer.core.unsealed", .help = "1 when unsealed.", .value = 1});
  return s;
}

TEST(Metrics, GaugesAreWrittenOncePerFamilyWithLabelsEscaped) {
  Metrics m;
  const std::string text = m.Prometheus(TwoMountsOfIssuers());
  EXPECT_EQ(Count(text, "# TYPE coffer_pki_issuer_not_after_seconds gauge\n"), 1u);
  EXPECT_EQ(Count(text, "# HELP coffer_pki_issuer_not_after_seconds "), 1u);
  EXPECT_THAT(text, HasSubstr("# HELP coffer_pki_issuer_not_after_seconds The issuer "
                              "certificate's notAfter, in unix seconds.\n"
                              "# TYPE coffer_pki_issuer_not_after_seconds gauge\n"
                              "coffer_pki_issuer_not_after_seconds{mount=\"pki/\",issuer_id=\"a1\","
                              "issuer_name=\"root\"} 1893456000\n"
                              "coffer_pki_issuer_not_after_seconds{mount=\"odd\\\"mount\\\\with\\n"
                              "newline/\",issuer_id=\"b2\",issuer_name=\"\"} 1700000000.5\n"));
  EXPECT_THAT(text, HasSubstr("coffer_pki_certificates_stored{mount=\"pki/\"} 3\n"));
  // No labels: no braces.
  EXPECT_THAT(text, HasSubstr("# TYPE coffer_core_unsealed gauge\ncoffer_core_unsealed 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("e+09")));
}

TEST(Metrics, JsonHasTheSameGaugesInVaultsShape) {
  Metrics m;
  const json::object j = m.Json(TwoMountsOfIssuers());
  const json::array& gauges = j.at("Gauges").as_array();
  ASSERT_EQ(gauges.size(), 4u);
  EXPECT_EQ(json::serialize(gauges[0]),
            R"({"Name":"coffer.pki.issuer.not_after_seconds","Value":1893456000,)"
            R"("Labels":{"mount":"pki/","issuer_id":"a1","issuer_name":"root"}})");
  EXPECT_EQ(gauges[2].at("Value").as_double(), 1700000000.5);
  EXPECT_EQ(json::serialize(gauges[3]), R"({"Name":"coffer.core.unsealed","Value":1,"Labels":{}})");
  EXPECT_TRUE(j.at("Counters").is_array());
  EXPECT_TRUE(j.at("Samples").is_array());
}

TEST(Metrics, HistogramsAreCumulativeWithSumAndCount) {
  LatencyHistogram h;
  h.Observe(0.00001);  // first bucket
  h.Observe(0.0003);   // <= 0.0005
  h.Observe(0.0003);
  h.Observe(7);  // above every bound: only +Inf
  Scrape s;
  s.histograms.push_back({.prometheus_name = "coffer_storage_operation_seconds",
                          .json_name = "coffer.storage.operation",
                          .help = "Storage latency.",
                          .labels = {{"op", "get"}},
                          .snapshot = h.Read()});
  s.histograms.push_back({.prometheus_name = "coffer_storage_operation_seconds",
                          .json_name = "coffer.storage.operation",
                          .help = "Storage latency.",
                          .labels = {{"op", "put"}},
                          .snapshot = LatencyHistogram().Read()});
  Metrics m;
  const std::string text = m.Prometheus(s);
  EXPECT_EQ(Count(text, "# TYPE coffer_storage_operation_seconds histogram\n"), 1u);
  EXPECT_THAT(text,
              HasSubstr("coffer_storage_operation_seconds_bucket{op=\"get\",le=\"5e-05\"} 1\n"
                        "coffer_storage_operation_seconds_bucket{op=\"get\",le=\"0.0001\"} 1\n"
                        "coffer_storage_operation_seconds_bucket{op=\"get\",le=\"0.00025\"} 1\n"
                        "coffer_storage_operation_seconds_bucket{op=\"get\",le=\"0.0005\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("coffer_storage_operation_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
                              "coffer_storage_operation_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                              "coffer_storage_operation_seconds_sum{op=\"get\"} 7.000610\n"
                              "coffer_storage_operation_seconds_count{op=\"get\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("coffer_storage_operation_seconds_count{op=\"put\"} 0\n"));

  const json::object j = m.Json(s);
  const json::array& samples = j.at("Samples").as_array();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].at("Name").as_string(), "coffer.storage.operation");
  EXPECT_EQ(samples[0].at("Count").as_uint64(), 4u);
  EXPECT_EQ(samples[0].at("Labels").at("op").as_string(), "get");
}

TEST(Metrics, UsageGaugesAreReusedForTheirPeriod) {
  Metrics m;
  int computed = 0;
  auto compute = [&]() -> absl::StatusOr<std::vector<MetricSample>> {
    ++computed;
    return std::vector<MetricSample>{{.name = "coffer.token.count.by_policy",
                                      .labels = {{"policy", "web"}},
                                      .value = static_cast<double>(computed)}};
  };
  ASSERT_EQ(m.UsageGauges(1000, 600, compute)->at(0).value, 1);
  EXPECT_EQ(m.UsageGauges(1599, 600, compute)->at(0).value, 1);
  EXPECT_EQ(m.UsageGauges(1600, 600, compute)->at(0).value, 2);
  // A clock set back does not pin the old values.
  EXPECT_EQ(m.UsageGauges(10, 600, compute)->at(0).value, 3);
  // A failure is returned and keeps nothing: the next read computes again.
  auto failing = []() -> absl::StatusOr<std::vector<MetricSample>> {
    return absl::UnavailableError("sealed");
  };
  EXPECT_FALSE(m.UsageGauges(5000, 600, failing).ok());
  EXPECT_EQ(m.UsageGauges(5001, 600, compute)->at(0).value, 4);
  EXPECT_EQ(computed, 4);
}

TEST(TimedStorage, TimesEveryOperationByName) {
  storage::MemoryStorage mem;
  storage::TimedStorage timed(&mem);
  ASSERT_TRUE(timed.Put("a/1", "x").ok());
  ASSERT_TRUE(timed.Put("a/2", "y").ok());
  ASSERT_EQ(timed.Get("a/1")->value_or(""), "x");
  ASSERT_EQ(timed.List("a/")->size(), 2u);
  ASSERT_TRUE(timed.Write({{storage::WriteOp::Kind::kDelete, "a/1", ""}}).ok());
  ASSERT_TRUE(timed.Delete("a/2").ok());
  ASSERT_TRUE(timed.DeletePrefix("a/").ok());
  EXPECT_EQ(mem.Get("a/2")->has_value(), false);
  using T = storage::TimedStorage;
  EXPECT_EQ(timed.histogram(T::kPut).Read().count, 2u);
  for (T::Op op : {T::kGet, T::kList, T::kWrite, T::kDelete, T::kDeletePrefix})
    EXPECT_EQ(timed.histogram(op).Read().count, 1u) << T::kOpNames[op];
  EXPECT_EQ(timed.Type(), mem.Type());
}

}  // namespace
}  // namespace coffer::core
