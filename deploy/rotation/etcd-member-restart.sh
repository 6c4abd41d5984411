#!/bin/sh
# Node hook (agent config `exec`) for an etcd member's certificates during a CA rotation
# (docs/rotation.md). etcd re-reads its certificate files for every new connection, but its CA
# files only when it starts: when the agent runs this for a rotation phase
# (COFFER_ROTATION_PHASE is set) the member is restarted, and the hook returns only once the
# member is healthy again, so the rotation's next node (max_unavailable 1) never costs quorum.
# Outside a rotation (a renewal) it does nothing. Its output goes to `coffer cluster rotation
# status` when it fails.
#
# ETCD_RESTART: how etcd restarts on this node. The default is for kubeadm's static pod (the
# kubelet starts the container again); an etcd run by systemd: ETCD_RESTART="systemctl restart etcd".
set -eu
[ -n "${COFFER_ROTATION_PHASE:-}" ] || exit 0
PKI=${PKI:-/etc/kubernetes/pki/etcd}
ENDPOINT=${ENDPOINT:-https://127.0.0.1:2379}
ETCD_RESTART=${ETCD_RESTART:-"crictl ps -q --name etcd | xargs -r crictl stop"}
sh -c "$ETCD_RESTART"
deadline=$(($(date +%s) + 180))
until ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINT" --cacert "$PKI/ca.crt" \
    --cert "$PKI/healthcheck-client.crt" --key "$PKI/healthcheck-client.key" \
    --command-timeout 3s endpoint health >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "etcd at $ENDPOINT is not healthy 3 minutes after its restart (phase $COFFER_ROTATION_PHASE)"
    exit 1
  fi
  sleep 1
done
echo "etcd restarted and healthy (rotation ${COFFER_ROTATION_ID:-}, phase $COFFER_ROTATION_PHASE)"
