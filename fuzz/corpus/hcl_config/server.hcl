storage "sqlite" { path = "/var/lib/coffer/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_cert_file = "/etc/coffer/tls.crt"  # comment
  tls_key_file = "/etc/coffer/tls.key"
}
/* multi
   line */
log_level = "info"
policy = <<EOT
path "secret/*" { capabilities = ["read", "list"] }
EOT
