# Coffer HA, node 2 of 3 (deploy/ha/README.md): the three nodes differ only in api_addr.
# Storage is the control plane's etcd (kubeadm's static pods on the same three machines); the
# server holding etcd's lock is active, the others forward requests to it and take over when
# it goes away.
storage "etcd" {
  address         = "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379"
  etcd_api        = "v3"
  path            = "/coffer/"
  ha_enabled      = "true"
  tls_ca_file     = "/etc/coffer/etcd/ca.crt"
  tls_cert_file   = "/etc/coffer/etcd/client.crt"
  tls_key_file    = "/etc/coffer/etcd/client.key"
  request_timeout = "5s"
  lock_timeout    = "15s"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  tls_cert_file   = "/etc/coffer/tls/server.pem"
  tls_key_file    = "/etc/coffer/tls/server.key"
  tls_min_version = "tls12"
}

# Where clients (and the other nodes' forwarded requests) reach this node.
api_addr   = "https://10.0.0.2:8200"
log_level  = "info"
log_format = "json"
