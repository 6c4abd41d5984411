#!/usr/bin/env bash
# 1,000 simulated node agents renewing all their certificates at once against one server.
#
#   bench/agents/run.sh [AGENTS=1000]
#
# Starts a TLS server on the embedded store, lays out a cluster of AGENTS worker nodes with
# `coffer cluster setup` (timed), then runs build/agents_bench: the real agent code, one thread
# per agent, released together; prints the time to converge and the server's CPU time for the
# bootstrap and for a forced renewal of every certificate (2 per worker: kubelet, kube-proxy).
# Not a test.
set -euo pipefail
n=${1:-1000}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
BENCH=${AGENTS_BENCH:-$root/build/agents_bench}
[ -x "$BIN" ] && [ -x "$BENCH" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
d=$(mktemp -d); pid=""; trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT
ulimit -n 65536 2>/dev/null || true

mkdir -p "$d/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/tls/ca.key" \
  -out "$d/tls/ca.pem" -days 2 -subj "/CN=Bench CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/tls/server.key" \
  -out "$d/tls/server.csr" -subj "/CN=bench" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > "$d/tls/ext"
openssl x509 -req -in "$d/tls/server.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" -CAcreateserial \
  -days 1 -extfile "$d/tls/ext" -out "$d/tls/server.pem" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$d/coffer.hcl" <<HCL
storage "sqlite" { path = "$d/data/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:$port"
  tls_cert_file = "$d/tls/server.pem"
  tls_key_file = "$d/tls/server.key"
}
log_level = "warn"
HCL
"$BIN" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
pid=$!
export COFFER_ADDR="https://127.0.0.1:$port" COFFER_CACERT="$d/tls/ca.pem"
for _ in $(seq 100); do curl -s --cacert "$d/tls/ca.pem" "$COFFER_ADDR/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
init=$("$BIN" operator init -key-shares=1 -key-threshold=1 -format=json)
export COFFER_TOKEN=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
"$BIN" operator unseal "$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys_base64"][0])')" >/dev/null

nodes=()
for i in $(seq 1 "$n"); do nodes+=(--node "$(printf 'w-%04d' "$i"):worker:10.1.$((i / 250)).$((i % 250 + 1))"); done
t0=$(date +%s%N)
"$BIN" cluster setup bench --init-token-dir "$d/tokens" "${nodes[@]}" | tail -1
t1=$(date +%s%N)
echo "cluster setup with $n nodes: $(( (t1 - t0) / 1000000 )) ms"
t0=$(date +%s%N)
"$BIN" cluster setup bench --init-token-dir "$d/tokens" | tail -1
t1=$(date +%s%N)
echo "second (no-op) setup run: $(( (t1 - t0) / 1000000 )) ms"
# BENCH_MODE="rotate N" (bench/rotation/run.sh): a CA rotation instead of the forced renewal.
# shellcheck disable=SC2086
"$BENCH" "$COFFER_ADDR" "$d/tls/ca.pem" "$COFFER_TOKEN" bench "$pid" "$d" ${BENCH_MODE:-}
