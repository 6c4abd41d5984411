#!/bin/sh
# Finalize hook for a MicroK8s cluster whose CA Coffer rotated: MicroK8s' own services pick the
# new CA up when refreshed (its `refresh-certs` reloads what /var/snap/microk8s/current/certs
# holds, which the agents wrote), then its calico restarts as finalize-calico.sh does.
set -eu
microk8s refresh-certs --cert ca.crt
"$(dirname "$0")/finalize-calico.sh"
