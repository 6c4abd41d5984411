// The server's configuration file: HCL as Vault's, or JSON. Unknown keys are errors that name
// the key and its line, so a typo never silently changes behaviour.
//
//   storage "sqlite" { path = "/var/lib/coffer/coffer.db" }     (or storage "inmem" {})
//   listener "tcp" { address = "127.0.0.1:8200"  tls_cert_file = "..."  tls_key_file = "..." }
//   api_addr = "https://coffer.example:8200"
//   log_level = "info"    log_format = "text" | "json"
//
// Accepted for compatibility with Vault configs and ignored: disable_mlock, ui, cluster_addr,
// cluster_name, pid_file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "http/server.h"

namespace coffer::config {

struct ServerConfig {
  std::string storage_type;  // "sqlite" | "inmem"
  std::map<std::string, std::string> storage_options;
  std::vector<http::ListenerOptions> listeners;
  std::string api_addr;
  std::string log_level = "info";
  std::string log_format = "text";
  int64_t default_lease_ttl = 0;
  int64_t max_lease_ttl = 0;
};

// `name` is used in error messages ("coffer.hcl: line 3: ...").
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view text, std::string_view name);
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace coffer::config
