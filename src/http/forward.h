// HA request forwarding (docs/ha.md): a standby hands a client's request to the active server
// and relays its answer, so a client may talk to any server of a cluster. The request travels
// sealed with AES-256-GCM under a key only servers holding the root key can derive
// (core::Core::ForwardingKey; each message under a key of its own derived from it with a random
// salt), inside the usual TLS connection: the standby needs no CA for the
// active server's certificate, and nothing but a server of the same cluster can read a forwarded
// token, pose as the active server, or forge the client address the active server acts on
// (audit, bound CIDRs). Each sealed request carries its sender's id, a sequence number and a
// time, and names the server it is for: the active server refuses one for another server, one
// sealed before it became active, one it has seen (ReplayGuard) or one over a minute old.
//
// Pure functions and one small class, kept free of sockets so the parsing of these untrusted
// bytes can be fuzzed (fuzz/forward_fuzz.cc) and tested on its own. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "http/convert.h"
#include "util/mutex.h"

namespace coffer::http {

// The path a standby posts sealed requests to on the active server (never routed to the core).
inline constexpr std::string_view kForwardPath = "/v1/sys/internal/coffer-forward";
inline constexpr std::string_view kForwardContentType = "application/vnd.coffer.forward";
// Proves the sender holds the key before a large sealed body is read: "<unix time>:<hex MAC>".
inline constexpr std::string_view kForwardAdmitHeader = "X-Coffer-Forward-Admit";
// The oldest (and furthest in the future) a sealed request may be, in seconds.
inline constexpr int64_t kForwardMaxAgeSeconds = 60;

// A client's request as the standby received it (the fields ParseRequest reads).
struct ForwardedRequest {
  std::string sender;  // the standby's random id (hex), fixed for its process
  uint64_t seq = 0;    // per sender, increasing
  int64_t time = 0;    // unix seconds when sealed
  std::string to;      // the api_addr of the server it is for (no other server takes it)
  std::string remote_address;
  std::string method, target, vault_token, authorization, wrap_ttl;
  std::vector<std::string> unsupported_headers;
  std::string body;

  // Views into this object for ParseRequest; the remote address is the client's.
  RawRequest Raw() const;
};

absl::StatusOr<std::string> SealRequest(const crypto::SecretBytes& key, const ForwardedRequest& r);
// kPermissionDenied when the bytes were not sealed with this key (another cluster, a root key
// changed since, tampering); kInvalidArgument when they decrypt but are malformed.
absl::StatusOr<ForwardedRequest> OpenRequest(const crypto::SecretBytes& key,
                                             std::string_view sealed);

// The answer, bound to the request it answers (sender and seq).
absl::StatusOr<std::string> SealResponse(const crypto::SecretBytes& key, const ForwardedRequest& to,
                                         const RawResponse& r);
absl::StatusOr<RawResponse> OpenResponse(const crypto::SecretBytes& key, const ForwardedRequest& to,
                                         std::string_view sealed);

// On the active server: accepts each (sender, seq) once (kAlreadyExists for one seen, or too old
// for the window), within kForwardMaxAgeSeconds of now (kPermissionDenied).
// Sequence numbers may arrive out of order (requests run on several connections): a window of
// the last kWindow numbers per sender is kept; an older one is refused (the standby's client
// gets a 4xx and may retry: a new sequence number).
class ReplayGuard {
 public:
  static constexpr uint64_t kWindow = 4096;
  absl::Status Accept(const ForwardedRequest& r, int64_t now);

 private:
  struct Sender {
    uint64_t highest = 0;
    std::vector<bool> seen = std::vector<bool>(kWindow);  // seen[seq % kWindow]
    int64_t last_time = 0;
  };
  Mutex mu_;
  std::map<std::string, Sender> senders_ ABSL_GUARDED_BY(mu_);
  int64_t latest_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace coffer::http
