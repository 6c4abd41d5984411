// The agent's configuration file (HCL or JSON; the same tree):
//
//   server { address = "https://coffer:8200"  ca_cert = "/etc/coffer/server-ca.pem" }
//   node_name       = "etcd-1"
//   token_path      = "/var/lib/coffer-agent/token"        # 0600, written by the agent
//   init_token_path = "/var/lib/coffer-agent/init-token"   # read once, then wiped
//   token_role      = "prod-node-etcd-1"                   # auth/token/create/<token_role>
//   retry_min = "1s"  retry_max = "5m"                      # backoff while the server is away
//   node_registry = "prod/nodes"  heartbeat = "60s"          # the node registry (cluster/nodes.h);
//                                                          # files are also looked at every
//                                                          heartbeat
//   rotation_wait = "20s"  rotation_poll = "5m"             # CA rotations (cluster/rotation.h)
//   hook_timeout = "5m"                                     # a hook still running is killed
//   certificate "etcd-server" {
//     role = "prod/pki/etcd/sign/etcd-server-etcd-1"
//     common_name = "etcd-1"  dns_sans = ["etcd-1", "localhost"]  ip_sans = ["127.0.0.1"]
//     key_type = "ec"  key_bits = 256  ttl = "720h"         # ttl optional (the role's default)
//     cert_file = "..."  key_file = "..."  ca_file = "..."
//     owner = "etcd"  group = "etcd"  mode = "0644"         # key files are always 0600
//     kubeconfig { path = "/etc/kubernetes/admin.conf"  server = "https://10.0.0.1:6443"
//                  cluster = "prod"  user = "kubernetes-admin" }
//     exec = "systemctl reload etcd"                        # after each renewal, via /bin/sh -c
//   }
//   secret { path = "prod/secrets/service-accounts"  field = "key"  dest = "..."  mode = "0600" }
//
// `certificates` and `secrets` lists (the JSON spelling) are accepted as well as the blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json.hpp"

namespace coffer::agent {

struct KubeconfigSpec {
  std::string path, server, cluster, user;
};

struct CertSpec {
  std::string name;
  std::string role;  // a sign path: <mount>/sign/<role> or <mount>/issuer/<ref>/sign/<role>
  std::string common_name;
  std::vector<std::string> dns_sans, ip_sans;
  std::string key_type = "ec";
  int key_bits = 256;
  int64_t ttl = 0;  // 0: the role's
  std::string cert_file, key_file, ca_file;
  std::string owner, group;
  uint32_t mode = 0644;
  KubeconfigSpec kubeconfig;  // path empty: none
  std::string exec;
};

struct SecretSpec {
  std::string path, field, dest, owner, group;
  uint32_t mode = 0600;
};

struct Config {
  std::string address, ca_cert;
  std::string node_name;
  std::string token_path, init_token_path, token_role;
  // The cluster's node registry (a KV version 2 mount, "C/nodes"): when set, the agent writes
  // its node's entry there after each pass and every heartbeat_ms while it runs.
  std::string node_registry;
  int64_t heartbeat_ms = 60000;
  // The cluster's CA rotation document (<node_registry>/data/_rotation, cluster/rotation.h),
  // only with node_registry: while the agent runs one long poll is open on it (answered when it
  // changes, or after rotation_wait: also the longest a stop waits for it), and it is read every
  // rotation_poll besides.
  int64_t rotation_poll_ms = 300000;
  int64_t rotation_wait_ms = 20000;
  std::string token;  // for one-off commands without a token file (COFFER_TOKEN)
  int64_t retry_min_ms = 1000, retry_max_ms = 300000;
  // The longest an `exec` hook (or a rotation hook) may run; then its process group is killed
  // and the hook counts as failed.
  int64_t hook_timeout_ms = 300000;
  std::vector<CertSpec> certificates;
  std::vector<SecretSpec> secrets;
};

// Parses and checks a config; errors name the line (HCL) or field.
absl::StatusOr<Config> ParseConfig(std::string_view text);
absl::StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace coffer::agent
