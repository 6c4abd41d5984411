#!/usr/bin/env bash
# Transit benchmark: encrypt and decrypt requests/s over HTTP keep-alive, and the KMS v2 plugin's
# Encrypt/s over its unix socket, in one run.
#
#   bench/transit/run.sh [--pin] [SECONDS=10] [CONNECTIONS=16]
#
# One Coffer server (plain HTTP on loopback, SQLite) with an aes256-gcm96 key; wrk sends
# encrypt/<key> with 64-byte and 4 KiB plaintexts, decrypt/<key> of ciphertexts of both sizes,
# and a batch of 100 64-byte items (the row counts items/s), each on 16 keep-alive connections.
# "kv v1 read" is the same server's request pipeline without cryptography: the ceiling the
# transit rows are measured against (the "vs kv read" column). Last, `coffer kms-plugin` on a
# unix socket with a token file, driven by bench/transit/kms_bench.py (8 gRPC clients, 32-byte
# DEKs): the rate kube-apiserver could encrypt Secrets at through this server.
# Without --pin, wrk and the server share both cores (the issue's "on the 2-core machine"
# figure); --pin runs the server on CPU 1 and wrk -t1 on CPU 0 (the server's own cost).
# Not a test: only the ratios measured in the same run mean anything.
set -euo pipefail
pin=0; if [ "${1:-}" = --pin ]; then pin=1; shift; fi
secs=${1:-10}; conns=${2:-16}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
BIN=${COFFER_BIN:-$root/build/coffer}
srv=(); wrk_cmd=(wrk -t2)
if [ $pin = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "--pin needs 2 CPUs" >&2; exit 1; }
  srv=(taskset -c 1); wrk_cmd=(taskset -c 0 wrk -t1)
fi
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh" >&2; exit 1; }
d=$(mktemp -d); pid=""; kms=""
trap '[ -n "$kms" ] && kill $kms 2>/dev/null; [ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$d"' EXIT

coffer_start
coffer_init_unseal
api POST sys/mounts/transit '{"type":"transit"}'
api POST transit/keys/bench '{"type":"aes256-gcm96"}'
api POST sys/mounts/kv '{"type":"kv"}'
api POST kv/app '{"user":"app","password":"s3cr3t"}'

/usr/bin/python3 - "$d" "$token" "$addr" <<'PY'
import base64, json, os, sys, urllib.request
d, token, addr = sys.argv[1:4]
def call(path, body):
    req = urllib.request.Request(addr + "/v1/" + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Vault-Token": token})
    return json.load(urllib.request.urlopen(req))["data"]
def lua(name, body):
    open(f"{d}/{name}.lua", "w").write(
        'wrk.method="POST"\nwrk.headers["Content-Type"]="application/json"\n'
        f'wrk.headers["X-Vault-Token"]="{token}"\nwrk.body=[[{json.dumps(body)}]]\n')
for label, n in (("64", 64), ("4k", 4096)):
    plain = base64.b64encode(os.urandom(n)).decode()
    lua("enc" + label, {"plaintext": plain})
    lua("dec" + label, {"ciphertext": call("transit/encrypt/bench", {"plaintext": plain})["ciphertext"]})
lua("batch", {"batch_input": [{"plaintext": base64.b64encode(os.urandom(64)).decode()} for _ in range(100)]})
open(f"{d}/get.lua", "w").write(f'wrk.method="GET"\nwrk.headers["X-Vault-Token"]="{token}"\n')
PY

kv_rps=""
row() {  # label lua path [items per request]
  "${wrk_cmd[@]}" -c"$conns" -d"${secs}s" --latency -s "$d/$2.lua" "$addr/v1/$3" > "$d/out"
  rps=$(awk '/Requests\/sec/{print $2}' "$d/out")
  p50=$(awk '$1=="50%"{print $2}' "$d/out"); p99=$(awk '$1=="99%"{print $2}' "$d/out")
  bad=$(awk '/Non-2xx/{print $4}' "$d/out")
  items=${4:-1}
  ips=$(python3 -c "print(f'{float(\"$rps\")*$items:.0f}')")
  [ -z "$kv_rps" ] && kv_rps=$rps
  ratio=$(python3 -c "print(f'{float(\"$rps\")/float(\"$kv_rps\"):.2f}')")
  printf "%-34s %10s %10s %9s %9s %9s %s\n" "$1" "$rps" "$ips" "$p50" "$p99" "$ratio" "${bad:+non-2xx=$bad}"
}
echo "secs=$secs connections=$conns cores=$(nproc) pinned=$([ $pin = 1 ] && echo "server CPU 1, wrk -t1 CPU 0" || echo "no (wrk and server share the cores)")"
printf "%-34s %10s %10s %9s %9s %9s\n" "endpoint" "req/s" "items/s" "p50" "p99" "vs kv read"
row "kv v1 read (pipeline, no crypto)" get kv/app
row "transit encrypt 64 B" enc64 transit/encrypt/bench
row "transit encrypt 4 KiB" enc4k transit/encrypt/bench
row "transit decrypt 64 B" dec64 transit/decrypt/bench
row "transit decrypt 4 KiB" dec4k transit/decrypt/bench
row "transit encrypt batch 100 x 64 B" batch transit/encrypt/bench 100

# The KMS v2 plugin, when this build has it.
if "$BIN" kms-plugin --help >/dev/null 2>&1; then
  printf '%s' "$token" > "$d/token"; chmod 600 "$d/token"
  "${srv[@]}" "$BIN" kms-plugin --listen "unix://$d/kms.sock" --transit-key bench \
    --address "$addr" --token-file "$d/token" > "$d/kms.log" 2>&1 &
  kms=$!
  for _ in $(seq 100); do [ -S "$d/kms.sock" ] && break; sleep 0.1; done
  kcmd=(/usr/bin/python3 "$root/bench/transit/kms_bench.py" --socket "$d/kms.sock" --seconds "$secs")
  [ $pin = 1 ] && kcmd=(taskset -c 0 "${kcmd[@]}")
  "${kcmd[@]}" || { echo "kms bench failed; plugin log:"; tail -5 "$d/kms.log"; }
fi
