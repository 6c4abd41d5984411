#!/usr/bin/env bash
# HA benchmark: three Coffer servers with ha_enabled on one etcd member (Debian's etcd-server),
# plain HTTP on 127.0.0.1.
#
#   bench/ha/run.sh [SECONDS=10] [KILLS=10]
#
# Rows: pki/sign on a no_store role (one P-256 CSR, wrk, 16 keep-alive connections) sent to the
# active server only; sent to one standby only (which forwards it); spread over the three
# servers at once. For each, requests/s and the CPU each server spent per request (from
# /proc/<pid>/stat), and the share of the requests the standbys sent to the active server (their
# coffer.ha.standby_requests counters: standbys sign no_store requests themselves, so the aim is
# 0%) and the requests the active server saw. On a 2-core machine the
# three servers share CPU 1 and wrk has CPU 0: compare CPU per request, not requests/s.
# Then the failover time over KILLS SIGKILLs of the active server (lock_timeout 5s): from the
# kill until another server answers sys/health with 200; min, median, max. Not a test.
set -euo pipefail
secs=${1:-10}; kills=${2:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${COFFER_BIN:-$root/build/coffer}
[ -x "$BIN" ] || { echo "build first: scripts/build.sh Release" >&2; exit 1; }
for c in etcd wrk curl python3; do
  command -v $c >/dev/null || { echo "$c missing: scripts/install-deps.sh" >&2; exit 1; }
done
srv=(); gen=(wrk -t2)
if [ "$(nproc)" -ge 2 ]; then srv=(taskset -c 1); gen=(taskset -c 0 wrk -t1); fi
d=$(mktemp -d); pids=(); etcd_pid=""
cleanup() {
  for p in "${pids[@]}" $etcd_pid; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$d"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ep=$(free_port)
etcd --name bench --data-dir "$d/etcd" --listen-client-urls "http://127.0.0.1:$ep" \
  --advertise-client-urls "http://127.0.0.1:$ep" --listen-peer-urls "http://127.0.0.1:$(free_port)" \
  --listen-metrics-urls "http://127.0.0.1:$(free_port)" > "$d/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ep/health" >/dev/null && break; sleep 0.1; done

ports=(); addrs=()
start_server() {  # index
  local i=$1
  "${srv[@]}" "$BIN" server -config="$d/n$i.hcl" >> "$d/n$i.log" 2>&1 &
  pids[i]=$!
  for _ in $(seq 100); do curl -s "${addrs[i]}/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
}
for i in 0 1 2; do
  ports[i]=$(free_port); addrs[i]="http://127.0.0.1:${ports[i]}"
  cat > "$d/n$i.hcl" <<HCL
storage "etcd" {
  address = "http://127.0.0.1:$ep"
  path = "/coffer-bench/"
  ha_enabled = "true"
  lock_timeout = "5s"
  request_timeout = "2s"
}
listener "tcp" {
  address = "127.0.0.1:${ports[i]}"
  tls_disable = true
}
api_addr = "${addrs[i]}"
log_level = "warn"
HCL
  start_server $i
done
health() { curl -s -o /dev/null -w '%{http_code}' "${addrs[$1]}/v1/sys/health" || true; }
is_self() { curl -s "${addrs[$1]}/v1/sys/leader" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("is_self"))' 2>/dev/null || true; }
first=""
for _ in $(seq 200); do
  for i in 0 1 2; do [ "$(is_self $i)" = True ] && first=$i && break; done
  [ -n "$first" ] && break; sleep 0.1
done
init=$(curl -s -X PUT "${addrs[first]}/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
key=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0])')
token=$(echo "$init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
unseal() { curl -s -X PUT "${addrs[$1]}/v1/sys/unseal" -d "{\"key\":\"$key\"}" >/dev/null; }
for i in 0 1 2; do unseal $i; done
active() {
  for _ in $(seq 300); do
    for i in 0 1 2; do
      if kill -0 "${pids[i]}" 2>/dev/null && [ "$(health $i)" = 200 ]; then echo $i; return; fi
    done
    sleep 0.05
  done
  echo "no active server" >&2; return 1
}
a=$(active)
api() { curl -sf -X "$1" -H "X-Vault-Token: $token" "${addrs[a]}/v1/$2" -d "$3" >/dev/null; }
api POST sys/mounts/pki '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
api POST pki/root/generate/internal '{"common_name":"HA Bench Root","key_type":"ec","ttl":"87600h"}'
api POST pki/roles/nostore '{"allow_any_name":true,"key_type":"any","ttl":"24h","no_store":true}'
openssl ecparam -name prime256v1 -genkey -noout -out "$d/leaf.key"
openssl req -new -key "$d/leaf.key" -subj "/CN=node1.cluster.local" -out "$d/leaf.csr"
python3 - "$d" "$token" <<'PY'
import json, sys
d, token = sys.argv[1], sys.argv[2]
body = json.dumps({"csr": open(f"{d}/leaf.csr").read(), "common_name": "node1.cluster.local"})
with open(f"{d}/sign.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["X-Vault-Token"] = %s\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n'
            % (json.dumps(token), json.dumps(body)))
PY

# A standby's counters (served here, sent to the active server) and a server's pki/ requests.
counts() {
  curl -s -H "X-Vault-Token: $token" "${addrs[$1]}/v1/sys/metrics" | python3 -c '
import json, sys
b = json.load(sys.stdin)
g = {x["Labels"]["outcome"]: int(x["Value"]) for x in b["Gauges"] if x["Name"] == "coffer.ha.standby_requests"}
pki = sum(c["Count"] for c in b["Counters"] if c["Name"] == "coffer.requests" and c["Labels"]["mount"] == "pki/")
print(g.get("local", 0), g.get("forwarded", 0), pki)'
}
# The standbys load their state once unsealed: wait until each serves a read itself.
for i in 0 1 2; do
  [ "$i" = "$a" ] && continue
  for _ in $(seq 100); do
    curl -s -H "X-Vault-Token: $token" "${addrs[i]}/v1/auth/token/lookup-self" >/dev/null
    [ "$(counts "$i" | cut -d' ' -f1)" -gt 0 ] && break; sleep 0.1
  done
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# One row: the servers the load goes to (indexes), then wrk -c per server.
row() {
  local label=$1; shift
  local targets=("$@") before=() after=() outs=() total=0
  local cb=() ca=()
  for i in 0 1 2; do cb[i]=$(counts "$i"); done
  for i in 0 1 2; do before[i]=$(ticks "${pids[i]}"); done
  local conns=$((16 / ${#targets[@]}))
  for t in "${targets[@]}"; do
    "${gen[@]}" -c"$conns" -d"${secs}s" -s "$d/sign.lua" "${addrs[t]}/v1/pki/sign/nostore" > "$d/wrk-$t.out" 2>&1 &
    outs+=($!)
  done
  wait "${outs[@]}"
  for i in 0 1 2; do after[i]=$(ticks "${pids[i]}"); done
  for i in 0 1 2; do ca[i]=$(counts "$i"); done
  local n reqs=0
  for t in "${targets[@]}"; do
    n=$(awk '/requests in/{print $1}' "$d/wrk-$t.out")
    grep -q "Non-2xx" "$d/wrk-$t.out" && { echo "$label: non-2xx answers: $(grep Non-2xx "$d/wrk-$t.out")" >&2; }
    reqs=$((reqs + n))
  done
  local fwd=0 seen=0
  for i in 0 1 2; do
    read -r _ f0 p0 <<< "${cb[i]}"; read -r _ f1 p1 <<< "${ca[i]}"
    if [ "$i" = "$a" ]; then seen=$((p1 - p0)); else fwd=$((fwd + f1 - f0)); fi
  done
  local cpu=""
  for i in 0 1 2; do
    role=standby; [ "$i" = "$a" ] && role=active
    cpu+=$(python3 -c "print(f' {\"$role\"}{$i}: {($((after[i] - before[i])) / $hz) * 1e6 / max($reqs, 1):.0f} us')")
  done
  python3 -c "print(f'$label: {$reqs / $secs:.0f} req/s; CPU per request:$cpu; sent to the active server by a standby: {100 * $fwd / max($reqs, 1):.1f}%; pki requests the active server ran: {$seen}')"
}
s=$(( (a + 1) % 3 ))
echo "# pki/sign no_store, ${secs}s per row, servers on CPU ${srv[*]:-any}, wrk on the other"
row "to the active server only   " "$a"
row "to one standby only         " "$s"
row "spread over the 3 servers   " 0 1 2

echo "# failover after SIGKILL of the active server, $kills times (lock_timeout 5s)"
times=()
for k in $(seq "$kills"); do
  a=$(active)
  t0=$(date +%s.%N)
  kill -9 "${pids[a]}"; wait "${pids[a]}" 2>/dev/null || true
  b=$(active)
  t1=$(date +%s.%N)
  times+=("$(python3 -c "print(f'{$t1 - $t0:.2f}')")")
  start_server "$a"; unseal "$a"
  for _ in $(seq 100); do [ "$(health "$a")" = 429 ] && break; sleep 0.1; done
  echo "  kill $k: server $a killed, server $b active after ${times[-1]}s"
done
printf '%s\n' "${times[@]}" | sort -n | python3 -c '
import statistics, sys
t = [float(x) for x in sys.stdin]
print(f"failover: min {min(t):.2f}s, median {statistics.median(t):.2f}s, max {max(t):.2f}s over {len(t)} kills")'
