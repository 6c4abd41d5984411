// HttpServer: Vault's HTTP API over Boost.Beast.
//
// HTTP/1.1 with keep-alive; TLS 1.2+ (certificate and key files, reloadable) unless a listener
// sets tls_disable. A few event loops (one per core, at least two) serve the connections, which
// are dealt to them in turn. A request that cannot wait on storage (a read, not a listing; a
// backend's MayWait() says which writes write nothing, such as signing on a no_store role) runs
// start to finish on its connection's loop: no handoff between threads, which on the signing path
// costs as much as the HTTP work. A request that may wait on a durable write (a group commit's
// fsync) runs on the blocking pool (64 threads by default, so that group commits fill), and with a
// store whose reads wait on the network (etcd) every request does. On one core the few loops
// cut the context switches of the former 64-loop design: lookup-self 45k -> 63k req/s.
// Limits: max_request_size bodies (413, 32 MiB by default), 64 KiB headers (431), JSON limits
// (400, Vault's max_json_* keys), a header timeout and idle timeouts.
//
// Under abuse (docs/hardening.md):
// - A body over 64 KiB is read only after the token (or, for a path that needs none, the path)
//   was checked from the headers alone: an unauthenticated caller cannot make the server read
//   and parse 32 MiB for a 403.
// - Expensive requests (paths a backend declares expensive: key generation, CRL builds, tidy;
//   and bodies over 64 KiB) run on a small bounded pool, not on the connection's event loop;
//   when the pool's queue is full they get 503.
// - Connections are bounded per listener (max_connections, by default what the descriptor
//   limit allows) and optionally per client address; at the limit the connection idle the
//   longest is closed for the new one. A connection that has not yet sent a request with a
//   valid token is closed after a shorter idle time. accept() failing for want of descriptors
//   backs off instead of spinning.
// - Memory of closed connections is returned to the system when the server goes quiet.
//
// Start() binds every listener or fails; Stop() closes them and waits for the threads.
// ReloadTls() is safe to call from any thread (e.g. on SIGHUP): new connections use the new
// certificate, established ones keep theirs.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/core.h"
#include "http/convert.h"

namespace coffer::http {

struct ListenerOptions {
  std::string address = "127.0.0.1:8200";  // host:port; port 0 picks a free one
  bool tls_disable = false;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_min_version = "tls12";  // tls12 | tls13
  // mTLS: with a client CA file, a client certificate is asked for and, when presented, must
  // chain to it (else the handshake fails); with require_client_cert every client must present
  // one. disable_client_certs never asks.
  std::string tls_client_ca_file;
  bool require_client_cert = false;
  bool disable_client_certs = false;
  // Vault's listener timeouts: time to read a request's headers once its first byte arrived,
  // to read its body, and to wait on an idle keep-alive connection.
  std::chrono::seconds read_header_timeout{10};
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{300};
  // Idle time allowed to a connection that has not yet sent a request with a valid token
  // (Coffer's own; never longer than idle_timeout).
  std::chrono::seconds unauthenticated_idle_timeout{120};
  RequestLimits limits;  // max_request_size and the JSON limits
  // Open connections allowed (0: the descriptor limit less a reserve for storage and audit
  // files), and per client address (0: no per-address limit).
  size_t max_connections = 0;
  size_t max_connections_per_client = 0;
  // Vault's custom_response_headers: "default", "2xx"... or "404" -> header -> value. The
  // most specific status key wins per header; defaults include Strict-Transport-Security.
  std::map<std::string, std::map<std::string, std::string>> custom_response_headers;
};

struct ServerOptions {
  std::vector<ListenerOptions> listeners;
  int io_threads = 0;  // event loops; 0: one per core, at least 2
  // The pool for requests that may wait on storage (writes; with offload_reads every
  // request): 0: 64 threads, or 8 per core when that is more.
  int blocking_threads = 0;
  // For a store whose reads wait on the network (etcd): reads too leave the event loops.
  bool offload_reads = false;
  // The pool for expensive requests: threads (0: one per core) and how many may wait.
  int expensive_threads = 0;
  size_t expensive_queue = 64;
  // An HA standby forwards requests to the active server (false: disable_forwarding, a 307).
  bool forward_requests = true;
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(core::Core* core,
                                                           const ServerOptions& opts);
  virtual ~HttpServer() = default;
  virtual void Stop() = 0;
  virtual absl::Status ReloadTls() = 0;
  // "host:port" of each listener as bound.
  virtual std::vector<std::string> Addresses() const = 0;
};

}  // namespace coffer::http
