#!/usr/bin/env bash
# `coffer cluster setup` of many nodes, and its no-op rerun, timed; optionally the same with a
# second (baseline) binary side by side in one run, against its own fresh server.
#
#   bench/cluster_setup/run.sh [NODES=1000] [BASELINE_BIN]
#
# Each binary gets a fresh TLS server on the embedded store (its own server: the baseline's
# client against the baseline's server), pinned to CPU 1 with the CLI on CPU 0 when taskset
# exists. Prints the wall time of both runs per binary and the ratio. Not a test.
set -euo pipefail
n=${1:-1000}
baseline=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
pin_server=(); pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 1); pin_client=(taskset -c 0)
fi

ms() { echo $(( ($2 - $1) / 1000000 )); }
# CPU time (user + system) of a process so far, in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }

one() {  # one() BIN LABEL -> prints "LABEL setup_ms rerun_ms"
  local bin=$1 label=$2 d pid port t0 t1 t2 init
  d=$(mktemp -d)
  mkdir -p "$d/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/tls/ca.key" \
    -out "$d/tls/ca.pem" -days 2 -subj "/CN=Bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/tls/server.key" \
    -out "$d/tls/server.csr" -subj "/CN=bench" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > "$d/tls/ext"
  openssl x509 -req -in "$d/tls/server.csr" -CA "$d/tls/ca.pem" -CAkey "$d/tls/ca.key" \
    -CAcreateserial -days 1 -extfile "$d/tls/ext" -out "$d/tls/server.pem" 2>/dev/null
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
  "${pin_server[@]}" "$bin" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
  pid=$!
  export COFFER_ADDR="https://127.0.0.1:$port" COFFER_CACERT="$d/tls/ca.pem"
  for _ in $(seq 100); do curl -s --cacert "$d/tls/ca.pem" "$COFFER_ADDR/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
  init=$("$bin" operator init -key-shares=1 -key-threshold=1 -format=json)
  export COFFER_TOKEN=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
  "$bin" operator unseal "$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys_base64"][0])')" >/dev/null
  local nodes=()
  for i in $(seq 1 "$n"); do nodes+=(--node "$(printf 'w-%04d' "$i"):worker:10.1.$((i / 250)).$((i % 250 + 1))"); done
  local c0 c1 c2
  c0=$(cpu_ms "$pid")
  t0=$(date +%s%N)
  "${pin_client[@]}" "$bin" cluster setup bench --init-token-dir "$d/tokens" "${nodes[@]}" >/dev/null
  t1=$(date +%s%N)
  c1=$(cpu_ms "$pid")
  "${pin_client[@]}" "$bin" cluster setup bench --init-token-dir "$d/tokens" >/dev/null
  t2=$(date +%s%N)
  c2=$(cpu_ms "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$d"
  echo "$label $(ms "$t0" "$t1") $(ms "$t1" "$t2") $((c1 - c0)) $((c2 - c1))"
}

echo "cluster setup of $n nodes (ms; wall time, and the server's CPU time in parentheses)"
read -r _ s1 r1 sc1 rc1 < <(one "$BIN" coffer)
printf '  %-10s setup %6d (%5d)   no-op rerun %6d (%5d)\n' coffer "$s1" "$sc1" "$r1" "$rc1"
if [ -n "$baseline" ]; then
  read -r _ s0 r0 sc0 rc0 < <(one "$baseline" baseline)
  printf '  %-10s setup %6d (%5d)   no-op rerun %6d (%5d)\n' baseline "$s0" "$sc0" "$r0" "$rc0"
  python3 -c "print('  baseline/coffer: setup %.2fx, rerun %.2fx' % ($s0/$s1, $r0/$r1))"
fi
