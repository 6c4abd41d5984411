#!/bin/sh
# Finalize hook (`coffer cluster rotate-ca --finalize-hook`) for the kubernetes CA: calico-node
# holds the old CA in memory; restart the daemon set and wait for it, as MicroK8s does after a CA
# change. Runs once, on the machine driving the rotation, with a kubeconfig that works there
# (KUBECTL: the command, "kubectl" by default).
set -eu
KUBECTL=${KUBECTL:-kubectl}
$KUBECTL -n kube-system rollout restart ds/calico-node
$KUBECTL -n kube-system rollout status ds/calico-node --timeout=10m
