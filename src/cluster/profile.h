// The Kubernetes cluster profile: which CAs, roles, policies and token roles a cluster needs, and
// which certificate every node gets, following what kubeadm (v1.29+) makes. Pure functions over a
// ClusterSpec; no I/O. `setup.cc` applies it to a server; the agent config is derived from it.
//
// Names, for cluster C and node N:
//   mounts        C/pki/etcd, C/pki/kubernetes, C/pki/front-proxy (pki), C/secrets (kv v1)
//   policies      C-etcd, C-control-plane, C-worker (per node role), C-node-N (N's own roles),
//                 C-init-N (may only create N's token)
//   token roles   C-node-N (orphan, periodic; allowed policies: N's node roles + C-node-N)
//
// Decision: narrowing is per node. Certificates that carry a node's identity (kubelet, etcd server
// and peer, kube-apiserver with the node's names) get one PKI role per node whose allowed names
// are exactly that node's; only that node's policy may sign with it. So a kubelet on node A cannot
// get node B's name, and an init token is bound to one node (a stricter form of vault-helper's
// per-node-role init tokens: the node role still decides the shared certificates).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json.hpp"

namespace coffer::cluster {

inline constexpr const char* kNodeRoles[] = {"etcd", "control-plane", "worker"};

struct NodeSpec {
  std::string name;
  std::vector<std::string> roles;  // of kNodeRoles
  std::vector<std::string> ips;
  bool Has(std::string_view role) const;
};

// Parses "NAME:ROLE[+ROLE...][:IP[,IP...]]", e.g. "cp-1:control-plane+etcd:10.0.0.2".
absl::StatusOr<NodeSpec> ParseNode(std::string_view text);

struct ClusterSpec {
  std::string name;
  std::string key_type = "ec";  // ec | rsa | ed25519 (CAs and leaves)
  int key_bits = 256;
  int64_t ca_ttl = 10LL * 365 * 86400;  // kubeadm: CAs 10 years
  int64_t leaf_ttl = 365LL * 86400;     // kubeadm: leaves 1 year
  std::string service_ip = "10.96.0.1";
  std::string dns_domain = "cluster.local";
  std::vector<std::string> apiserver_dns_sans;  // extra names (a load balancer's)
  std::vector<std::string> apiserver_ip_sans;
  std::string admin_group = "kubeadm:cluster-admins";  // or system:masters
  int64_t token_period = 24 * 3600;                    // node tokens: periodic, renewed by agents
  int64_t init_token_ttl = 7 * 24 * 3600;
  std::vector<NodeSpec> nodes;

  boost::json::object ToJson() const;
  static absl::StatusOr<ClusterSpec> FromJson(const boost::json::object& o);
  absl::Status Validate() const;
  const NodeSpec* Node(std::string_view name) const;
};

// "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096" | "ed25519" -> type, bits.
absl::Status ParseKeyOption(std::string_view text, ClusterSpec* spec);

enum class Ca { kEtcd, kKubernetes, kFrontProxy };
std::string_view CaName(Ca ca);        // "etcd", "kubernetes", "front-proxy"
std::string_view CaCommonName(Ca ca);  // kubeadm's: "etcd-ca", "kubernetes", "front-proxy-ca"
std::string MountPath(const ClusterSpec& s, Ca ca);  // "C/pki/etcd"
std::string SecretsMount(const ClusterSpec& s);      // "C/secrets"
// The node registry (KV version 2, one version kept): each node's agent writes its own entry at
// <mount>/data/<node> (what it maintains, its agent version); the entry's version time is when the
// server last heard from it.
std::string NodesMount(const ClusterSpec& s);  // "C/nodes"

// One kind of certificate kubeadm makes.
struct CertKind {
  std::string id;  // "apiserver", "etcd-server", "kubelet" ...
  Ca ca;
  bool per_node;                        // role and names depend on the node
  std::vector<std::string> node_roles;  // node roles that get it
  std::string cn;                       // "{node}" stands for the node name
  std::vector<std::string> organization;
  bool server = false, client = false;
  std::string file;        // kubeadm path under the pki folder, without .crt/.key ("etcd/server")
  std::string kubeconfig;  // "admin.conf" ... for client identities written as kubeconfigs
};
std::vector<CertKind> Kinds(const ClusterSpec& s);  // depends on admin_group
std::optional<CertKind> FindKind(const ClusterSpec& s, std::string_view id);

// The PKI role name for a kind (and node, for per-node kinds): "etcd-server-N", "admin".
std::string RoleName(const CertKind& k, const NodeSpec* node);
// The exact names a certificate of this kind (for this node) carries.
struct Names {
  std::string common_name;
  std::vector<std::string> dns, ips;
};
Names CertNames(const ClusterSpec& s, const CertKind& k, const NodeSpec* node);
// The role's parameters (Vault's pki role fields).
boost::json::object RoleBody(const ClusterSpec& s, const CertKind& k, const NodeSpec* node);

// Policies (HCL text).
std::string NodeRolePolicy(const ClusterSpec& s, std::string_view node_role);
std::string NodePolicy(const ClusterSpec& s, const NodeSpec& n);
std::string InitPolicy(const ClusterSpec& s, const NodeSpec& n);
std::string NodeTokenRole(const ClusterSpec& s, const NodeSpec& n);  // "C-node-N"
std::vector<std::string> NodePolicies(const ClusterSpec& s, const NodeSpec& n);
boost::json::object TokenRoleBody(const ClusterSpec& s, const NodeSpec& n);

// The agent configuration (JSON) for a node: every certificate of its roles in kubeadm's layout
// under `root` (root/pki/..., root/*.conf), the CA bundle and token paths, the API server URL for
// kubeconfigs.
struct AgentLayout {
  std::string server_address, server_ca_file;
  std::string root;  // like /etc/kubernetes
  // The kubelet's folder: its serving certificate is kubelet_dir/pki/kubelet.{crt,key}, where
  // kubeadm's kubelet looks for it (--cert-dir /var/lib/kubelet/pki); kubelet.conf (its client
  // identity) stays under root.
  std::string kubelet_dir = "/var/lib/kubelet";
  std::string state_dir;  // token files: state_dir/token, state_dir/init-token
  std::string api_server = "https://127.0.0.1:6443";
};
boost::json::object AgentConfig(const ClusterSpec& s, const NodeSpec& n, const AgentLayout& l);

}  // namespace coffer::cluster
