#!/usr/bin/env bash
# PKI signing benchmark, side by side with the cfssl peer in one run.
#
#   bench/pki/run.sh [--pin] [SECONDS=10] [CONNECTIONS=16]
#
# --pin measures the server's own cost: Coffer (and cfssl) run on CPU 1 only, wrk with one thread
# on CPU 0, and the crypto bound of CPU 1 (../shared/bench/crypto_bound.sh: 1/(1/verify+1/sign)
# for P-256, the two ECDSA operations every sign request needs) is measured in the same run. The
# "efficiency" column is req/s divided by that bound: 1.0 would mean nothing but the two
# signatures costs CPU. Without --pin the load generator shares the cores and the column is "-".
# --pin also runs bench/pki/sign_ceiling (a bare loop doing only the two ECDSA operations and
# sending an answer of Coffer's size) the same way: the highest efficiency reachable over
# loopback HTTP on this machine, and Coffer's sign rows as a share of it.
#
# One P-256 CSR (CN node1.cluster.local) is signed over plain HTTP on loopback with wrk and
# 16 keep-alive connections by: cfssl serve (../shared/bench/cfssl_sign.sh, same CSR, seconds
# and connections), Coffer's sign/:role on a role that stores every certificate durably
# (SQLite, synchronous=FULL, group commit), and on a no_store role; the stored row again with
# 200 different CSRs in turn (each request's signature check is real work: nothing is cached);
# then issue/:role with server-made ec-256 and rsa-2048 keys; then the sign rows and the two
# pipeline rows again over TLS 1.3 (a second listener of the same server; wrk keeps its
# connections, so the handshakes are not in the figures), each with its ratio to the same
# request over plain HTTP run just before it.
# Prints requests/s, p50, p99 and the ratios to cfssl.
# Not a test: only the ratios measured in the same run mean anything.
set -euo pipefail
pin=0; if [ "${1:-}" = --pin ]; then pin=1; shift; fi
secs=${1:-10}; conns=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
BIN=${COFFER_BIN:-$root/build/coffer}
PEER=${CFSSL_PEER:-$root/../shared/bench/cfssl_sign.sh}
BOUND=${CRYPTO_BOUND:-$root/../shared/bench/crypto_bound.sh}
CEILING=${SIGN_CEILING:-$(dirname "$BIN")/sign_ceiling}
srv=(); wrk_cmd=(wrk -t2)
if [ $pin = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "--pin needs 2 CPUs" >&2; exit 1; }
  [ -f "$BOUND" ] || { echo "crypto bound script not found at $BOUND (set CRYPTO_BOUND)" >&2; exit 1; }
  [ -x "$CEILING" ] || { echo "sign_ceiling not built at $CEILING (set SIGN_CEILING)" >&2; exit 1; }
  srv=(taskset -c 1); wrk_cmd=(taskset -c 0 wrk -t1)
fi
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh" >&2; exit 1; }
[ -f "$PEER" ] || { echo "cfssl peer script not found at $PEER (set CFSSL_PEER)" >&2; exit 1; }
d=$(mktemp -d); pid=""; trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
openssl req -new -key "$d/leaf.key" -subj "/CN=node1.cluster.local" -out "$d/leaf.csr"

# The crypto bound of the server's CPU, then the peer, while Coffer is not running.
bound=""
[ $pin = 1 ] && bound=$(bash "$BOUND" 3 1 | awk '/crypto_bound_csr_sign_per_core/{print $2}')
if [ $pin = 1 ]; then
  cfssl_rps=$(SERVER_CPUS=1 CLIENT_CPUS=0 bash "$PEER" "$secs" "$conns" "$d/leaf.csr" | awk '/cfssl_sign_rps/{print $2}')
else
  cfssl_rps=$(bash "$PEER" "$secs" "$conns" "$d/leaf.csr" | awk '/cfssl_sign_rps/{print $2}')
fi

tls_listener=1
coffer_start
coffer_init_unseal
api POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
api POST pki/root/generate/internal '{"common_name":"Bench Root CA","key_type":"ec","ttl":"87600h"}'
for r in store nostore; do
  ns=false; [ $r = nostore ] && ns=true
  api POST "pki/roles/$r" "{\"allowed_domains\":\"cluster.local\",\"allow_subdomains\":true,\"key_type\":\"ec\",\"ttl\":\"24h\",\"use_csr_sans\":false,\"no_store\":$ns}"
done
api POST pki/roles/rsa '{"allowed_domains":"cluster.local","allow_subdomains":true,"key_type":"rsa","key_bits":2048,"ttl":"24h"}'
# The request pipeline alone (no signature): a token lookup and a KV v1 read.
api POST sys/mounts/kv '{"type":"kv"}'
api POST kv/app '{"user":"app","password":"s3cr3t"}'

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
sign = {"csr": csr, "common_name": "node1.cluster.local", "alt_names": "node1.cluster.local",
        "ip_sans": "10.0.0.1"}
lua("sign", sign)
open(f"{d}/sign.json", "w").write(json.dumps(sign))
lua("issue", {"common_name": "node1.cluster.local", "ip_sans": "10.0.0.1"})
open(f"{d}/get.lua", "w").write(f'wrk.method="GET"\nwrk.headers["X-Vault-Token"]="{token}"\n')
PY
# Warm-up (loads the issuer and roles).
curl -sf -o /dev/null -X POST -H "X-Vault-Token: $token" "$addr/v1/pki/issue/store" -d '{"common_name":"w.cluster.local"}'

declare -A plain_rps
row() {  # label lua path kind [tls_base] (sign: efficiency against the crypto bound; pipeline: no
         # ratio to cfssl). With tls_base (the TLS listener), the same request is first run again
         # over plain HTTP right before it, and the last column is the ratio of the two: stored
         # signing slows as the database grows, so only adjacent runs compare.
  if [ -n "${5:-}" ]; then
    "${wrk_cmd[@]}" -c"$conns" -d"${secs}s" -s "$d/$2.lua" "$addr/v1/$3" > "$d/out"
    plain_rps[$2:$3]=$(awk '/Requests\/sec/{print $2}' "$d/out")
  fi
  "${wrk_cmd[@]}" -c"$conns" -d"${secs}s" --latency -s "$d/$2.lua" "${5:-$addr}/v1/$3" > "$d/out"
  rps=$(awk '/Requests\/sec/{print $2}' "$d/out")
  p50=$(awk '$1=="50%"{print $2}' "$d/out"); p99=$(awk '$1=="99%"{print $2}' "$d/out")
  bad=$(awk '/Non-2xx/{print $4}' "$d/out")
  ratio=$(python3 -c "print(f'{float(\"$rps\")/float(\"$cfssl_rps\"):.2f}x')")
  eff=-
  if [ -n "$bound" ] && [ "${4:-}" = sign ]; then
    eff=$(python3 -c "print(f'{float(\"$rps\")/float(\"$bound\"):.2f}')")
  fi
  [ "${4:-}" = pipeline ] && ratio=-
  if [ -n "${5:-}" ]; then
    ratio=$(python3 -c "print(f'{float(\"$rps\")/float(\"${plain_rps[$2:$3]}\"):.2f}x plain')")
  else
    plain_rps[$2:$3]=$rps
  fi
  printf "%-38s %10s %9s %9s %10s %8s %s\n" "$1" "$rps" "$p50" "$p99" "$eff" "$ratio" "${bad:+non-2xx=$bad}"
}
echo "secs=$secs connections=$conns cores=$(nproc) pinned=$([ $pin = 1 ] && echo "server CPU 1, wrk -t1 CPU 0" || echo no)"
[ -n "$bound" ] && echo "crypto bound of CPU 1 (P-256 verify + sign): $bound/s"
printf "%-38s %10s %9s %9s %10s %8s\n" "endpoint" "req/s" "p50" "p99" "efficiency" "vs cfssl"
cfssl_eff=-
[ -n "$bound" ] && cfssl_eff=$(python3 -c "print(f'{float(\"$cfssl_rps\")/float(\"$bound\"):.2f}')")
printf "%-38s %10s %9s %9s %10s %8s\n" "cfssl sign (P-256 CSR)" "$cfssl_rps" "-" "-" "$cfssl_eff" "1.00x"
row "coffer sign/:role (stored)" sign pki/sign/store sign
row "coffer sign/:role (no_store)" sign pki/sign/nostore sign
if [ $pin = 1 ]; then
  # The ceiling (bench/pki/sign_ceiling.cc): a bare epoll loop on the same core that runs only
  # the two ECDSA operations per request and answers as many bytes as Coffer's no_store answer.
  # Its efficiency is the most any HTTP server can reach here; "of ceiling" is Coffer's share.
  resp_bytes=$(curl -s -X POST -H "X-Vault-Token: $token" --data-binary "@$d/sign.json" "$addr/v1/pki/sign/nostore" | wc -c)
  "${srv[@]}" "$CEILING" 0 "$resp_bytes" > "$d/ceiling.port" & ceiling_pid=$!
  for _ in $(seq 50); do [ -s "$d/ceiling.port" ] && break; sleep 0.1; done
  "${wrk_cmd[@]}" -c"$conns" -d"${secs}s" --latency -s "$d/sign.lua" "http://127.0.0.1:$(cat "$d/ceiling.port")/" > "$d/out"
  kill "$ceiling_pid"; wait "$ceiling_pid" 2>/dev/null || true
  crps=$(awk '/Requests\/sec/{print $2}' "$d/out")
  printf "%-38s %10s %9s %9s %10s %8s\n" "ceiling: 2 ECDSA ops + loopback HTTP" "$crps" \
    "$(awk '$1=="50%"{print $2}' "$d/out")" "$(awk '$1=="99%"{print $2}' "$d/out")" \
    "$(python3 -c "print(f'{float(\"$crps\")/float(\"$bound\"):.2f}')")" "-"
  for r in store nostore; do
    echo "  coffer sign ($r) of ceiling: $(python3 -c "print(f'{float(\"${plain_rps[sign:pki/sign/$r]}\")/float(\"$crps\"):.2f}')")"
  done
fi
row "coffer sign/:role (stored, 200 CSRs)" many pki/sign/store sign
row "coffer issue/:role ec-256 (stored)" issue pki/issue/store issue
row "coffer auth/token/lookup-self" get auth/token/lookup-self pipeline
row "coffer kv v1 read" get kv/app pipeline
row "TLS 1.3: sign/:role (stored)" sign pki/sign/store sign "$tls_addr"
row "TLS 1.3: sign/:role (no_store)" sign pki/sign/nostore sign "$tls_addr"
row "TLS 1.3: auth/token/lookup-self" get auth/token/lookup-self pipeline "$tls_addr"
row "TLS 1.3: kv v1 read" get kv/app pipeline "$tls_addr"
# Last: RSA key generation queued on the expensive pool outlives the wrk run and would take
# the CPU from the next row.
row "coffer issue/:role rsa-2048" issue pki/issue/rsa issue
stored=$(curl -s -X LIST -H "X-Vault-Token: $token" "$addr/v1/pki/certs" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["keys"]))')
echo "certificates stored: $stored"
