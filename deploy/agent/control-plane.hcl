# Example agent config for a control-plane node ("cp-1", 10.0.0.2, cluster "prod").
# `coffer cluster agent-config prod cp-1 --api-server https://10.0.0.2:6443` prints the full set.
server {
  address = "https://coffer.example.internal:8200"
  ca_cert = "/etc/coffer/server-ca.pem"
}
node_name       = "cp-1"
token_path      = "/var/lib/coffer-agent/token"
init_token_path = "/var/lib/coffer-agent/init-token"
token_role      = "prod-node-cp-1"
# The cluster\'s node registry (coffer cluster nodes): this node reports what it maintains.
node_registry   = "prod/nodes"

certificate "apiserver" {
  role        = "prod/pki/kubernetes/sign/apiserver-cp-1"
  common_name = "kube-apiserver"
  dns_sans    = ["cp-1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"]
  ip_sans     = ["10.96.0.1", "10.0.0.2"]
  cert_file   = "/etc/kubernetes/pki/apiserver.crt"
  key_file    = "/etc/kubernetes/pki/apiserver.key"
  ca_file     = "/etc/kubernetes/pki/ca.crt"
  # kube-apiserver reloads its serving certificate from disk by itself (dynamic serving certs).
}

certificate "apiserver-kubelet-client" {
  role        = "prod/pki/kubernetes/sign/apiserver-kubelet-client"
  common_name = "kube-apiserver-kubelet-client"
  cert_file   = "/etc/kubernetes/pki/apiserver-kubelet-client.crt"
  key_file    = "/etc/kubernetes/pki/apiserver-kubelet-client.key"
  ca_file     = "/etc/kubernetes/pki/ca.crt"
}

certificate "apiserver-etcd-client" {
  role        = "prod/pki/etcd/sign/apiserver-etcd-client"
  common_name = "kube-apiserver-etcd-client"
  cert_file   = "/etc/kubernetes/pki/apiserver-etcd-client.crt"
  key_file    = "/etc/kubernetes/pki/apiserver-etcd-client.key"
  ca_file     = "/etc/kubernetes/pki/etcd/ca.crt"
}

certificate "front-proxy-client" {
  role        = "prod/pki/front-proxy/sign/front-proxy-client"
  common_name = "front-proxy-client"
  cert_file   = "/etc/kubernetes/pki/front-proxy-client.crt"
  key_file    = "/etc/kubernetes/pki/front-proxy-client.key"
  ca_file     = "/etc/kubernetes/pki/front-proxy-ca.crt"
}

certificate "admin" {
  role        = "prod/pki/kubernetes/sign/admin"
  common_name = "kubernetes-admin"
  kubeconfig {
    path    = "/etc/kubernetes/admin.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
}

certificate "kube-controller-manager" {
  role        = "prod/pki/kubernetes/sign/kube-controller-manager"
  common_name = "system:kube-controller-manager"
  kubeconfig {
    path    = "/etc/kubernetes/controller-manager.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
  exec = "crictl ps -q --name kube-controller-manager | xargs -r crictl stop"
}

certificate "kube-scheduler" {
  role        = "prod/pki/kubernetes/sign/kube-scheduler"
  common_name = "system:kube-scheduler"
  kubeconfig {
    path    = "/etc/kubernetes/scheduler.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
  exec = "crictl ps -q --name kube-scheduler | xargs -r crictl stop"
}

certificate "kubelet" {
  role        = "prod/pki/kubernetes/sign/kubelet-cp-1"
  common_name = "system:node:cp-1"
  dns_sans    = ["cp-1"]
  ip_sans     = ["10.0.0.2"]
  cert_file   = "/var/lib/kubelet/pki/kubelet.crt"
  key_file    = "/var/lib/kubelet/pki/kubelet.key"
  ca_file     = "/etc/kubernetes/pki/ca.crt"
  kubeconfig {
    path    = "/etc/kubernetes/kubelet.conf"
    server  = "https://10.0.0.2:6443"
    cluster = "prod"
  }
}

secret {
  path  = "prod/secrets/service-accounts"
  field = "key"
  dest  = "/etc/kubernetes/pki/sa.key"
  mode  = "0600"
}
secret {
  path  = "prod/secrets/service-accounts"
  field = "pub"
  dest  = "/etc/kubernetes/pki/sa.pub"
  mode  = "0644"
}
secret {
  path  = "prod/secrets/encryption-config"
  field = "config"
  dest  = "/etc/kubernetes/encryption-config.yaml"
  mode  = "0600"
}
