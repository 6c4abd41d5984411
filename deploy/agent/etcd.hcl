# Example agent config for an etcd node (node "etcd-1" of cluster "prod", 10.0.0.5).
# `coffer cluster agent-config prod etcd-1` prints the same as JSON for any node.
server {
  address = "https://coffer.example.internal:8200"
  ca_cert = "/etc/coffer/server-ca.pem"
}
node_name       = "etcd-1"
token_path      = "/var/lib/coffer-agent/token"
init_token_path = "/var/lib/coffer-agent/init-token"
token_role      = "prod-node-etcd-1"
# The cluster\'s node registry (coffer cluster nodes): this node reports what it maintains.
node_registry   = "prod/nodes"
retry_max       = "5m"
# A hook (exec) still running after this is killed and counts as failed.
hook_timeout    = "5m"

certificate "etcd-server" {
  role        = "prod/pki/etcd/sign/etcd-server-etcd-1"
  common_name = "etcd-1"
  dns_sans    = ["etcd-1", "localhost"]
  ip_sans     = ["10.0.0.5", "127.0.0.1", "::1"]
  key_type    = "ec"
  key_bits    = 256
  cert_file   = "/etc/kubernetes/pki/etcd/server.crt"
  key_file    = "/etc/kubernetes/pki/etcd/server.key"
  ca_file     = "/etc/kubernetes/pki/etcd/ca.crt"
  owner       = "etcd"
  group       = "etcd"
  # etcd re-reads its certificate files for every new connection: no hook needed.
}

certificate "etcd-peer" {
  role        = "prod/pki/etcd/sign/etcd-peer-etcd-1"
  common_name = "etcd-1"
  dns_sans    = ["etcd-1", "localhost"]
  ip_sans     = ["10.0.0.5", "127.0.0.1", "::1"]
  cert_file   = "/etc/kubernetes/pki/etcd/peer.crt"
  key_file    = "/etc/kubernetes/pki/etcd/peer.key"
  ca_file     = "/etc/kubernetes/pki/etcd/ca.crt"
  owner       = "etcd"
  group       = "etcd"
}

certificate "etcd-healthcheck-client" {
  role        = "prod/pki/etcd/sign/etcd-healthcheck-client"
  common_name = "kube-etcd-healthcheck-client"
  cert_file   = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
  key_file    = "/etc/kubernetes/pki/etcd/healthcheck-client.key"
  ca_file     = "/etc/kubernetes/pki/etcd/ca.crt"
}
