// What sys/metrics computes when it is read: seal and HA state, storage latencies, tokens by
// policy (a usage gauge with its period and cardinality limit) and the PKI engine's gauges
// (each issuer's notAfter, stored and revoked certificates); and the telemetry options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "boost/json.hpp"
#include "core/core.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::core {
namespace {
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

class SysMetricsTest : public ::testing::Test {
 protected:
  void Start(const std::function<void(CoreOptions&)>& tune = {}) {
    CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    if (tune) tune(o);
    core_ = std::move(*Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok()) << res.status();
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
  }
  absl::StatusOr<Response> Do(Operation op, std::string path, json::object data = {},
                              std::vector<std::pair<std::string, std::string>> query = {}) {
    Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.query = std::move(query);
    r.client_token = root_;
    return core_->Handle(r);
  }
  json::object Ok(Operation op, const std::string& path, json::object data = {}) {
    auto r = Do(op, path, std::move(data));
    EXPECT_TRUE(r.ok()) << path << ": " << r.status();
    return r.ok() && r->data ? *r->data : json::object();
  }
  std::string Prometheus() {
    auto r = Do(Operation::kRead, "sys/metrics", {}, {{"format", "prometheus"}});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->content_type, "text/plain; version=0.0.4");
    return r->raw_body;
  }
  // The value of the series written exactly as `series` ("name{labels}"), or nullopt.
  static std::optional<double> Value(const std::string& text, const std::string& series) {
    const std::string needle = "\n" + series + " ";
    const size_t at = text.find(needle);
    if (at == std::string::npos) return std::nullopt;
    const size_t from = at + needle.size();
    return std::stod(text.substr(from, text.find('\n', from) - from));
  }
  std::string CreateToken(json::array policies, json::object extra = {}) {
    extra["policies"] = std::move(policies);
    auto r = Do(Operation::kUpdate, "auth/token/create", std::move(extra));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->auth ? std::string(r->auth->at("client_token").as_string()) : "";
  }

  storage::MemoryStorage phys_;
  FakeClock clock_;
  std::unique_ptr<Core> core_;
  std::string root_;
};

TEST_F(SysMetricsTest, SealStateHaStateAndStorageLatencies) {
  Start();
  const std::string text = Prometheus();
  EXPECT_EQ(Value(text, "coffer_core_unsealed"), 1);
  EXPECT_EQ(Value(text, "coffer_core_ha_enabled"), 0);
  EXPECT_EQ(Value(text, "coffer_core_active"), 1);
  EXPECT_THAT(text, HasSubstr("# TYPE coffer_storage_operation_seconds histogram\n"));
  // Init and unseal read and wrote the physical storage; every operation has its series.
  EXPECT_GT(Value(text, "coffer_storage_operation_seconds_count{op=\"get\"}").value_or(0), 0);
  EXPECT_GT(Value(text, "coffer_storage_operation_seconds_count{op=\"write\"}").value_or(0), 0);
  for (const char* op : {"put", "delete", "list", "delete_prefix"})
    EXPECT_TRUE(Value(text, Cat("coffer_storage_operation_seconds_count{op=\"", op, "\"}"))) << op;
  EXPECT_TRUE(Value(text, "coffer_storage_operation_seconds_bucket{op=\"get\",le=\"+Inf\"}"));

  // JSON: the same values in Vault's shape.
  auto r = Do(Operation::kRead, "sys/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  const json::object j = json::parse(r->raw_body).as_object();
  EXPECT_THAT(json::serialize(j.at("Gauges")),
              HasSubstr(R"({"Name":"coffer.core.unsealed","Value":1,"Labels":{}})"));
  EXPECT_THAT(json::serialize(j.at("Samples")), HasSubstr(R"("Name":"coffer.storage.operation")"));
}

TEST_F(SysMetricsTest, PkiIssuersExpiryAndCertificateCounts) {
  Start();
  Ok(Operation::kUpdate, "sys/mounts/pki",
     {{"type", "pki"}, {"config", json::object{{"max_lease_ttl", "87600h"}}}});
  auto root = Ok(
      Operation::kUpdate, "pki/root/generate/internal",
      {{"common_name", "Root A"}, {"ttl", "720h"}, {"issuer_name", "root-a"}, {"key_type", "ec"}});
  const std::string id = std::string(root.at("issuer_id").as_string());
  const int64_t not_after = root.at("expiration").as_int64();
  EXPECT_EQ(not_after, clock_.NowUnix() + int64_t{720} * 3600);
  Ok(Operation::kUpdate, "pki/roles/web",
     {{"allowed_domains", "example.com"},
      {"allow_subdomains", true},
      {"key_type", "ec"},
      {"ttl", "24h"}});
  std::vector<std::string> serials;
  for (const char* cn : {"a.example.com", "b.example.com"})
    serials.emplace_back(Ok(Operation::kUpdate, "pki/issue/web", {{"common_name", cn}})
                             .at("serial_number")
                             .as_string());
  Ok(Operation::kUpdate, "pki/revoke", {{"serial_number", serials[0]}});

  std::string text = Prometheus();
  EXPECT_EQ(Value(text, Cat("coffer_pki_issuer_not_after_seconds{mount=\"pki/\",issuer_id=\"", id,
                            "\",issuer_name=\"root-a\"}")),
            static_cast<double>(not_after))
      << text;
  // The CA's own certificate is stored too, as Vault does.
  EXPECT_EQ(Value(text, "coffer_pki_certificates_stored{mount=\"pki/\"}"), 3);
  EXPECT_EQ(Value(text, "coffer_pki_certificates_revoked{mount=\"pki/\"}"), 1);

  // A second issuer and a second mount have series of their own.
  auto other = Ok(Operation::kUpdate, "pki/root/generate/internal",
                  {{"common_name", "Root B"}, {"ttl", "48h"}, {"key_type", "ec"}});
  Ok(Operation::kUpdate, "sys/mounts/pki-two", {{"type", "pki"}});
  text = Prometheus();
  EXPECT_EQ(Value(text, Cat("coffer_pki_issuer_not_after_seconds{mount=\"pki/\",issuer_id=\"",
                            other.at("issuer_id").as_string(), "\",issuer_name=\"\"}")),
            static_cast<double>(clock_.NowUnix() + int64_t{48} * 3600));
  EXPECT_EQ(Value(text, "coffer_pki_certificates_stored{mount=\"pki-two/\"}"), 0);
  EXPECT_EQ(text.find("# TYPE coffer_pki_issuer_not_after_seconds gauge"),
            text.rfind("# TYPE coffer_pki_issuer_not_after_seconds gauge"));

  // A disabled mount's series go with it.
  Ok(Operation::kDelete, "sys/mounts/pki");
  text = Prometheus();
  EXPECT_THAT(text, Not(HasSubstr("coffer_pki_issuer_not_after_seconds{mount=\"pki/\"")));
  EXPECT_THAT(text, Not(HasSubstr("coffer_pki_certificates_stored{mount=\"pki/\"")));
  EXPECT_THAT(text, HasSubstr("coffer_pki_certificates_stored{mount=\"pki-two/\"} 0\n"));
}

TEST_F(SysMetricsTest, TokensByPolicyAreAUsageGauge) {
  Start();
  CreateToken({"web"});
  CreateToken({"web", "db"});
  CreateToken({"web"}, {{"ttl", "10s"}});
  std::string text = Prometheus();
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"root\"}"), 1) << text;
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"web\"}"), 3);
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"db\"}"), 1);
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"default\"}"), 3);

  // Reused until usage_gauge_period (Vault's default, 10 minutes) has passed.
  CreateToken({"db"});
  EXPECT_EQ(Value(Prometheus(), "coffer_token_count_by_policy{policy=\"db\"}"), 1);
  clock_.Advance(absl::Minutes(10));
  text = Prometheus();
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"db\"}"), 2);
  // The 10 s token has expired: it is no longer counted.
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"web\"}"), 2);
}

TEST_F(SysMetricsTest, UsageGaugeCardinalityKeepsTheLargest) {
  Start([](CoreOptions& o) {
    o.maximum_gauge_cardinality = 2;
    o.usage_gauge_period = 1;
  });
  CreateToken({"a"});
  CreateToken({"b"});
  CreateToken({"b"});
  const std::string text = Prometheus();
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"b\"}"), 2);
  EXPECT_EQ(Value(text, "coffer_token_count_by_policy{policy=\"default\"}"), 3);
  EXPECT_THAT(text, Not(HasSubstr("policy=\"a\"")));
  EXPECT_THAT(text, Not(HasSubstr("policy=\"root\"")));
}

TEST_F(SysMetricsTest, TelemetryCanTurnThePrometheusFormatAndUsageGaugesOff) {
  Start([](CoreOptions& o) {
    o.prometheus_metrics = false;
    o.usage_gauge_period = 0;
  });
  auto r = Do(Operation::kRead, "sys/metrics", {}, {{"format", "prometheus"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->http_status, 400);
  EXPECT_EQ(r->content_type, "text/plain");
  EXPECT_EQ(r->raw_body, "prometheus is not enabled");
  // JSON still answers, without the usage gauges.
  auto j = Do(Operation::kRead, "sys/metrics");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_THAT(j->raw_body, HasSubstr("coffer.core.unsealed"));
  EXPECT_THAT(j->raw_body, Not(HasSubstr("coffer.token.count.by_policy")));
  // An unknown format is still refused as before.
  auto bad = Do(Operation::kRead, "sys/metrics", {}, {{"format", "xml"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::core
