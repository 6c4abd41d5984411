#!/bin/sh
# Finalize hook for the kubernetes CA: every namespace's kube-root-ca.crt config map (what pods
# trust the API server with) still holds the old CA; deleted, kube-controller-manager recreates
# each one from its new --root-ca-file at once. Pods read the mounted file again on their own.
# (KUBECTL: the command, "kubectl" by default.) A failed listing fails the hook.
set -eu
KUBECTL=${KUBECTL:-kubectl}
namespaces=$($KUBECTL get configmaps --all-namespaces --field-selector metadata.name=kube-root-ca.crt \
  -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}')
for ns in $namespaces; do
  $KUBECTL -n "$ns" delete configmap kube-root-ca.crt --wait=false
done
