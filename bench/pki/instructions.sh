#!/usr/bin/env bash
# Instructions per request of Coffer's own request path, counted by valgrind's callgrind: the
# same count for the same binary and requests whatever else the machine is doing, so two builds
# can be compared on a noisy machine where req/s moves by 20% from one minute to the next.
#
#   bench/pki/instructions.sh [REQUESTS=1000] [BASE_BINARY]
#
# Starts build/coffer (or $COFFER_BIN) under callgrind, sets up a P-256 root and two roles, warms
# up with 50 requests, zeroes the counters, sends REQUESTS requests one after another on one
# keep-alive connection and divides the server's instruction count by REQUESTS. Rows: sign/:role
# on a no_store role and on a storing role (one request at a time: every commit holds one
# certificate), auth/token/lookup-self, KV v1 read. With BASE_BINARY the same rows for it, and
# the ratio. Counts are not time (a syscall or a cache miss counts as little), so the pinned
# req/s of bench/pki/run.sh --pin stays the measure of speed; this one says which build does
# less work, exactly. Needs valgrind (scripts/install-deps.sh installs it). Not a test.
set -euo pipefail
n=${1:-1000}; base=${2:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind missing" >&2; exit 1; }
command -v callgrind_control >/dev/null || { echo "callgrind_control missing" >&2; exit 1; }
top=$(mktemp -d); pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$top"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$top/leaf.key"
openssl req -new -key "$top/leaf.key" -subj "/CN=node1.cluster.local" -out "$top/leaf.csr" 2>/dev/null

# Sends `count` requests of kind $1 to the running server, one at a time.
drive() {
  python3 - "$top/leaf.csr" "$token" "$addr" "$1" "$2" <<'PY'
import http.client, json, sys, urllib.parse
csr, token, addr, kind, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
u = urllib.parse.urlparse(addr)
c = http.client.HTTPConnection(u.hostname, u.port)
h = {"X-Vault-Token": token, "Content-Type": "application/json"}
body = json.dumps({"csr": open(csr).read(), "common_name": "node1.cluster.local"})
for _ in range(count):
    if kind in ("nostore", "stored"):
        c.request("POST", f"/v1/pki/sign/{kind}", body, h)
    elif kind == "lookup":
        c.request("GET", "/v1/auth/token/lookup-self", headers=h)
    else:
        c.request("GET", "/v1/secret/bench", headers=h)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{kind}: HTTP {r.status}")
PY
}

# Prints "kind instructions-per-request" for every row, for the binary $1 (working folders under
# $top/$2).
measure() {
  local kind out
  for kind in nostore stored lookup kv; do
    d="$top/$2/$kind"; mkdir -p "$d"
    BIN=$1; srv=(valgrind --tool=callgrind --callgrind-out-file="$d/cg.out")
    coffer_start
    # Under valgrind the server starts slowly: wait up to a minute (coffer_start waits 10 s).
    for _ in $(seq 600); do curl -s "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
    coffer_init_unseal
    api POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
    api POST pki/root/generate/internal '{"common_name":"Bench Root CA","key_type":"ec","ttl":"87600h"}'
    api POST pki/roles/nostore '{"allowed_domains":"cluster.local","allow_subdomains":true,"key_type":"ec","ttl":"24h","no_store":true}'
    api POST pki/roles/stored '{"allowed_domains":"cluster.local","allow_subdomains":true,"key_type":"ec","ttl":"24h"}'
    api POST sys/mounts/secret '{"type":"kv"}'
    api POST secret/bench '{"value":"0123456789abcdef0123456789abcdef"}'
    drive "$kind" 50
    callgrind_control -z "$pid" >/dev/null 2>&1
    drive "$kind" "$n"
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    out=$(find "$d" -name 'cg.out.*' | sort | tail -1)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    echo "$kind $(callgrind_annotate "$out" 2>/dev/null |
      awk -v n="$n" '/PROGRAM TOTALS/{gsub(",","",$1); printf "%d", $1 / n}')"
  done
}

measure "${COFFER_BIN:-$root/build/coffer}" new > "$top/new.txt"
[ -n "$base" ] && measure "$base" base > "$top/base.txt"
echo "instructions per request (callgrind, $n requests one at a time)"
printf "%-28s %12s" "endpoint" "this build"
[ -n "$base" ] && printf " %12s %8s" "base" "ratio"
echo
while read -r kind count; do
  case $kind in
    nostore) label="sign/:role (no_store)" ;; stored) label="sign/:role (stored)" ;;
    lookup) label="auth/token/lookup-self" ;; *) label="kv v1 read" ;;
  esac
  printf "%-28s %12s" "$label" "$count"
  if [ -n "$base" ]; then
    b=$(awk -v k="$kind" '$1 == k {print $2}' "$top/base.txt")
    printf " %12s %8s" "$b" "$(awk -v a="$count" -v b="$b" 'BEGIN {printf "%.3f", a / b}')"
  fi
  echo
done < "$top/new.txt"
