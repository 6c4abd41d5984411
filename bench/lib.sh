# shellcheck shell=bash disable=SC2154,SC2034  # d, srv, BIN come from the caller; pid, token go back
# Shared by the bench scripts (sourced): a plain-HTTP `coffer server` on SQLite and a free
# 127.0.0.1 port, then init and unseal with one key share.
#   coffer_start            needs BIN and d (work folder); uses the array srv as a command prefix
#                           when set (taskset); sets port, addr, pid. With tls_listener=1, a
#                           second listener serves TLS 1.3 only (P-256 certificate for
#                           127.0.0.1) at tls_addr; its CA file is $d/tls.pem
#   coffer_init_unseal      sets token; defines api METHOD PATH JSON (fails on a non-2xx)
coffer_start() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local tls_block=""
  if [ "${tls_listener:-0}" = 1 ]; then
    local tls_port
    tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/tls.key" \
      -out "$d/tls.pem" -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
    tls_block="listener \"tcp\" {
  address = \"127.0.0.1:$tls_port\"
  tls_cert_file = \"$d/tls.pem\"
  tls_key_file = \"$d/tls.key\"
  tls_min_version = \"tls13\"
}"
    tls_addr="https://127.0.0.1:$tls_port"
  fi
  cat > "$d/coffer.hcl" <<HCL
storage "sqlite" { path = "$d/data/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:$port"
  tls_disable = true
}
$tls_block
log_level = "warn"
HCL
  "${srv[@]}" "$BIN" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
  pid=$!
  addr="http://127.0.0.1:$port"
  for _ in $(seq 100); do curl -s "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
}

coffer_init_unseal() {
  local init key
  init=$(curl -s -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
  key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
  token=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
  curl -s -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
}

api() { curl -sf -X "$1" -H "X-Vault-Token: $token" "$addr/v1/$2" -d "$3" >/dev/null; }
