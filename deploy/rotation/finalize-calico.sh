#!/bin/sh
# Finalize hook (`coffer cluster rotate-ca --finalize-hook`) for the kubernetes CA: calico-node
# holds the old CA in memory; restart the daemon set and wait for it, as MicroK8s does after a CA
# change. Runs once, on the machine driving the rotation, with a kubeconfig that works there.
set -eu
kubectl -n kube-system rollout restart ds/calico-node
kubectl -n kube-system rollout status ds/calico-node --timeout=10m
