server { address = "https://127.0.0.1:8200"  ca_cert = "/ca.pem" }
node_name = "w-1"
token_path = "/s/token"
init_token_path = "/s/init"
token_role = "prod-node-w-1"
retry_max = "30s"
certificate "kubelet" {
  role = "prod/pki/kubernetes/sign/kubelet-w-1"
  common_name = "system:node:w-1"
  dns_sans = ["w-1"]
  ip_sans = ["10.0.0.3"]
  cert_file = "/k/kubelet.crt"
  key_file = "/k/kubelet.key"
  mode = "0640"
  kubeconfig { path = "/k/kubelet.conf"  server = "https://10.0.0.1:6443" }
}
secret { path = "prod/secrets/x"  field = "key"  dest = "/k/x" }
