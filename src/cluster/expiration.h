// `coffer cluster certs check-expiration`: kubeadm's `kubeadm certs check-expiration` table for a
// cluster whose CAs live in Coffer, from the server's view (the certificates stored in the
// cluster's CA mounts) or, with a node's folders, from the files on disk.
//
// Columns as kubeadm: CERTIFICATE, EXPIRES ("Nov 30, 2027 17:00 UTC"), RESIDUAL TIME ("364d",
// "<invalid>" once expired), CERTIFICATE AUTHORITY (ca, etcd-ca, front-proxy-ca), EXTERNALLY
// MANAGED. EXTERNALLY MANAGED is "no" for what Coffer renews (its agent, from the cluster's
// roles) and "yes" for a file no cluster role describes. Names are kubeadm's: the kubeconfig
// name for client identities written as kubeconfigs (admin.conf, kubelet.conf, ...), else the
// certificate's (apiserver, etcd-server, ...).
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "http/api.h"

namespace coffer::cluster {

// Server's view: for each node (or only `node`), every certificate its roles get, with the
// latest stored certificate of that common name in the CA's mount (etcd-server and etcd-peer
// carry the same name, the node's, and so show the later of the two; the --local view tells
// them apart). "not issued" when none is stored.
absl::Status CheckExpirationServer(const http::Api& api, const std::string& cluster,
                                   const std::string& node, int64_t now, std::ostream& out);

// A node's files: kubeadm's tree under `root` (pki/*.crt, pki/etcd/*.crt, *.conf with embedded
// client-certificate-data) and the kubelet's serving certificate under kubelet_dir/pki. Needs
// no server. Only files present are listed; FailedPrecondition when none is found.
absl::Status CheckExpirationLocal(const std::string& root, const std::string& kubelet_dir,
                                  int64_t now, std::ostream& out);

}  // namespace coffer::cluster
