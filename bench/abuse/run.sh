#!/usr/bin/env bash
# Abuse run of issue 19: what one client can do to a `coffer server` on loopback, measured.
#
#   bench/abuse/run.sh [body] [idle-conns] [keygen] [tls-storm]     (default: all four)
#   QUICK=1 bench/abuse/run.sh        smaller counts and shorter holds, for a smoke run
#   COFFER_BIN=/path/to/coffer        binary to run (default build/coffer)
#
# Each probe gets its own fresh server (SQLite storage, free 127.0.0.1 port, init + unseal with
# one key share), so the RSS peak (VmHWM, the process-lifetime peak) is the probe's own:
#   body        8 concurrent token-less POSTs of a ~30 MB JSON body to a KV path.
#               Target: RSS peak < 200 MB.
#   idle-conns  server under `prlimit --nofile=1024:1024`; 5,000 idle TCP connections held 15 s:
#               connected/closed counts, server CPU during the hold (a spinning accept loop
#               shows here), is a fresh client answered. Target: light p99 < 50 ms.
#   keygen      128 keep-alive connections of light traffic during an RSA-8192 intermediate
#               key generation, and PUT sys/seal 2 s into it. Target: light p99 < 50 ms.
#   tls-storm   TLS listener; 6 storms of 2,000 TLS connections (handshake, one GET, close),
#               500 in flight; RSS after each and for 60 s after the last.
#               Target: RSS back under 40 MB within a minute.
# During every attack a light probe (GET /v1/sys/health every 20 ms on its own keep-alive
# connection, own process, 2 s timeout) records latencies; ">2000" means a failure/timeout
# falls on that percentile. Details of each probe are printed under the table.
# Not a test: bounded in time (about 3-4 minutes for all four) and loopback only; the latency and
# CPU numbers depend on what else the machine is doing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/abuse"
BIN=${COFFER_BIN:-$root/build/coffer}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release (or set COFFER_BIN)" >&2; exit 1; }
command -v prlimit >/dev/null || { echo "prlimit missing (util-linux)" >&2; exit 1; }
probes=("$@"); [ ${#probes[@]} -gt 0 ] || probes=(body idle-conns keygen tls-storm)
for p in "${probes[@]}"; do
  case $p in body|idle-conns|keygen|tls-storm) ;; *) echo "unknown probe: $p" >&2; exit 2;; esac
done

d=$(mktemp -d); pid=""
stop_server() {
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "  (server $pid ignored SIGTERM for 5 s: killed)" >> "$d/notes"; kill -9 "$pid" 2>/dev/null || true; }
  wait "$pid" 2>/dev/null || true
  pid=""
}
trap 'stop_server; rm -rf "$d"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/k.pem" -out "$d/c.pem" \
  -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null

# start_server NAME plain|tls [NOFILE]: sets pid, addr, token, curl_tls
start_server() {
  local name=$1 mode=$2 nofile=${3:-}
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local scheme=http listener="tls_disable = true"; curl_tls=()
  if [ "$mode" = tls ]; then
    scheme=https; listener="tls_cert_file = \"$d/c.pem\"
  tls_key_file = \"$d/k.pem\""; curl_tls=(--cacert "$d/c.pem")
  fi
  mkdir -p "$d/$name"
  cat > "$d/$name/coffer.hcl" <<HCL
storage "sqlite" { path = "$d/$name/data/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:$port"
  $listener
}
log_level = "warn"
HCL
  local pre=(); [ -n "$nofile" ] && pre=(prlimit "--nofile=$nofile:$nofile" --)
  # prlimit execs the server, so $! is the server's pid.
  "${pre[@]}" "$BIN" server -config="$d/$name/coffer.hcl" > "$d/$name/server.log" 2>&1 &
  pid=$!
  addr="$scheme://127.0.0.1:$port"; hostport="127.0.0.1:$port"
  for _ in $(seq 100); do curl -s "${curl_tls[@]}" "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
  local init key
  init=$(curl -s "${curl_tls[@]}" -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
  key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
  token=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
  curl -s "${curl_tls[@]}" -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
  curl -s "${curl_tls[@]}" -X POST -H "X-Vault-Token: $token" "$addr/v1/sys/mounts/secret" -d '{"type":"kv"}' >/dev/null
}

run_probe() {
  local p=$1 mode=plain nofile="" cacert=""
  [ "$p" = tls-storm ] && { mode=tls; cacert="$d/c.pem"; }
  [ "$p" = idle-conns ] && nofile=1024
  start_server "$p" "$mode" "$nofile"
  if [ "$p" = keygen ]; then
    curl -s -X POST -H "X-Vault-Token: $token" "$addr/v1/sys/mounts/pki" -d '{"type":"pki"}' >/dev/null
    curl -s -X PUT -H "X-Vault-Token: $token" "$addr/v1/secret/abuse/read" \
      -d '{"username":"app","password":"0123456789abcdef0123456789abcdef"}' >/dev/null
  fi
  python3 "$here/abuse.py" "$p" --addr "$hostport" --pid "$pid" --token "$token" \
    ${cacert:+--cacert "$cacert"} --notes "$d/notes" ||
    echo "| $p | driver failed (exit $?) |"
  if ! kill -0 "$pid" 2>/dev/null; then
    local rc=0; wait "$pid" || rc=$?
    echo "$p: SERVER EXITED (status $rc); last log lines:" >> "$d/notes"
    tail -n 5 "$d/$p/server.log" | sed 's/^/    /' >> "$d/notes"
    pid=""
  fi
  stop_server
  if grep -qiE 'error|fatal|panic|abort' "$d/$p/server.log"; then
    echo "$p: server log errors (first 3):" >> "$d/notes"
    grep -iE 'error|fatal|panic|abort' "$d/$p/server.log" | head -n 3 | cut -c1-300 | sed 's/^/    /' >> "$d/notes"
  fi
  return 0
}

echo "Abuse probes (issue 19), $(basename "$BIN"), $(nproc) cores${QUICK:+, QUICK}, $(date -u +%FT%TZ)"
echo "| probe      | RSS peak | RSS after (MB) | light p99| light max| n/fail    | attack: errors / results"
echo "|------------|----------|----------------|----------|----------|-----------|--------------------------"
start=$(date +%s)
for p in "${probes[@]}"; do run_probe "$p"; done
echo
echo "Details (run took $(( $(date +%s) - start )) s):"
[ -f "$d/notes" ] && sed 's/^/  /' "$d/notes"
