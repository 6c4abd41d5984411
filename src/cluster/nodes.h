// `coffer cluster nodes <cluster>`: the node registry as the server sees it. Each node's agent
// writes its entry (agent/agent.h Heartbeat) in the cluster's KV version 2 mount `C/nodes`; the
// entry's version time is the server's clock at the last write, so "last seen" does not depend on
// the node's clock. Nodes of the cluster's spec that never wrote are listed as "never seen".
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "http/api.h"

namespace coffer::cluster {

// Prints one line per node (NODE, ROLES, LAST SEEN, AGENT, SOONEST EXPIRY), then each reporting
// node's certificates with their expiry and the SHA-256 fingerprints of its CA files.
absl::Status Nodes(const http::Api& api, const std::string& cluster, int64_t now,
                   std::ostream& out);

}  // namespace coffer::cluster
