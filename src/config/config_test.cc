#include <gtest/gtest.h>

#include "config/hcl.h"
#include "config/server_config.h"
#include "http/server.h"  // tests may include any layer: the defaults below must agree

namespace coffer::config {
namespace {

TEST(Hcl, BlocksAttributesCommentsAndHeredocs) {
  auto items = hcl::Parse(R"(
# comment
storage "sqlite" {
  path = "/tmp/x.db" // trailing
}
/* block
   comment */
list = ["a", "b",]
num = 42
policy = <<EOT
path "secret/*" {
  capabilities = ["read"]
}
EOT
)");
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 4u);
  EXPECT_EQ((*items)[0].key, "storage");
  EXPECT_EQ((*items)[0].line, 3);
  const auto& sqlite = (*items)[0].value.object.at(0);
  EXPECT_EQ(sqlite.key, "sqlite");
  EXPECT_EQ(sqlite.value.object.at(0).value.str, "/tmp/x.db");
  EXPECT_EQ((*items)[1].value.list.size(), 2u);
  EXPECT_EQ((*items)[2].value.number, 42);
  EXPECT_EQ((*items)[3].value.str, "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n");
}

TEST(Hcl, ErrorsNameTheLine) {
  auto bad = hcl::Parse("a = 1\nb = \"unterminated\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()), "line 2: newline in string");
  EXPECT_FALSE(hcl::Parse("a = {").ok());
  EXPECT_FALSE(hcl::Parse("a b c").ok());
  EXPECT_FALSE(hcl::Parse(std::string(1000, '[')).ok());
}

TEST(ServerConfig, HclAsVault) {
  auto cfg = ParseServerConfig(R"(
storage "sqlite" { path = "/var/lib/coffer/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:8201"
  tls_cert_file = "/etc/coffer/tls.crt"
  tls_key_file = "/etc/coffer/tls.key"
}
listener "tcp" {
  address = "127.0.0.1:8202"
  tls_disable = 1
}
api_addr = "https://127.0.0.1:8201"
log_level = "debug"
log_format = "json"
disable_mlock = true
)",
                               "coffer.hcl");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->storage_type, "sqlite");
  EXPECT_EQ(cfg->storage_options["path"], "/var/lib/coffer/coffer.db");
  ASSERT_EQ(cfg->listeners.size(), 2u);
  EXPECT_FALSE(cfg->listeners[0].tls_disable);
  EXPECT_EQ(cfg->listeners[0].tls_cert_file, "/etc/coffer/tls.crt");
  EXPECT_TRUE(cfg->listeners[1].tls_disable);
  EXPECT_EQ(cfg->log_level, "debug");
  EXPECT_EQ(cfg->log_format, "json");
}

TEST(ServerConfig, DisableForwardingTakesABooleanOrString) {
  const std::string base =
      "storage \"sqlite\" { path = \"x\" }\n"
      "listener \"tcp\" { address = \"a:1\"\n tls_disable = true }\n";
  auto off = ParseServerConfig(base, "c.hcl");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->disable_forwarding);
  for (const char* v : {"true", "\"true\"", "1"}) {
    auto on = ParseServerConfig(base + "disable_forwarding = " + v + "\n", "c.hcl");
    ASSERT_TRUE(on.ok()) << v << ": " << on.status();
    EXPECT_TRUE(on->disable_forwarding) << v;
  }
  EXPECT_FALSE(off->disable_performance_standby);
  auto serve = ParseServerConfig(base + "disable_performance_standby = \"true\"\n", "c.hcl");
  ASSERT_TRUE(serve.ok()) << serve.status();
  EXPECT_TRUE(serve->disable_performance_standby);
  // The storage read cache: Vault's keys; cache_size a string or a number of entries.
  EXPECT_FALSE(off->disable_cache);
  EXPECT_EQ(off->cache_size, 0);
  auto cache = ParseServerConfig(base + "disable_cache = true\ncache_size = \"5000\"\n", "c.hcl");
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_TRUE(cache->disable_cache);
  EXPECT_EQ(cache->cache_size, 5000);
  auto bad_size = ParseServerConfig(base + "cache_size = \"lots\"\n", "c.hcl");
  ASSERT_FALSE(bad_size.ok());
  EXPECT_NE(std::string(bad_size.status().message()).find("\"cache_size\" must be a whole number"),
            std::string::npos)
      << bad_size.status();
  auto bad = ParseServerConfig(base + "disable_forwarding = \"sometimes\"\n", "c.hcl");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message())
                .find("line 4: \"disable_forwarding\" must be true or false"),
            std::string::npos)
      << bad.status();
}

TEST(ServerConfig, JsonAsVault) {
  auto cfg = ParseServerConfig(R"({
  "storage": {"sqlite": {"path": "data.db"}},
  "listener": [{"tcp": {"address": "127.0.0.1:9000", "tls_disable": "true"}}],
  "log_level": "warn"
})",
                               "coffer.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->storage_options["path"], "data.db");
  EXPECT_EQ(cfg->listeners.at(0).address, "127.0.0.1:9000");
  EXPECT_TRUE(cfg->listeners.at(0).tls_disable);
}

TEST(ServerConfig, UnknownKeysNameKeyAndLine) {
  auto cfg = ParseServerConfig(
      "storage \"sqlite\" { path = \"x\" }\nlistener \"tcp\" {\n  adress = \"x\"\n}\n", "c.hcl");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(std::string(cfg.status().message())
                .find("c.hcl: line 3: unknown key \"adress\" in listener \"tcp\""),
            std::string::npos)
      << cfg.status();
  auto top = ParseServerConfig("storage \"sqlite\" { path = \"x\" }\nlisten = 1\n", "c.hcl");
  EXPECT_NE(std::string(top.status().message()).find("line 2: unknown key \"listen\""),
            std::string::npos);
  auto js = ParseServerConfig("{\n\"storage\": {\"sqlite\": {\"path\": \"x\"}},\n\"bogus\": 1\n}",
                              "c.json");
  EXPECT_NE(std::string(js.status().message()).find("line 3: unknown key \"bogus\""),
            std::string::npos)
      << js.status();
  EXPECT_FALSE(ParseServerConfig("storage \"raft\" { path = \"x\" }", "c").ok());
  EXPECT_FALSE(
      ParseServerConfig(
          "storage \"sqlite\" { path = \"x\" }\nlistener \"tcp\" { address = \"a:1\" }", "c")
          .ok())
      << "TLS is on by default and needs files";
}

// config::ListenerConfig is copied field by field into http::ListenerOptions by `coffer server`;
// a key left out of the file must mean what the server's own default means.
TEST(ServerConfig, ListenerDefaultsAreTheServers) {
  ListenerConfig c;
  http::ListenerOptions h;
  EXPECT_EQ(c.address, h.address);
  EXPECT_EQ(c.tls_disable, h.tls_disable);
  EXPECT_EQ(c.tls_min_version, h.tls_min_version);
  EXPECT_EQ(c.read_header_timeout, h.read_header_timeout);
  EXPECT_EQ(c.read_timeout, h.read_timeout);
  EXPECT_EQ(c.idle_timeout, h.idle_timeout);

  auto cfg = ParseServerConfig(R"(
storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:0"
  tls_disable = true
  http_read_timeout = "5s"
}
)",
                               "c.hcl");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->listeners.at(0).read_timeout, std::chrono::seconds(5));
  EXPECT_EQ(cfg->listeners.at(0).idle_timeout, h.idle_timeout);
  EXPECT_EQ(c.unauthenticated_idle_timeout, h.unauthenticated_idle_timeout);
}

absl::StatusOr<ListenerConfig> Listener(const std::string& body) {
  auto cfg = ParseServerConfig(
      "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n" + body + "}\n", "c.hcl");
  if (!cfg.ok()) return cfg.status();
  return cfg->listeners.at(0);
}

TEST(ServerConfig, ListenerLimitsTakeVaultsKeys) {
  auto l = Listener(R"(  max_request_size = 1048576
  max_json_depth = "20"
  max_json_string_value_length = 4096
  max_json_object_entry_count = 100
  max_json_array_element_count = 0
  max_json_token = 5000
  max_connections = 64
  max_connections_per_client = 8
  http_unauthenticated_idle_timeout = "15s"
)");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->max_request_size, 1048576);
  EXPECT_EQ(l->max_json_depth, 20);
  EXPECT_EQ(l->max_json_string_value_length, 4096);
  EXPECT_EQ(l->max_json_object_entry_count, 100);
  EXPECT_EQ(l->max_json_array_element_count, 0);  // 0: the default, as in Vault
  EXPECT_EQ(l->max_json_token, 5000);
  EXPECT_EQ(l->max_connections, 64);
  EXPECT_EQ(l->max_connections_per_client, 8);
  EXPECT_EQ(l->unauthenticated_idle_timeout, std::chrono::seconds(15));

  auto neg = Listener("  max_request_size = -1\n");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("no unlimited setting"), std::string::npos);
  EXPECT_NE(neg.status().message().find("line 4"), std::string::npos) << neg.status();
  EXPECT_FALSE(Listener("  max_json_depth = \"deep\"\n").ok());
}

TEST(ServerConfig, CustomResponseHeadersAsVault) {
  auto l = Listener(R"(  custom_response_headers {
    "default" = { "strict-transport-security" = ["max-age=1", " preload ", ""] }
    "4xx" = { "X-Custom" = ["a"] }
    "404" = { "X-Custom" = ["b"], "X-Vault-Ignored" = ["x"] }
  }
)");
  ASSERT_TRUE(l.ok()) << l.status();
  const auto& h = l->custom_response_headers;
  EXPECT_EQ(h.at("default").at("Strict-Transport-Security"), "max-age=1; preload");
  EXPECT_EQ(h.at("4xx").at("X-Custom"), "a");
  EXPECT_EQ(h.at("404").at("X-Custom"), "b");
  EXPECT_EQ(h.at("404").count("X-Vault-Ignored"), 0u);
  for (const char* bad : {
           R"(  custom_response_headers { "6xx" = { "X" = ["a"] } })",
           R"(  custom_response_headers { "default" = { "Content-Length" = ["1"] } })",
           R"(  custom_response_headers { "307" = { "location" = ["https://elsewhere"] } })",
           R"(  custom_response_headers { "default" = { "X" = "not a list" } })",
           R"(  custom_response_headers { "default" = { "X Y" = ["a"] } })",
           R"(  custom_response_headers { "default" = { "X" = ["a\r\nSet-Cookie: b"] } })",
       }) {
    auto r = Listener(std::string(bad) + "\n");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("custom_response_headers"), std::string::npos);
    }
  }
}

constexpr char kBase[] =
    "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n}\n";  // lines 1-4

TEST(ServerConfig, TelemetryDefaultsAreVaults) {
  auto cfg = ParseServerConfig(kBase, "c.hcl");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->telemetry.prometheus_enabled);
  EXPECT_EQ(cfg->telemetry.prometheus_retention_time, 24 * 3600);
  EXPECT_EQ(cfg->telemetry.usage_gauge_period, 600);
  EXPECT_EQ(cfg->telemetry.maximum_gauge_cardinality, 500);
  EXPECT_TRUE(cfg->warnings.empty());
}

TEST(ServerConfig, TelemetryTakesVaultsKeys) {
  auto cfg = ParseServerConfig(std::string(kBase) + R"(telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
  usage_gauge_period = "1m"
  maximum_gauge_cardinality = 20
}
)",
                               "c.hcl");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->telemetry.prometheus_enabled);
  EXPECT_EQ(cfg->telemetry.prometheus_retention_time, 30);
  EXPECT_TRUE(cfg->telemetry.disable_hostname);
  EXPECT_EQ(cfg->telemetry.usage_gauge_period, 60);
  EXPECT_EQ(cfg->telemetry.maximum_gauge_cardinality, 20);
  EXPECT_TRUE(cfg->warnings.empty()) << cfg->warnings.front();

  // "0" turns the Prometheus format off; "none" the usage gauges; 0 cardinality is the default.
  auto off = ParseServerConfig(std::string(kBase) + R"(telemetry {
  prometheus_retention_time = 0
  usage_gauge_period = "none"
  maximum_gauge_cardinality = 0
}
)",
                               "c.hcl");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->telemetry.prometheus_enabled);
  EXPECT_EQ(off->telemetry.usage_gauge_period, 0);
  EXPECT_EQ(off->telemetry.maximum_gauge_cardinality, 500);

  auto js = ParseServerConfig(R"({"storage": {"inmem": {}},
 "listener": [{"tcp": {"tls_disable": true}}],
 "telemetry": [{"prometheus_retention_time": "0", "dogstatsd_tags": ["a:b"]}]})",
                              "c.json");
  ASSERT_TRUE(js.ok()) << js.status();
  EXPECT_FALSE(js->telemetry.prometheus_enabled);
  EXPECT_EQ(js->telemetry.ignored, std::vector<std::string>{"dogstatsd_tags"});
}

// Vault's keys for other sinks and for settings Coffer lacks load, with one warning naming them.
TEST(ServerConfig, TelemetryKeysCofferLacksAreAcceptedWithAWarning) {
  auto cfg = ParseServerConfig(std::string(kBase) + R"(telemetry {
  statsd_address = "statsd.example:8125"
  disable_hostname = true
  circonus_api_token = "x"
  prefix_filter = ["+vault.token", "-vault.expire"]
  stackdriver_debug_logs = false
}
)",
                               "c.hcl");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->telemetry.ignored,
            (std::vector<std::string>{"statsd_address", "circonus_api_token", "prefix_filter",
                                      "stackdriver_debug_logs"}));
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_EQ(cfg->warnings[0],
            "telemetry: statsd_address, circonus_api_token, prefix_filter, stackdriver_debug_logs "
            "are accepted for compatibility with Vault and ignored: Coffer serves its metrics at "
            "sys/metrics (Prometheus or JSON) and sends them nowhere else");
}

TEST(ServerConfig, TelemetryErrorsNameKeyAndLine) {
  auto err = [](const std::string& block) {
    auto cfg = ParseServerConfig(std::string(kBase) + block, "c.hcl");
    EXPECT_FALSE(cfg.ok()) << block;
    return cfg.ok() ? std::string() : std::string(cfg.status().message());
  };
  EXPECT_EQ(err("telemetry {\n  statsd_adress = \"x\"\n}\n"),
            "c.hcl: line 6: unknown key \"statsd_adress\" in telemetry (did you mean "
            "\"statsd_address\"?): Coffer takes prometheus_retention_time, disable_hostname, "
            "usage_gauge_period, maximum_gauge_cardinality and accepts Vault's other telemetry "
            "keys");
  EXPECT_EQ(err("telemetry {\n  prometheus_retention_time = \"soon\"\n}\n"),
            "c.hcl: line 6: prometheus_retention_time must be a duration such as \"24h\" (\"0\" "
            "turns the Prometheus format off), got \"soon\"");
  EXPECT_EQ(err("telemetry {\n  usage_gauge_period = \"-1s\"\n}\n"),
            "c.hcl: line 6: usage_gauge_period must be a duration such as \"10m\", or \"none\", "
            "got \"-1s\"");
  EXPECT_EQ(err("telemetry {\n  disable_hostname = \"maybe\"\n}\n"),
            "c.hcl: line 6: \"disable_hostname\" must be true or false");
  EXPECT_EQ(err("telemetry {}\ntelemetry {}\n"),
            "c.hcl: line 6: only one telemetry block is allowed");
  EXPECT_EQ(err("telemetry = 1\n"),
            "c.hcl: line 5: \"telemetry\" must be a block such as telemetry { disable_hostname = "
            "true }");
}

}  // namespace
}  // namespace coffer::config
