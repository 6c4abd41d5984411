#!/bin/sh
# Finalize hook for a MicroK8s cluster whose CA Coffer rotated: what MicroK8s' own CA change
# finishes with (seed 000): calico restarted and the kube-root-ca.crt config maps recreated,
# through `microk8s kubectl`. (Not `microk8s refresh-certs --cert ca.crt`: that makes a new
# self-signed CA of MicroK8s' own.)
set -eu
here=$(dirname "$0")
KUBECTL="microk8s kubectl" "$here/finalize-calico.sh"
KUBECTL="microk8s kubectl" "$here/finalize-kube-root-ca.sh"
