#!/usr/bin/env bash
# KV benchmark over HTTP keep-alive: reads and durable writes (SQLite, synchronous=FULL, group
# commit) against a real `coffer server`, driven by wrk from another process.
#
#   bench/kv/run.sh [SECONDS=10] [CONNECTIONS=16] [tls|plain]
#
# Prints a table: requests/s, p50 and p99 latency for reads and writes. Not a test: the numbers
# depend on the machine; compare runs made side by side.
set -euo pipefail
secs=${1:-10}; conns=${2:-16}; mode=${3:-plain}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh" >&2; exit 1; }
d=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
scheme=http; listener="tls_disable = true"; curl_tls=()
if [ "$mode" = tls ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k.pem" -out "$d/c.pem" \
    -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
  scheme=https; listener="tls_cert_file = \"$d/c.pem\"
  tls_key_file = \"$d/k.pem\""; curl_tls=(--cacert "$d/c.pem")
fi
cat > "$d/coffer.hcl" <<HCL
storage "sqlite" { path = "$d/data/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:$port"
  $listener
}
log_level = "warn"
HCL
"$BIN" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
pid=$!
addr="$scheme://127.0.0.1:$port"
for _ in $(seq 100); do curl -s "${curl_tls[@]}" "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
init=$(curl -s "${curl_tls[@]}" -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
token=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
curl -s "${curl_tls[@]}" -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
curl -s "${curl_tls[@]}" -X POST -H "X-Vault-Token: $token" "$addr/v1/sys/mounts/secret" -d '{"type":"kv"}'
curl -s "${curl_tls[@]}" -X PUT -H "X-Vault-Token: $token" "$addr/v1/secret/bench/read" -d '{"username":"app","password":"0123456789abcdef0123456789abcdef"}'

cat > "$d/read.lua" <<LUA
wrk.method = "GET"
wrk.headers["X-Vault-Token"] = "$token"
LUA
cat > "$d/write.lua" <<LUA
local counter = 0
local body = '{"username":"app","password":"0123456789abcdef0123456789abcdef"}'
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/secret/bench/w" .. math.random(1, 1000000000) .. "-" .. counter,
                    {["X-Vault-Token"] = "$token", ["Content-Type"] = "application/json"}, body)
end
LUA
run() {  # name script path
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$2" "$addr$3" > "$d/$1.out"
  rps=$(awk '/Requests\/sec/{print $2}' "$d/$1.out")
  p50=$(awk '$1=="50%"{print $2}' "$d/$1.out"); p99=$(awk '$1=="99%"{print $2}' "$d/$1.out")
  errs=$(awk '/Non-2xx/{print $4}' "$d/$1.out")
  printf '| %-6s | %10s | %8s | %8s | %s |\n' "$1" "$rps" "$p50" "$p99" "${errs:-0}"
}
echo "KV over HTTP/1.1 keep-alive ($mode), $conns connections, ${secs}s each, $(nproc) cores"
echo "| op     | requests/s |   p50    |   p99    | non-2xx |"
echo "|--------|------------|----------|----------|---------|"
run read "$d/read.lua" /v1/secret/bench/read
run write "$d/write.lua" /
n=$(curl -s "${curl_tls[@]}" -X LIST -H "X-Vault-Token: $token" "$addr/v1/secret/bench" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["keys"]))')
echo "keys stored after the write run: $n (every acknowledged write is in the database)"
