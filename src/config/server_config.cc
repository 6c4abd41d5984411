#include "config/server_config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "config/hcl.h"
#include "util/duration.h"
#include "util/status.h"
#include "util/suggest.h"

namespace coffer::config {
namespace {

using hcl::Item;
using hcl::Value;

absl::Status At(const Item& it, std::string_view msg) {
  return absl::InvalidArgumentError(Cat("line ", it.line, ": ", msg));
}

absl::StatusOr<std::string> AsString(const Item& it) {
  if (it.value.kind == Value::Kind::kString) return it.value.str;
  if (it.value.kind == Value::Kind::kNumber) return it.value.str;
  if (it.value.kind == Value::Kind::kBool) return std::string(it.value.boolean ? "true" : "false");
  return At(it, Cat("\"", it.key, "\" must be a string, got a ", hcl::KindName(it.value.kind)));
}

absl::StatusOr<bool> AsBool(const Item& it) {
  if (it.value.kind == Value::Kind::kBool) return it.value.boolean;
  if (it.value.kind == Value::Kind::kString || it.value.kind == Value::Kind::kNumber) {
    const std::string& s = it.value.str;
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0" || s.empty()) return false;
  }
  return At(it, Cat("\"", it.key, "\" must be true or false"));
}

// A block's entries: `x "label" { .. }` parses to x = { label = {..} }; JSON may also give
// x = [ { label = {..} }, ... ]. Calls fn(label_item) for each labelled body.
template <typename Fn>
absl::Status ForEachLabelled(const Item& it, Fn fn) {
  auto one = [&](const Value& v) -> absl::Status {
    if (v.kind != Value::Kind::kObject)
      return At(it, Cat("\"", it.key, "\" must be a block such as ", it.key, " \"type\" { ... }"));
    for (const auto& labelled : v.object) {
      if (labelled.value.kind != Value::Kind::kObject)
        return At(labelled, Cat("\"", it.key, " \\\"", labelled.key, "\\\"\" must be a block"));
      RETURN_IF_ERROR(fn(labelled));
    }
    return absl::OkStatus();
  };
  if (it.value.kind == Value::Kind::kList) {
    for (const auto& v : it.value.list) RETURN_IF_ERROR(one(v));
    return absl::OkStatus();
  }
  return one(it.value);
}

absl::Status Unknown(const Item& it, std::string_view where, std::string_view known) {
  return At(it, Cat("unknown key \"", it.key, "\"", where.empty() ? "" : " in ", where,
                    " (known keys: ", known, ")"));
}

// A whole number (a string or a number, as Vault's config accepts); 0 means the default, as in
// Vault. Vault reads a negative max_request_size as "no limit": Coffer always bounds bodies.
absl::StatusOr<int64_t> AsCount(const Item& it) {
  ASSIGN_OR_RETURN(std::string s, AsString(it));
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size() || n < 0)
    return At(
        it, Cat("\"", it.key, "\" must be a whole number (0 for the default), got \"", s, "\"",
                n < 0 ? ": Coffer has no unlimited setting, give the largest size you need" : ""));
  return n;
}

int64_t* LimitField(ListenerConfig& lo, std::string_view key) {
  if (key == "max_request_size") return &lo.max_request_size;
  if (key == "max_json_depth") return &lo.max_json_depth;
  if (key == "max_json_string_value_length") return &lo.max_json_string_value_length;
  if (key == "max_json_object_entry_count") return &lo.max_json_object_entry_count;
  if (key == "max_json_array_element_count") return &lo.max_json_array_element_count;
  if (key == "max_json_token") return &lo.max_json_token;
  if (key == "max_connections") return &lo.max_connections;
  if (key == "max_connections_per_client") return &lo.max_connections_per_client;
  return nullptr;
}

// Vault's form: custom_response_headers { "default" = { "Name" = ["v1", "v2"] } "4xx" = {..} }.
// Header names are canonicalized (x-custom -> X-Custom) and values joined with "; ", as Vault
// does; X-Vault-* names are ignored as Vault ignores them; headers that frame the HTTP message
// are refused (setting them would break every response).
absl::Status ParseCustomHeaders(const Item& it,
                                std::map<std::string, std::map<std::string, std::string>>* out) {
  auto body = [&](const Value& v) -> absl::Status {
    if (v.kind != Value::Kind::kObject)
      return At(it, "custom_response_headers must be a block of status = { header = [values] }");
    for (const Item& status : v.object) {
      const std::string& k = status.key;
      const bool klass = k.size() == 3 && k[0] >= '1' && k[0] <= '5' && k[1] == 'x' && k[2] == 'x';
      const bool code = k.size() == 3 && k[0] >= '1' && k[0] <= '5' &&
                        std::isdigit(static_cast<unsigned char>(k[1])) &&
                        std::isdigit(static_cast<unsigned char>(k[2]));
      if (k != "default" && !klass && !code)
        return At(status, Cat("custom_response_headers: \"", k,
                              "\" is not \"default\", a status class such as \"4xx\" or a "
                              "status code from 100 to 599"));
      const Value* headers = &status.value;
      if (headers->kind == Value::Kind::kList && headers->list.size() == 1)
        headers = &headers->list[0];  // JSON configs may wrap the block in a list
      if (headers->kind != Value::Kind::kObject)
        return At(status, Cat("custom_response_headers \"", k,
                              "\" must be a block of header = [\"value\", ...]"));
      for (const Item& h : headers->object) {
        std::string name = h.key;
        bool upper = true;
        for (char& c : name) {
          c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                      : std::tolower(static_cast<unsigned char>(c)));
          upper = c == '-';
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
            return At(h, Cat("custom_response_headers: \"", h.key, "\" is not a header name"));
        }
        if (name.rfind("X-Vault-", 0) == 0) continue;  // Vault ignores these too
        for (const char* framing : {"Content-Length", "Transfer-Encoding", "Connection",
                                    "Content-Type", "Upgrade", "Keep-Alive", "Location"})
          if (name == framing)
            return At(h, Cat("custom_response_headers: ", name,
                             " is set by the server for each response and cannot be configured"));
        if (h.value.kind != Value::Kind::kList)
          return At(h, Cat("custom_response_headers: \"", h.key,
                           "\" must be a list of strings, such as [\"max-age=31536000\"]"));
        std::string joined;
        for (const Value& part : h.value.list) {
          if (part.kind != Value::Kind::kString)
            return At(h, Cat("custom_response_headers: \"", h.key, "\" must be a list of strings"));
          std::string_view t = part.str;
          while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front())))
            t.remove_prefix(1);
          while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back())))
            t.remove_suffix(1);
          if (t.empty()) continue;
          if (t.find_first_of("\r\n") != std::string_view::npos)
            return At(h, "custom_response_headers: a header value cannot hold a line break");
          if (!joined.empty()) joined += "; ";
          joined += t;
        }
        (*out)[k][name] = joined;
      }
    }
    return absl::OkStatus();
  };
  if (it.value.kind == Value::Kind::kList) {
    for (const Value& v : it.value.list) RETURN_IF_ERROR(body(v));
    return absl::OkStatus();
  }
  return body(it.value);
}

// Vault's telemetry keys that Coffer accepts without acting on them: the other sinks and the
// settings of metrics it does not have (internalshared/configutil/telemetry.go).
const std::set<std::string, std::less<>>& IgnoredTelemetryKeys() {
  static const std::set<std::string, std::less<>> keys = {"statsite_address",
                                                          "statsd_address",
                                                          "enable_hostname_label",
                                                          "metrics_prefix",
                                                          "circonus_api_token",
                                                          "circonus_api_app",
                                                          "circonus_api_url",
                                                          "circonus_submission_interval",
                                                          "circonus_submission_url",
                                                          "circonus_check_id",
                                                          "circonus_check_force_metric_activation",
                                                          "circonus_check_instance_id",
                                                          "circonus_check_search_tag",
                                                          "circonus_check_tags",
                                                          "circonus_check_display_name",
                                                          "circonus_broker_id",
                                                          "circonus_broker_select_tag",
                                                          "dogstatsd_addr",
                                                          "dogstatsd_tags",
                                                          "stackdriver_project_id",
                                                          "stackdriver_location",
                                                          "stackdriver_namespace",
                                                          "stackdriver_debug_logs",
                                                          "lease_metrics_epsilon",
                                                          "num_lease_metrics_buckets",
                                                          "add_lease_metrics_namespace_labels",
                                                          "add_mount_point_rollback_metrics",
                                                          "opentelemetry_disable",
                                                          "filter_default",
                                                          "prefix_filter"};
  return keys;
}

// telemetry { ... } (or, in JSON, "telemetry": [{ ... }]).
absl::Status ParseTelemetry(const Item& it, TelemetryConfig* t) {
  auto body = [&](const Value& v) -> absl::Status {
    if (v.kind != Value::Kind::kObject)
      return At(it, "\"telemetry\" must be a block such as telemetry { disable_hostname = true }");
    for (const Item& o : v.object) {
      if (o.key == "prometheus_retention_time") {
        ASSIGN_OR_RETURN(std::string text, AsString(o));
        auto d = ParseDurationSeconds(text);
        if (!d.ok() || *d < 0)
          return At(o, Cat("prometheus_retention_time must be a duration such as \"24h\" (\"0\" "
                           "turns the Prometheus format off), got \"",
                           text, "\""));
        t->prometheus_retention_time = *d;
        t->prometheus_enabled = *d > 0;
      } else if (o.key == "disable_hostname") {
        ASSIGN_OR_RETURN(t->disable_hostname, AsBool(o));
      } else if (o.key == "usage_gauge_period") {
        ASSIGN_OR_RETURN(std::string text, AsString(o));
        auto d = text == "none" ? absl::StatusOr<int64_t>(0) : ParseDurationSeconds(text);
        if (!d.ok() || *d < 0)
          return At(o, Cat("usage_gauge_period must be a duration such as \"10m\", or \"none\", "
                           "got \"",
                           text, "\""));
        t->usage_gauge_period = *d;
      } else if (o.key == "maximum_gauge_cardinality") {
        ASSIGN_OR_RETURN(int64_t n, AsCount(o));
        t->maximum_gauge_cardinality = n > 0 ? n : 500;  // 0: Vault's default
      } else if (IgnoredTelemetryKeys().contains(o.key)) {
        t->ignored.push_back(o.key);
      } else {
        std::vector<std::string_view> known = {"prometheus_retention_time", "disable_hostname",
                                               "usage_gauge_period", "maximum_gauge_cardinality"};
        for (const auto& k : IgnoredTelemetryKeys()) known.emplace_back(k);
        const std::string near = ClosestMatch(o.key, known);
        return At(o, Cat("unknown key \"", o.key, "\" in telemetry",
                         near.empty() ? "" : Cat(" (did you mean \"", near, "\"?)"),
                         ": Coffer takes prometheus_retention_time, disable_hostname, "
                         "usage_gauge_period, maximum_gauge_cardinality and accepts Vault's other "
                         "telemetry keys"));
      }
    }
    return absl::OkStatus();
  };
  if (it.value.kind == Value::Kind::kList) {
    for (const Value& v : it.value.list) RETURN_IF_ERROR(body(v));
    return absl::OkStatus();
  }
  return body(it.value);
}

}  // namespace

absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text, std::string_view name) {
  auto prefix = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(
        Cat(name, ": ", s.message().data() ? std::string(s.message()) : ""));
  };
  auto items = hcl::Parse(text);
  if (!items.ok()) return prefix(items.status());
  ServerConfig cfg;
  int storages = 0;
  int telemetries = 0;
  auto body = [&]() -> absl::Status {
    for (const Item& it : *items) {
      if (it.key == "storage" || it.key == "backend") {
        RETURN_IF_ERROR(ForEachLabelled(it, [&](const Item& st) -> absl::Status {
          ++storages;
          if (storages > 1) return At(st, "only one storage block is allowed");
          cfg.storage_type = st.key;
          if (st.key == "sqlite") {
            for (const Item& o : st.value.object) {
              if (o.key != "path") return Unknown(o, "storage \"sqlite\"", "path");
              ASSIGN_OR_RETURN(cfg.storage_options["path"], AsString(o));
            }
            if (cfg.storage_options["path"].empty())
              return At(st, "storage \"sqlite\" needs path = \"/var/lib/coffer/coffer.db\"");
          } else if (st.key == "inmem") {
            for (const Item& o : st.value.object) return Unknown(o, "storage \"inmem\"", "none");
          } else if (st.key == "etcd") {
            // Vault's etcd keys; the values are checked by the backend (etcd/etcd_storage.cc).
            static constexpr std::string_view kKeys[] = {
                "address",         "etcd_api",        "path",        "tls_ca_file",
                "tls_cert_file",   "tls_key_file",    "username",    "password",
                "tls_server_name", "request_timeout", "max_txn_ops", "lock_timeout"};
            for (const Item& o : st.value.object) {
              if (o.key == "ha_enabled") {
                ASSIGN_OR_RETURN(bool ha, AsBool(o));
                cfg.storage_options["ha_enabled"] = ha ? "true" : "false";
                continue;
              }
              if (o.key == "sync" || o.key == "max_receive_size") {
                cfg.warnings.push_back(Cat("line ", o.line, ": storage \"etcd\" key \"", o.key,
                                           "\" is accepted but has no effect in Coffer (it uses "
                                           "the endpoints listed in address)"));
                continue;
              }
              if (std::find(std::begin(kKeys), std::end(kKeys), o.key) == std::end(kKeys))
                return Unknown(o, "storage \"etcd\"",
                               "address, etcd_api, path, ha_enabled, tls_ca_file, tls_cert_file, "
                               "tls_key_file, tls_server_name, username, password, "
                               "request_timeout, lock_timeout, sync, max_receive_size, "
                               "max_txn_ops");
              ASSIGN_OR_RETURN(cfg.storage_options[o.key], AsString(o));
            }
          } else {
            return At(st, Cat("unsupported storage type \"", st.key,
                              "\": use \"sqlite\", \"etcd\" (or \"inmem\" for tests)"));
          }
          return absl::OkStatus();
        }));
      } else if (it.key == "listener") {
        RETURN_IF_ERROR(ForEachLabelled(it, [&](const Item& l) -> absl::Status {
          if (l.key != "tcp")
            return At(l, Cat("unsupported listener type \"", l.key, "\": use \"tcp\""));
          ListenerConfig lo;
          for (const Item& o : l.value.object) {
            if (o.key == "address") {
              ASSIGN_OR_RETURN(lo.address, AsString(o));
            } else if (o.key == "tls_disable") {
              ASSIGN_OR_RETURN(lo.tls_disable, AsBool(o));
            } else if (o.key == "tls_cert_file") {
              ASSIGN_OR_RETURN(lo.tls_cert_file, AsString(o));
            } else if (o.key == "tls_key_file") {
              ASSIGN_OR_RETURN(lo.tls_key_file, AsString(o));
            } else if (o.key == "tls_client_ca_file") {
              ASSIGN_OR_RETURN(lo.tls_client_ca_file, AsString(o));
            } else if (o.key == "tls_require_and_verify_client_cert") {
              ASSIGN_OR_RETURN(lo.tls_require_and_verify_client_cert, AsBool(o));
            } else if (o.key == "tls_disable_client_certs") {
              ASSIGN_OR_RETURN(lo.tls_disable_client_certs, AsBool(o));
            } else if (o.key == "tls_min_version") {
              ASSIGN_OR_RETURN(lo.tls_min_version, AsString(o));
              if (lo.tls_min_version != "tls12" && lo.tls_min_version != "tls13")
                return At(o,
                          "tls_min_version must be \"tls12\" or \"tls13\" (older versions are not "
                          "offered)");
            } else if (o.key == "http_read_header_timeout" || o.key == "http_read_timeout" ||
                       o.key == "http_idle_timeout") {
              ASSIGN_OR_RETURN(std::string text, AsString(o));
              auto d = ParseDurationSeconds(text);
              if (!d.ok() || *d < 1)
                return At(o, Cat(o.key, " must be a duration of at least 1s, such as \"30s\""));
              (o.key == "http_read_header_timeout" ? lo.read_header_timeout
               : o.key == "http_read_timeout"      ? lo.read_timeout
                                                   : lo.idle_timeout) = std::chrono::seconds(*d);
            } else if (o.key == "http_unauthenticated_idle_timeout") {
              ASSIGN_OR_RETURN(std::string text, AsString(o));
              auto d = ParseDurationSeconds(text);
              if (!d.ok() || *d < 1)
                return At(o, Cat(o.key, " must be a duration of at least 1s, such as \"30s\""));
              lo.unauthenticated_idle_timeout = std::chrono::seconds(*d);
            } else if (int64_t* limit = LimitField(lo, o.key)) {
              ASSIGN_OR_RETURN(*limit, AsCount(o));
            } else if (o.key == "custom_response_headers") {
              RETURN_IF_ERROR(ParseCustomHeaders(o, &lo.custom_response_headers));
            } else {
              return Unknown(
                  o, "listener \"tcp\"",
                  "address, tls_disable, tls_cert_file, tls_key_file, tls_min_version, "
                  "tls_client_ca_file, tls_require_and_verify_client_cert, "
                  "tls_disable_client_certs, "
                  "http_read_header_timeout, http_read_timeout, http_idle_timeout, "
                  "http_unauthenticated_idle_timeout, max_request_size, "
                  "max_json_depth, max_json_string_value_length, "
                  "max_json_object_entry_count, max_json_array_element_count, max_json_token, "
                  "max_connections, max_connections_per_client, "
                  "custom_response_headers");
            }
          }
          if (lo.tls_require_and_verify_client_cert && lo.tls_disable_client_certs)
            return At(l,
                      "tls_require_and_verify_client_cert and tls_disable_client_certs contradict "
                      "each other");
          if (lo.tls_require_and_verify_client_cert && lo.tls_client_ca_file.empty())
            return At(l,
                      "tls_require_and_verify_client_cert needs tls_client_ca_file (the CA that "
                      "signs the clients' certificates)");
          if (!lo.tls_disable && (lo.tls_cert_file.empty() || lo.tls_key_file.empty()))
            return At(
                l, "listener \"tcp\" needs tls_cert_file and tls_key_file, or tls_disable = true");
          cfg.listeners.push_back(std::move(lo));
          return absl::OkStatus();
        }));
      } else if (it.key == "seal") {
        RETURN_IF_ERROR(ForEachLabelled(it, [&](const Item& b) -> absl::Status {
          static const std::map<std::string, std::set<std::string>, std::less<>> known = {
              {"shamir", {}},
              {"transit",
               {"address", "token", "token_file", "key_name", "mount_path", "namespace",
                "disable_renewal", "tls_ca_cert", "tls_client_cert", "tls_client_key",
                "tls_server_name", "tls_skip_verify"}},
              {"pkcs11",
               {"lib", "slot", "token_label", "key_label", "hmac_key_label", "mechanism",
                "hmac_mechanism", "generate_key"}}};
          auto kind = known.find(b.key);
          if (kind == known.end())
            return At(b, Cat("unsupported seal type \"", b.key,
                             "\": use \"transit\", \"pkcs11\" or \"shamir\""));
          SealStanza seal;
          seal.type = b.key;
          seal.line = b.line;
          for (const Item& o : b.value.object) {
            if (o.key == "disabled") {
              ASSIGN_OR_RETURN(seal.disabled, AsBool(o));
            } else if (o.key == "pin") {
              return At(o,
                        "seal \"pkcs11\": Coffer does not read the PIN from the config file; "
                        "set it in the environment as COFFER_HSM_PIN (or VAULT_HSM_PIN)");
            } else if (kind->second.count(o.key)) {
              ASSIGN_OR_RETURN(seal.options[o.key], AsString(o));
            } else {
              std::string list = "disabled";
              for (const auto& k : kind->second) list += ", " + k;
              return Unknown(o, Cat("seal \"", b.key, "\""), list);
            }
          }
          auto need = [&](std::initializer_list<const char*> keys) -> absl::Status {
            for (const char* k : keys)
              if (seal.options[k].empty()) return At(b, Cat("seal \"", b.key, "\" needs ", k));
            return absl::OkStatus();
          };
          if (b.key == "transit") RETURN_IF_ERROR(need({"address", "key_name", "mount_path"}));
          if (b.key == "pkcs11") {
            RETURN_IF_ERROR(need({"lib", "key_label"}));
            if (seal.options["slot"].empty() && seal.options["token_label"].empty())
              return At(b, "seal \"pkcs11\" needs slot or token_label");
          }
          for (const auto& other : cfg.seals) {
            if (other.disabled == seal.disabled)
              return At(b, seal.disabled
                               ? "only one seal block may be disabled (the seal migrated from)"
                               : "only one seal block may be enabled; mark the one to migrate "
                                 "from with disabled = \"true\"");
            if (other.type == seal.type)
              return At(b, Cat("two seal \"", b.key,
                               "\" blocks: a migration goes between two different seal types"));
          }
          cfg.seals.push_back(std::move(seal));
          return absl::OkStatus();
        }));
      } else if (it.key == "api_addr") {
        ASSIGN_OR_RETURN(cfg.api_addr, AsString(it));
      } else if (it.key == "disable_forwarding") {
        ASSIGN_OR_RETURN(cfg.disable_forwarding, AsBool(it));
      } else if (it.key == "disable_performance_standby") {
        ASSIGN_OR_RETURN(cfg.disable_performance_standby, AsBool(it));
      } else if (it.key == "disable_cache") {
        ASSIGN_OR_RETURN(cfg.disable_cache, AsBool(it));
      } else if (it.key == "cache_size") {
        ASSIGN_OR_RETURN(cfg.cache_size, AsCount(it));
      } else if (it.key == "log_level") {
        ASSIGN_OR_RETURN(cfg.log_level, AsString(it));
        static const std::set<std::string> ok = {"trace", "debug", "info", "warn", "error"};
        if (!ok.count(cfg.log_level))
          return At(it, "log_level must be trace, debug, info, warn or error");
      } else if (it.key == "log_format") {
        ASSIGN_OR_RETURN(cfg.log_format, AsString(it));
        if (cfg.log_format == "standard") cfg.log_format = "text";
        if (cfg.log_format != "text" && cfg.log_format != "json")
          return At(it, "log_format must be \"text\" or \"json\"");
      } else if (it.key == "default_lease_ttl" || it.key == "max_lease_ttl") {
        ASSIGN_OR_RETURN(std::string s, AsString(it));
        auto d = ParseDurationSeconds(s);
        if (!d.ok()) return At(it, Cat(it.key, ": ", std::string(d.status().message())));
        (it.key == "default_lease_ttl" ? cfg.default_lease_ttl : cfg.max_lease_ttl) = *d;
      } else if (it.key == "telemetry") {
        if (++telemetries > 1) return At(it, "only one telemetry block is allowed");
        RETURN_IF_ERROR(ParseTelemetry(it, &cfg.telemetry));
        if (!cfg.telemetry.ignored.empty()) {
          std::string keys;
          for (const auto& k : cfg.telemetry.ignored) keys += (keys.empty() ? "" : ", ") + k;
          cfg.warnings.push_back(
              Cat("telemetry: ", keys, cfg.telemetry.ignored.size() == 1 ? " is" : " are",
                  " accepted for compatibility with Vault and ignored: Coffer serves its metrics "
                  "at sys/metrics (Prometheus or JSON) and sends them nowhere else"));
        }
      } else if (it.key == "disable_mlock" || it.key == "ui" || it.key == "cluster_addr" ||
                 it.key == "cluster_name" || it.key == "pid_file") {
        // Vault settings with no effect here; accepted so existing configs load, with a warning
        // so nobody believes they act.
        cfg.warnings.push_back(Cat("line ", it.line, ": \"", it.key,
                                   "\" is a Vault setting Coffer accepts but does not honour"));
      } else {
        return Unknown(
            it, "",
            "storage, listener, seal, api_addr, disable_forwarding, disable_performance_standby, "
            "disable_cache, cache_size, log_level, log_format, "
            "default_lease_ttl, "
            "max_lease_ttl, telemetry");
      }
    }
    if (storages == 0)
      return absl::InvalidArgumentError(
          "a storage block is required, e.g. storage \"sqlite\" { path = \"coffer.db\" }");
    if (cfg.listeners.empty())
      return absl::InvalidArgumentError(
          "a listener block is required, e.g. listener \"tcp\" { address = \"127.0.0.1:8200\" ... "
          "}");
    return absl::OkStatus();
  };
  auto st = body();
  if (!st.ok()) return prefix(st);
  return cfg;
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(Cat("cannot read config file ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseServerConfig(ss.str(), path);
}

}  // namespace coffer::config
