#!/usr/bin/env bash
# ACL benchmarks: one ACL check with 50 policies x 20 rules (Google Benchmark, build/acl_bench),
# then auth/token/lookup-self requests/s over HTTP keep-alive (wrk, 16 connections) against a
# real server with a non-root token.
#   bench/acl/run.sh [SECONDS=10] [CONNECTIONS=16]
set -euo pipefail
secs=${1:-10}; conns=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
"$root/build/acl_bench" --benchmark_min_time=1 2>/dev/null | grep -E "^BM_|Benchmark"
d=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'storage "sqlite" { path = "%s/data/coffer.db" }\nlistener "tcp" {\n  address = "127.0.0.1:%s"\n  tls_disable = true\n}\nlog_level = "warn"\n' "$d" "$port" > "$d/coffer.hcl"
"$BIN" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
pid=$!
addr="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -s "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
init=$(curl -s -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
rt=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
curl -s -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
tok=$(curl -s -X POST -H "X-Vault-Token: $rt" "$addr/v1/auth/token/create" -d '{"policies":["default"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["client_token"])')
printf 'wrk.method = "GET"\nwrk.headers["X-Vault-Token"] = "%s"\n' "$tok" > "$d/lookup.lua"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$d/lookup.lua" "$addr/v1/auth/token/lookup-self" > "$d/wrk.out"
printf 'lookup-self over HTTP (%s connections, %ss): %s requests/s, p50 %s, p99 %s\n' "$conns" "$secs" \
  "$(awk '/Requests\/sec/{print $2}' "$d/wrk.out")" "$(awk '$1=="50%"{print $2}' "$d/wrk.out")" \
  "$(awk '$1=="99%"{print $2}' "$d/wrk.out")"
