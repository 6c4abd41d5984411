// The server's configuration file: HCL as Vault's, or JSON. Unknown keys are errors that name
// the key and its line, so a typo never silently changes behaviour.
//
//   storage "sqlite" { path = "/var/lib/coffer/coffer.db" }     (or storage "inmem" {})
//   listener "tcp" { address = "127.0.0.1:8200"  tls_cert_file = "..."  tls_key_file = "..." }
//   seal "transit" { address = "https://..."  key_name = "autounseal"  mount_path = "transit/" }
//   api_addr = "https://coffer.example:8200"
//   log_level = "info"    log_format = "text" | "json"
//   telemetry { prometheus_retention_time = "24h"  disable_hostname = true }
//
// Accepted for compatibility with Vault configs and ignored: disable_mlock, ui, cluster_addr,
// cluster_name, pid_file.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::config {

// One `listener "tcp" {...}` block as written in the file. Plain data: the config layer sits
// below http and core (core parses HCL policies with it), so it does not name http's types; the
// `coffer server` command turns each into an http::ListenerOptions. Defaults are Vault's.
struct ListenerConfig {
  std::string address = "127.0.0.1:8200";  // host:port; port 0 picks a free one
  bool tls_disable = false;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_min_version = "tls12";  // tls12 | tls13
  // Client certificates (mTLS): verified against this CA file when a client presents one;
  // required from every client with tls_require_and_verify_client_cert.
  std::string tls_client_ca_file;
  bool tls_require_and_verify_client_cert = false;
  bool tls_disable_client_certs = false;
  std::chrono::seconds read_header_timeout{10};  // http_read_header_timeout
  std::chrono::seconds read_timeout{30};         // http_read_timeout
  std::chrono::seconds idle_timeout{300};        // http_idle_timeout
  // Coffer's own: idle time of a connection that has not yet sent a valid token.
  std::chrono::seconds unauthenticated_idle_timeout{120};  // http_unauthenticated_idle_timeout
  // Vault's request limits (0: the default: 32 MiB, 500, 1 MiB, 10000, 10000, 1000000).
  int64_t max_request_size = 0;
  int64_t max_json_depth = 0;
  int64_t max_json_string_value_length = 0;
  int64_t max_json_object_entry_count = 0;
  int64_t max_json_array_element_count = 0;
  int64_t max_json_token = 0;  // Coffer's default 1000000
  // Coffer's own (0: what the descriptor limit allows; no per-address limit).
  int64_t max_connections = 0;
  int64_t max_connections_per_client = 0;
  // Vault's custom_response_headers: "default" | "2xx" | "404" ... -> header -> value (a list
  // in the file, joined with "; " as Vault does).
  std::map<std::string, std::map<std::string, std::string>> custom_response_headers;
};

// One `seal "type" {...}` block (docs/seals.md): "shamir", "transit" or "pkcs11", with Vault's
// key names. The options' keys are checked against the type's list here; the values are
// interpreted by the seal (autoseal layer). A block with disabled = "true" names the seal a
// migration starts from.
struct SealStanza {
  std::string type;
  bool disabled = false;
  std::map<std::string, std::string> options;
  int line = 0;
};

// The `telemetry` block, with Vault's keys and defaults (docs/observability.md). Coffer serves its
// metrics at sys/metrics only (Prometheus text or JSON) and sends them nowhere: the keys of
// Vault's other sinks (statsd_address, dogstatsd_addr, circonus_*, stackdriver_*, ...) and the
// settings it does not implement are accepted, listed in `ignored`, and the server logs a warning
// naming them. A key Vault does not know is an error, as in every other block.
struct TelemetryConfig {
  // prometheus_retention_time: "0" turns the Prometheus format off (sys/metrics?format=
  // prometheus answers 400, as Vault's). Another value is accepted: Coffer's series are
  // cumulative and kept while the server runs, so there is nothing to expire.
  bool prometheus_enabled = true;
  int64_t prometheus_retention_time = 24 * 3600;  // seconds
  // Vault prefixes gauge names with the host name only when it sends metrics to several sinks;
  // Coffer has one, so names are never prefixed, whatever this says.
  bool disable_hostname = false;
  // Seconds between computations of the usage gauges (tokens by policy); 0 is "none": off.
  int64_t usage_gauge_period = 600;
  int64_t maximum_gauge_cardinality = 500;  // label values per usage gauge
  std::vector<std::string> ignored;         // Vault keys accepted without effect, in file order
};

struct ServerConfig {
  std::vector<SealStanza> seals;  // at most one enabled and one disabled
  std::string storage_type;       // "sqlite" | "etcd" | "inmem"
  std::map<std::string, std::string> storage_options;
  std::vector<ListenerConfig> listeners;
  std::string api_addr;
  // HA: a standby answers 307 (to the active server) instead of forwarding requests there.
  bool disable_forwarding = false;
  // HA: standbys do not serve what needs no write themselves (docs/ha.md); they forward
  // everything, as Vault's standbys without performance standbys do. Vault Enterprise's key.
  bool disable_performance_standby = false;
  // The storage read cache (Vault's keys): off with disable_cache; cache_size entries (0: the
  // default, 131072). Only over storage this server alone writes (sqlite), never etcd.
  bool disable_cache = false;
  int64_t cache_size = 0;
  std::string log_level = "info";
  std::string log_format = "text";
  int64_t default_lease_ttl = 0;
  int64_t max_lease_ttl = 0;
  TelemetryConfig telemetry;
  // Settings accepted for compatibility with Vault's configuration that have no effect here;
  // the server logs each at start ("telemetry: statsd_address ... ignored").
  std::vector<std::string> warnings;
};

// `name` is used in error messages ("coffer.hcl: line 3: ...").
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text, std::string_view name);
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace coffer::config
