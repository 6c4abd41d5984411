// `coffer cluster rotate-ca|rotation status|resume|abort|skip-node`: moves every node of a cluster
// from one CA to a new one in phases, each complete only when every node holding certificates of
// that CA has acknowledged it (docs/rotation.md draws it).
//
//   trust     CA files hold old+new; leaves still from the old issuer (kubeconfigs re-embed the
//             bundle); hooks run
//   reissue   every leaf re-signed by the new issuer with a fresh key; CA files old+new; hooks
//   finalize  the mount's default issuer becomes the new one; CA files hold only the new CA;
//             hooks; when all nodes are done the old issuer loses its issuing usage and the
//             rotation's finalize hooks run once
//   abort     (from any phase before done) the rotation run backwards from where it stopped, so
//             no node ever presents a certificate another does not trust:
//               abort-trust     CA files old+new again (only when some held the new CA alone)
//               abort-reissue   leaves re-signed by the old issuer, which is the default again
//               abort-finalize  CA files hold only the old CA
//             then the new issuer may no longer issue (phase aborted)
//
// The document. One rotation at a time per cluster, stored at <cluster>/nodes/data/_rotation (the
// node registry's KV version 2 mount; "_" cannot start a node name), so it lives in Coffer's
// storage on every backend and survives server restarts. Fields:
//   id, ca, mount, old_issuer, new_issuer (issuer ids), old_pem, new_pem (the CA certificates),
//   phase ("trust" | "reissue" | "finalize" | "done" | "abort-trust" | "abort-reissue" |
//   "abort-finalize" | "aborted"), aborted_from, generation (raised
//   by resume: a node that failed the phase tries again), max_unavailable, nodes (the node names
//   taking part, skipped ones removed), skipped, batch ({node: unix time it was let in}),
//   finalize_hooks ([shell commands]), started, phase_started (unix seconds), error (why it is
//   paused, or "").
// Every write of the document is a check-and-set on its KV version, so two drivers cannot
// interleave.
//
// A node's acknowledgement is the "rotation" object of its own registry entry (written by its
// agent, which may write nothing else): {id, phase, generation, state: "done" | "failed", error,
// output (a failed hook's, cut), ca_fingerprints ({CA file: [sha256 hex]}), at}.
//
// Who advances the phases: the process running `rotate-ca` or `rotation resume|abort` (the
// driver), with an operator's token; its state is the document, so any later `resume` (another
// machine, after a server restart) continues where it stopped. Each agent keeps one long poll
// open on its own turn key (a KV version 2 read with wait/after_version, core/watch.h), which
// the driver writes when it lets the node into a phase; the agent then reads the document and
// acts only on the phase and batch it names. Agents also read the document every
// rotation_poll (5 min by default), and before any renewal.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "http/api.h"

namespace coffer::cluster {

inline constexpr const char* kRotationKey = "_rotation";
// <cluster>/nodes/data/_turn/<node>: written when the node is let into a phase ({id, phase,
// generation}); the node's agent keeps one long poll open on it.
inline constexpr const char* kTurnPrefix = "_turn/";

struct RotateOptions {
  std::string cluster;
  std::string ca;        // etcd | kubernetes | front-proxy
  std::string key_type;  // "" keeps the cluster's (ec-p256 ...)
  // An intermediate signed by a root kept elsewhere: from_csr writes the new key's CSR to
  // csr_out and stops; signed_file (the signed certificate and its chain) starts the rotation.
  bool from_csr = false;
  std::string csr_out, signed_file;
  // The new root also certified by the old CA (a cross-signed certificate, imported into the
  // mount as a read-only issuer): agents send it after each leaf of the new CA, so that clients
  // that trust only the old CA keep accepting the new leaves. Not with an intermediate.
  bool cross_sign = false;
  int max_unavailable = 1;
  std::vector<std::string> finalize_hooks;
  int64_t timeout_s = 3600;  // how long the driver waits before it leaves the rotation stored
  bool wait = true;          // drive until done; false: start it and return
  std::ostream* progress = nullptr;
  bool progress_tty = false;
};

// Creates the new issuer (a new root; or, with signed_file, the intermediate --from-csr made)
// and the rotation document, then drives it (when `wait`). With from_csr: only the CSR.
absl::Status RotateCa(const http::Api& api, const RotateOptions& o, std::ostream& out);

// Drives a stored rotation until it is done or aborted, a node fails (kFailedPrecondition, the
// rotation is left paused), or the timeout passes (kDeadlineExceeded). Server restarts and
// sealed periods are waited out.
absl::Status Drive(const http::Api& api, const RotateOptions& o, std::ostream& out);

// Raises the generation (failed nodes try again), clears the pause, and drives.
absl::Status Resume(const http::Api& api, const RotateOptions& o, std::ostream& out);
// Turns the rotation around (the abort-* phases) and drives it until every node is back on the
// old CA.
absl::Status Abort(const http::Api& api, const RotateOptions& o, std::ostream& out);
// Takes a node that is gone for good out of the rotation (it must re-bootstrap with a new init
// token: its certificates are of a CA that will not be trusted).
absl::Status SkipNode(const http::Api& api, const std::string& cluster, const std::string& node,
                      std::ostream& out);
// Follows a rotation another command drives, with a progress bar per phase, until it is done
// (OK), aborted or paused (kFailedPrecondition) or the timeout passes (kDeadlineExceeded).
absl::Status WaitRotation(const http::Api& api, const RotateOptions& o, std::ostream& out);
// Prints the phase and every node's state (done, in progress since, waiting, failed with its
// error and hook output, skipped).
absl::Status RotationStatus(const http::Api& api, const std::string& cluster, int64_t now,
                            std::ostream& out);

}  // namespace coffer::cluster
