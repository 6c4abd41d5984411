# Example server configuration (HCL; JSON with the same structure works too).
storage "sqlite" {
  path = "/var/lib/coffer/coffer.db"
}

listener "tcp" {
  address                  = "127.0.0.1:8200"
  tls_cert_file            = "/etc/coffer/tls/server.pem"
  tls_key_file             = "/etc/coffer/tls/server.key"
  tls_min_version          = "tls12"
  http_read_header_timeout = "10s"
  http_idle_timeout        = "5m"
}

api_addr   = "https://127.0.0.1:8200"
log_level  = "info"
log_format = "json"

# Metrics at /v1/sys/metrics?format=prometheus, for a token with read on sys/metrics
# (docs/observability.md; Grafana dashboard in deploy/grafana/).
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname          = true
}
