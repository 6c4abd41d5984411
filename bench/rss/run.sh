#!/usr/bin/env bash
# Memory of a `coffer server` over time (issue 18's RSS targets), read from /proc, not by hand:
#   idle      VmRSS after start, init, unseal and the PKI setup, with no request in flight
#   after N   VmRSS after N pki/sign requests (P-256 CSR, no_store role, wrk keep-alive)
# and the growth between the first checkpoint and the last (target: within 10%).
#
#   bench/rss/run.sh [TOTAL=1000000] [FIRST=100000] [CONNECTIONS=16]
#
# Not a test: it takes minutes (TOTAL / the signing rate). COFFER_BIN picks the binary.
set -euo pipefail
total=${1:-1000000}; first=${2:-100000}; conns=${3:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
BIN=${COFFER_BIN:-$root/build/coffer}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh" >&2; exit 1; }
d=$(mktemp -d); pid=""; trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT
srv=()
rss() { awk '/^VmRSS:/{printf "%.1f", $2/1024}' "/proc/$pid/status"; }

openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
openssl req -new -key "$d/leaf.key" -subj "/CN=node1.cluster.local" -out "$d/leaf.csr"
coffer_start
start_rss=$(rss)
coffer_init_unseal
api POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
api POST pki/root/generate/internal '{"common_name":"Bench Root CA","key_type":"ec","ttl":"87600h"}'
api POST pki/roles/nostore '{"allowed_domains":"cluster.local","allow_subdomains":true,"key_type":"ec","ttl":"24h","no_store":true}'
python3 - "$d" "$token" <<'PY'
import json, sys
d, token = sys.argv[1], sys.argv[2]
body = json.dumps({"csr": open(d + "/leaf.csr").read(), "common_name": "node1.cluster.local"})
open(f"{d}/sign.lua", "w").write(
    'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\n'
    f'wrk.headers["X-Vault-Token"]="{token}"\nwrk.body=[[{body}]]\n')
PY
sleep 1
idle_rss=$(rss)
echo "binary: $BIN"
echo "RSS at start (sealed, no request): ${start_rss} MB"
echo "RSS idle (unsealed, PKI set up):   ${idle_rss} MB"
done_n=0; first_rss=""
while [ "$done_n" -lt "$total" ]; do
  wrk -t2 -c"$conns" -d3s -s "$d/sign.lua" "$addr/v1/pki/sign/nostore" > "$d/out"
  n=$(awk '/requests in/{print $1}' "$d/out")
  bad=$(awk '/Non-2xx/{print $4}' "$d/out")
  [ -z "$bad" ] || { echo "non-2xx answers: $bad" >&2; exit 1; }
  done_n=$((done_n + n))
  if [ -z "$first_rss" ] && [ "$done_n" -ge "$first" ]; then
    first_rss=$(rss); echo "RSS after $done_n signs: ${first_rss} MB"
  fi
done
last_rss=$(rss)
echo "RSS after $done_n signs: ${last_rss} MB"
python3 -c "print(f'growth from the first checkpoint: {(float(\"$last_rss\")/float(\"$first_rss\")-1)*100:+.1f}%')"
