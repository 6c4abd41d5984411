#!/usr/bin/env bash
# Coffer's main job, end to end on this machine: installs what is needed, builds the binary,
# starts a server on the embedded SQLite store with TLS (a CA made here for the demo),
# initializes it (5 key shares, threshold 3), unseals it with 3 shares, and shows it working:
# a secrets engine, a secret written and read back, a PKI chain, then a demo Kubernetes cluster
# laid out by `coffer cluster setup` with one `coffer agent` per node writing kubeadm's files
# (demo/nodes/<node>/kubernetes), the seal status and the metrics.
# Everything lives under ./demo (keys in demo/init.json, mode 0600). The server is stopped at the
# end; restart it with:  build/coffer server -config=demo/coffer.hcl
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh Release build >/dev/null
BIN=$PWD/build/coffer

rm -rf demo && mkdir -m 700 demo && cd demo
echo "==> Making a demo CA and a server certificate for 127.0.0.1 (demo/tls)"
mkdir -m 700 tls
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls/ca.key -out tls/ca.pem \
  -days 30 -subj "/CN=Coffer Demo CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls/server.key \
  -out tls/server.csr -subj "/CN=coffer-demo" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > tls/server.ext
openssl x509 -req -in tls/server.csr -CA tls/ca.pem -CAkey tls/ca.key -CAcreateserial -days 30 \
  -extfile tls/server.ext -out tls/server.pem 2>/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > coffer.hcl <<HCL
storage "sqlite" {
  path = "$PWD/data/coffer.db"
}
listener "tcp" {
  address       = "127.0.0.1:$port"
  tls_cert_file = "$PWD/tls/server.pem"
  tls_key_file  = "$PWD/tls/server.key"
}
log_level = "info"
HCL

echo "==> Starting: coffer server -config=demo/coffer.hcl (log in demo/server.log)"
"$BIN" server -config="$PWD/coffer.hcl" > server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
export COFFER_ADDR="https://127.0.0.1:$port" COFFER_CACERT="$PWD/tls/ca.pem"
for _ in $(seq 100); do curl -s --cacert tls/ca.pem "$COFFER_ADDR/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done

echo; echo "==> coffer operator init -key-shares=5 -key-threshold=3"
( umask 077; "$BIN" operator init -key-shares=5 -key-threshold=3 -format=json > init.json )
echo "    5 unseal keys and the root token are in demo/init.json (mode 0600)"
keys=$(python3 -c 'import json; print(" ".join(json.load(open("init.json"))["keys_base64"][:3]))')
export COFFER_TOKEN=$(python3 -c 'import json; print(json.load(open("init.json"))["root_token"])')

echo; echo "==> coffer operator unseal (3 of 5 keys)"
for k in $keys; do "$BIN" operator unseal "$k" | grep -E "Sealed|Progress"; done

echo; echo "==> coffer status"; "$BIN" status
echo; echo "==> coffer secrets enable -path=secret kv"; "$BIN" secrets enable -path=secret kv
echo; echo "==> coffer write secret/demo/db username=app password=<random>"
"$BIN" write secret/demo/db username=app password="$(openssl rand -hex 12)"
echo; echo "==> coffer read secret/demo/db"; "$BIN" read secret/demo/db
echo; echo "==> coffer list secret/demo"; "$BIN" list secret/demo
echo; echo "==> coffer secrets list"; "$BIN" secrets list
echo; echo "==> The SQLite file holds only ciphertext:"
if grep -rqa "username" data/; then echo "    plaintext found!"; exit 1; else echo "    no plaintext field names or values in demo/data"; fi
echo; echo "==> PKI: a root CA, an intermediate signed by it, a role, and certificates"
"$BIN" secrets enable -path=pki -max-lease-ttl=87600h pki
"$BIN" secrets enable -path=pki_int -max-lease-ttl=43800h pki
"$BIN" write -field=expiration pki/root/generate/internal common_name="Demo Root CA" key_type=ec ttl=87600h >/dev/null
"$BIN" write -field=csr pki_int/intermediate/generate/internal common_name="Demo Intermediate CA" key_type=ec > pki_int.csr
"$BIN" write -field=certificate pki/root/sign-intermediate csr=@pki_int.csr common_name="Demo Intermediate CA" ttl=43800h format=pem_bundle > pki_int.pem
"$BIN" write pki_int/intermediate/set-signed certificate=@pki_int.pem >/dev/null
"$BIN" write pki_int/roles/web allowed_domains=demo.local allow_subdomains=true key_type=ec ttl=24h >/dev/null
mkdir -p certs
echo "==> coffer pki issue pki_int web common_name=api.demo.local ip_sans=127.0.0.1"
"$BIN" pki issue pki_int web common_name=api.demo.local ip_sans=127.0.0.1 \
  --cert-file certs/api.pem --key-file certs/api.key --ca-file certs/ca-chain.pem
openssl x509 -in certs/api.pem -noout -subject -issuer -enddate -ext subjectAltName,keyUsage,extendedKeyUsage | sed 's/^/    /'
echo "==> openssl verify -x509_strict -purpose sslserver (an independent verifier):"
awk '/BEGIN/{n++} n==1' certs/ca-chain.pem > certs/intermediate.pem
awk '/BEGIN/{n++} n==2' certs/ca-chain.pem > certs/root.pem
openssl verify -x509_strict -purpose sslserver -CAfile certs/root.pem -untrusted certs/intermediate.pem certs/api.pem | sed 's/^/    /'
echo "==> coffer pki verify pki_int certs/api.pem"; "$BIN" pki verify pki_int certs/api.pem
serial=$("$BIN" write -field=serial_number pki_int/issue/web common_name=old.demo.local)
echo "==> coffer pki revoke pki_int $serial"; "$BIN" pki revoke pki_int "$serial" | grep -E "state|revocation_time "
echo "==> coffer pki list pki_int --revoked"; "$BIN" pki list pki_int --revoked
echo; echo "==> Cluster PKI: coffer cluster setup demo (3 nodes: etcd, control plane, worker)"
"$BIN" cluster setup demo --node etcd-1:etcd:127.0.0.1 --node cp-1:control-plane:127.0.0.1 \
  --node w-1:worker:127.0.0.1 --init-token-dir tokens | grep -E "^Plan|changes made"
echo "==> Second run (idempotent):"; "$BIN" cluster setup demo --init-token-dir tokens | sed 's/^/    /'
echo "==> One coffer agent per node, from its init token, writing a kubeadm tree under demo/nodes/<node>"
agent_pids=()
for node in etcd-1 cp-1 w-1; do
  mkdir -p -m 700 "nodes/$node/state"
  mv "tokens/$node.token" "nodes/$node/state/init-token"
  "$BIN" cluster agent-config demo "$node" --root "$PWD/nodes/$node/kubernetes" \
    --kubelet-dir "$PWD/nodes/$node/kubelet" --state-dir "$PWD/nodes/$node/state" --api-server https://127.0.0.1:6443 --out "nodes/$node/agent.json"
  "$BIN" agent run -config "nodes/$node/agent.json" > "nodes/$node/agent.log" 2>&1 &
  agent_pids+=($!)
done
trap 'kill $pid ${agent_pids[*]} 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -f nodes/etcd-1/kubernetes/pki/etcd/healthcheck-client.crt ] && [ -f nodes/cp-1/kubernetes/kube-proxy.conf ] \
    && [ -f nodes/cp-1/kubernetes/encryption-config.yaml ] && [ -f nodes/w-1/kubernetes/kube-proxy.conf ] && break
  sleep 0.2
done
sleep 0.5
kill "${agent_pids[@]}"; wait "${agent_pids[@]}" 2>/dev/null || true
trap 'kill $pid 2>/dev/null || true' EXIT
(cd nodes && find . -type f \( -name '*.crt' -o -name '*.key' -o -name '*.conf' -o -name '*.pub' -o -name '*.yaml' \) \
  -printf '    %m %p\n' | sort -k2)
echo "==> Each certificate's subject as openssl reads it, and openssl verify -x509_strict against its CA:"
for crt in nodes/*/kubernetes/pki/*.crt nodes/*/kubernetes/pki/etcd/*.crt; do
  case "$crt" in *ca.crt) continue;; esac
  case "$crt" in */etcd/*|*apiserver-etcd-client*) ca=$(dirname "$crt" | sed 's#/pki.*#/pki/etcd#')/ca.crt;;
                 *front-proxy*) ca=$(dirname "$crt")/front-proxy-ca.crt;; *) ca=$(dirname "$crt")/ca.crt;; esac
  printf '    %-58s %s; %s\n' "${crt#nodes/}" "$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253 | sed 's/subject=//')" \
    "$(openssl verify -x509_strict -CAfile "$ca" "$crt" 2>&1 | sed 's/.*: //')"
done
echo "==> coffer cluster status demo"; "$BIN" cluster status demo --soonest 5 | sed 's/^/    /'

echo; echo "==> Metrics (GET /v1/sys/metrics?format=prometheus), first lines:"
curl -s --cacert tls/ca.pem -H "X-Vault-Token: $COFFER_TOKEN" "$COFFER_ADDR/v1/sys/metrics?format=prometheus" | grep '^coffer_requests_total' | head -5
echo; echo "==> coffer operator seal"; "$BIN" operator seal
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT
echo; echo "Done. Restart with: build/coffer server -config=demo/coffer.hcl  (then unseal with keys from demo/init.json)"
