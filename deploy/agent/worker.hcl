# Example agent config for a worker node ("w-1", 10.0.0.3, cluster "prod").
server {
  address = "https://coffer.example.internal:8200"
  ca_cert = "/etc/coffer/server-ca.pem"
}
node_name       = "w-1"
token_path      = "/var/lib/coffer-agent/token"
init_token_path = "/var/lib/coffer-agent/init-token"
token_role      = "prod-node-w-1"
# The cluster\'s node registry (coffer cluster nodes): this node reports what it maintains.
node_registry   = "prod/nodes"

certificate "kubelet" {
  role        = "prod/pki/kubernetes/sign/kubelet-w-1"
  common_name = "system:node:w-1"
  dns_sans    = ["w-1"]
  ip_sans     = ["10.0.0.3"]
  cert_file   = "/var/lib/kubelet/pki/kubelet.crt"
  key_file    = "/var/lib/kubelet/pki/kubelet.key"
  ca_file     = "/etc/kubernetes/pki/ca.crt"
  kubeconfig {
    path    = "/etc/kubernetes/kubelet.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
}

certificate "kube-proxy" {
  role        = "prod/pki/kubernetes/sign/kube-proxy"
  common_name = "system:kube-proxy"
  kubeconfig {
    path    = "/etc/kubernetes/kube-proxy.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
}
