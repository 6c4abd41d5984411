#!/usr/bin/env bash
# PKI signing benchmark, side by side with the cfssl peer in one run.
#
#   bench/pki/run.sh [SECONDS=10] [CONNECTIONS=16]
#
# One P-256 CSR (CN node1.cluster.local) is signed over plain HTTP on loopback with wrk and
# 16 keep-alive connections by: cfssl serve (../shared/bench/cfssl_sign.sh, same CSR, seconds
# and connections), Coffer's sign/:role on a role that stores every certificate durably
# (SQLite, synchronous=FULL, group commit), and on a no_store role; the stored row again with
# 200 different CSRs in turn (each request's signature check is real work: nothing is cached);
# then issue/:role with server-made ec-256 and rsa-2048 keys. Prints requests/s, p50, p99 and
# the ratios to cfssl.
# Not a test: only the ratios measured in the same run mean anything.
set -euo pipefail
secs=${1:-10}; conns=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
PEER=${CFSSL_PEER:-$root/../shared/bench/cfssl_sign.sh}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh" >&2; exit 1; }
[ -f "$PEER" ] || { echo "cfssl peer script not found at $PEER (set CFSSL_PEER)" >&2; exit 1; }
d=$(mktemp -d); pid=""; trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
openssl req -new -key "$d/leaf.key" -subj "/CN=node1.cluster.local" -out "$d/leaf.csr"

# The peer first, while Coffer is not running.
cfssl_rps=$(bash "$PEER" "$secs" "$conns" "$d/leaf.csr" | awk '/cfssl_sign_rps/{print $2}')

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$d/coffer.hcl" <<HCL
storage "sqlite" { path = "$d/data/coffer.db" }
listener "tcp" {
  address = "127.0.0.1:$port"
  tls_disable = true
}
log_level = "warn"
HCL
"$BIN" server -config="$d/coffer.hcl" > "$d/server.log" 2>&1 &
pid=$!
addr="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -s "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
init=$(curl -s -X PUT "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
token=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
curl -s -X PUT "$addr/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null
api() { curl -sf -X "$1" -H "X-Vault-Token: $token" "$addr/v1/$2" -d "$3" >/dev/null; }
api POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
api POST pki/root/generate/internal '{"common_name":"Bench Root CA","key_type":"ec","ttl":"87600h"}'
for r in store nostore; do
  ns=false; [ $r = nostore ] && ns=true
  api POST "pki/roles/$r" "{\"allowed_domains\":\"cluster.local\",\"allow_subdomains\":true,\"key_type\":\"ec\",\"ttl\":\"24h\",\"use_csr_sans\":false,\"no_store\":$ns}"
done
api POST pki/roles/rsa '{"allowed_domains":"cluster.local","allow_subdomains":true,"key_type":"rsa","key_bits":2048,"ttl":"24h"}'

# 200 more CSRs (own keys, names node<i>.cluster.local) for the distinct-CSR row.
for i in $(seq 200); do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=node$i.cluster.local" -out "$d/many-$i.csr" 2>/dev/null
done

python3 - "$d" "$token" <<'PY'
import json, sys
d, token = sys.argv[1], sys.argv[2]
csr = open(d + "/leaf.csr").read()
bodies = [json.dumps({"csr": open(f"{d}/many-{i}.csr").read(), "common_name": f"node{i}.cluster.local",
                      "ip_sans": "10.0.0.1"}) for i in range(1, 201)]
open(f"{d}/many.lua", "w").write(
    'local bodies = {\n' + ''.join(f'[[{b}]],\n' for b in bodies) + '}\n'
    f'local headers = {{["Content-Type"]="application/json", ["X-Vault-Token"]="{token}"}}\n'
    'local i = math.random(#bodies)\n'
    'request = function()\n  i = i % #bodies + 1\n'
    '  return wrk.format("POST", nil, headers, bodies[i])\nend\n')
def lua(name, body):
    open(f"{d}/{name}.lua", "w").write(
        'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\n'
        f'wrk.headers["X-Vault-Token"]="{token}"\nwrk.body=[[{json.dumps(body)}]]\n')
lua("sign", {"csr": csr, "common_name": "node1.cluster.local", "alt_names": "node1.cluster.local",
             "ip_sans": "10.0.0.1"})
lua("issue", {"common_name": "node1.cluster.local", "ip_sans": "10.0.0.1"})
PY
# Warm-up (loads the issuer and roles).
curl -sf -o /dev/null -X POST -H "X-Vault-Token: $token" "$addr/v1/pki/issue/store" -d '{"common_name":"w.cluster.local"}'

row() {  # label lua path
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$d/$2.lua" "$addr/v1/$3" > "$d/out"
  rps=$(awk '/Requests\/sec/{print $2}' "$d/out")
  p50=$(awk '$1=="50%"{print $2}' "$d/out"); p99=$(awk '$1=="99%"{print $2}' "$d/out")
  bad=$(awk '/Non-2xx/{print $4}' "$d/out")
  ratio=$(python3 -c "print(f'{float(\"$rps\")/float(\"$cfssl_rps\"):.2f}x')")
  printf "%-38s %10s %9s %9s %8s %s\n" "$1" "$rps" "$p50" "$p99" "$ratio" "${bad:+non-2xx=$bad}"
}
echo "secs=$secs connections=$conns cores=$(nproc)"
printf "%-38s %10s %9s %9s %8s\n" "endpoint" "req/s" "p50" "p99" "vs cfssl"
printf "%-38s %10s %9s %9s %8s\n" "cfssl sign (P-256 CSR)" "$cfssl_rps" "-" "-" "1.00x"
row "coffer sign/:role (stored)" sign pki/sign/store
row "coffer sign/:role (no_store)" sign pki/sign/nostore
row "coffer sign/:role (stored, 200 CSRs)" many pki/sign/store
row "coffer issue/:role ec-256 (stored)" issue pki/issue/store
row "coffer issue/:role rsa-2048" issue pki/issue/rsa
stored=$(curl -s -X LIST -H "X-Vault-Token: $token" "$addr/v1/pki/certs" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["keys"]))')
echo "certificates stored: $stored"
