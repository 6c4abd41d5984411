// The node agent: bootstraps its token from a one-use init token, keeps every configured
// certificate valid (key made here and kept, CSR signed by the server's sign/:role), writes files
// atomically with their owner and mode, writes kubeconfigs, runs reload hooks, and keeps going with
// backoff while the server is down or sealed, leaving the current files in place.
//
// Schedule: a certificate is renewed at a point between 60% and 75% of its lifetime, chosen from a
// hash of its serial and the node name (so `once` runs agree with a running daemon and a thousand
// nodes do not all come at once); the token at half its TTL.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/config.h"
#include "http/api.h"
#include "util/clock.h"

namespace coffer::agent {

// What is on disk for one certificate.
struct CertState {
  bool present = false;
  std::string serial;
  int64_t not_before = 0, not_after = 0;
  int64_t renew_at = 0;  // when it is due (0: now)
  std::string reason;    // why it is due now ("" when it is not)
  bool new_key = false;  // the key must be replaced (missing, wrong type or size, mismatched)
};

// What a node does for certificates of a mount under CA rotation in a given phase: sign with
// `issuer` (an issuer id) and write `ca_pem` as the CA file.
struct RotationState {
  std::string id, mount, issuer, ca_pem;
};

class Agent {
 public:
  Agent(Config c, const Clock* clock);
  ~Agent();  // wipes a node token not yet saved
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  const Config& config() const { return c_; }

  // Loads the token file; without one, exchanges the init token (once) and wipes its file.
  absl::Status EnsureToken();
  // auth/token/renew-self; returns the new TTL in seconds.
  absl::StatusOr<int64_t> RenewToken();
  // The token's remaining TTL (lookup-self).
  absl::StatusOr<int64_t> TokenTtl();

  CertState Inspect(const CertSpec& s) const;
  // Gets the certificate signed and writes its files; rotate_key forces a fresh key. During a CA
  // rotation of the certificate's mount the issuer and the CA file's content are the rotation's
  // (see Rotate). run_hook: the certificate's exec afterwards.
  absl::StatusOr<CertState> Renew(const CertSpec& s, bool rotate_key = false, bool run_hook = true);
  absl::Status FetchSecret(const SecretSpec& s);
  // Writes this node's entry in the cluster's node registry (config node_registry): the agent's
  // version, each certificate's serial and expiry, and the SHA-256 fingerprint of each CA file
  // as written. A no-op without node_registry.
  absl::Status Heartbeat();
  // One look at the cluster's CA rotation (cluster/rotation.h): learns what the phases this node
  // finished ask of its renewals (issuer, CA file content), and with `act`, when the current
  // phase is this node's to act on (it is in the batch), does what the phase asks for every
  // certificate of the rotated mount, runs their hooks once each, and acknowledges in its
  // registry entry (done with the CA files' fingerprints, or failed with the error and the
  // hook's output). Renewals made without it first ignore a rotation in progress. A no-op
  // without node_registry or without a rotation.
  absl::Status Rotate(bool act = true);
  // One pass (for `agent once`): token, every certificate due (all with force), every secret.
  // Returns true when everything is valid afterwards.
  bool Once(bool force);

  // The daemon loop, until *stop becomes true.
  void Run(const std::atomic<bool>* stop);

  // The renewal point for a certificate: not_before + lifetime * [0.60, 0.75).
  static int64_t RenewAt(int64_t not_before, int64_t not_after, std::string_view serial,
                         std::string_view node);
  // Backoff before retry `attempt` (0-based): min * 2^attempt, capped at max, times [0.5, 1).
  int64_t BackoffMs(int attempt) const;

 private:
  // The sign path and CA text a renewal of `s` uses now (the rotation's, or the defaults).
  std::string SignPath(const CertSpec& s) const;
  const RotationState* RotationFor(const CertSpec& s) const;
  absl::Status RotationPhase(const boost::json::object& doc, const std::string& phase,
                             const std::string& last_done);
  absl::Status LoadAck();
  absl::StatusOr<std::optional<boost::json::object>> ReadRotation();
  absl::Status RepairCaFiles();
  // The long poll on this node's rotation turn key (Run's watcher thread, with its own client):
  // raises `changed` when the driver lets the node into a phase.
  void WatchRotation(const http::Api& api, const std::atomic<bool>* stop,
                     std::atomic<bool>* changed) const;

  http::Api api_;
  Config c_;
  const Clock* clock_;
  std::optional<RotationState> rotation_;
  // The cross-signed certificates of the cluster's rotations (`rotate-ca --cross-sign`), one per
  // CA at most: each is sent after every leaf whose issuer it certifies.
  std::vector<std::string> cross_pems_;
  // Certificate files written before this agent knew of a cross-signed certificate get it.
  absl::Status RepairCrossChains();
  boost::json::object ack_;  // this node's acknowledgement, written with its registry entry
  bool ack_loaded_ = false;  // read back from the registry once after start
  bool ack_dirty_ = false;   // not yet written to the registry
  bool rotation_denied_logged_ = false;
  // A node token made from the init token but not saved yet (its file could not be written):
  // used from memory, and saved by the next EnsureToken that can.
  std::string unsaved_token_;
};

// Renders a kubeconfig with everything embedded (base64 CA, certificate and key).
std::string RenderKubeconfig(const KubeconfigSpec& k, std::string_view ca_pem,
                             std::string_view cert_pem, std::string_view key_pem);

}  // namespace coffer::agent
