// HttpServer: Vault's HTTP API over Boost.Beast.
//
// HTTP/1.1 with keep-alive; TLS 1.2+ (certificate and key files, reloadable) unless a listener
// sets tls_disable. Each of `io_threads` threads runs its own event loop; connections are dealt
// to the loops in turn and a request runs start to finish on its connection's thread. A request
// waiting on storage therefore holds up only the connections sharing its thread (there are many
// threads, 64 by default), and no request is handed between threads: on the signing path the two
// handoffs of a separate worker pool cost more CPU than the HTTP work itself.
// Limits: 32 MiB bodies (413), 64 KiB headers (431), a header timeout and an idle timeout.
//
// Start() binds every listener or fails; Stop() closes them and waits for the threads.
// ReloadTls() is safe to call from any thread (e.g. on SIGHUP): new connections use the new
// certificate, established ones keep theirs.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/core.h"

namespace coffer::http {

struct ListenerOptions {
  std::string address = "127.0.0.1:8200";  // host:port; port 0 picks a free one
  bool tls_disable = false;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_min_version = "tls12";  // tls12 | tls13
  // Vault's listener timeouts: time to read a request's headers once its first byte arrived,
  // to read its body, and to wait on an idle keep-alive connection.
  std::chrono::seconds read_header_timeout{10};
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{300};
};

struct ServerOptions {
  std::vector<ListenerOptions> listeners;
  int io_threads = 0;  // 0: 64, or 8 per core when that is more
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(core::Core* core, ServerOptions opts);
  virtual ~HttpServer() = default;
  virtual void Stop() = 0;
  virtual absl::Status ReloadTls() = 0;
  // "host:port" of each listener as bound.
  virtual std::vector<std::string> Addresses() const = 0;
};

}  // namespace coffer::http
