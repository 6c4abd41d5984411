// `coffer cluster setup|status|import-ca|init-token|agent-config`: applies the cluster profile
// (profile.h) to a server through its HTTP API, idempotently. Each desired object is read first and
// only written when it is missing or differs; the plan is printed, then each change made.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "cluster/profile.h"
#include "http/api.h"

namespace coffer::cluster {

struct SetupOptions {
  ClusterSpec spec;
  std::string intermediate_of;  // a PKI mount whose default issuer signs the three CAs
  bool csr = false;             // make intermediate CSRs for an external root (csr_dir/<ca>.csr)
  std::string csr_dir = ".";
  std::string init_token_dir;  // writes <node>.token here (0600); empty: no init tokens
  bool dry_run = false;
  // Where a progress bar goes (stderr in the CLI; null: none) and whether it is a terminal.
  std::ostream* progress = nullptr;
  bool progress_tty = false;
};

// Returns the number of changes made (or planned, with dry_run).
absl::StatusOr<int> Setup(const http::Api& api, const SetupOptions& o, std::ostream& out);

// Installs a signed CA certificate (PEM, chain allowed) for a cluster's `ca` (etcd, kubernetes,
// front-proxy) made with --csr.
absl::Status ImportCa(const http::Api& api, const std::string& cluster, const std::string& ca,
                      const std::string& pem, std::ostream& out);

// The stored spec of a cluster set up before.
absl::StatusOr<ClusterSpec> LoadSpec(const http::Api& api, const std::string& cluster);

// Prints the CAs with expiry, the roles, the nodes holding tokens and the `soonest` certificates
// expiring soonest. The token walk and the certificate pages report to `progress` when given (a
// bar when `progress_tty`), so a large cluster's status shows how far it is.
absl::Status Status(const http::Api& api, const std::string& cluster, int soonest, int64_t now,
                    std::ostream& out, std::ostream* progress = nullptr, bool progress_tty = false);

// One certificate of a mount's store as `LIST <mount>/certs?key_info=true` describes it.
struct StoredCert {
  std::string serial, common_name;
  int64_t expiration = 0;  // 0 when the listing gave none
};
// Pages through a mount's certificate store (1,000 names a request, bounded memory) and calls
// `fn` for each certificate, then `page` (if given) with how many names the page held. A mount
// without certificates (404) calls nothing.
absl::Status ForEachStoredCert(const http::Api& api, const std::string& mount,
                               const std::function<void(const StoredCert&)>& fn,
                               const std::function<void(size_t)>& page = nullptr);

// Makes a fresh init token for one node (num_uses 1), for a node re-installed or never booted.
absl::StatusOr<std::string> NewInitToken(const http::Api& api, const ClusterSpec& s,
                                         const NodeSpec& n);

}  // namespace coffer::cluster
