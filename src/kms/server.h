// The KMS plugin's gRPC server on a unix socket, where kube-apiserver connects.
//
// The socket file is the only access control (any process that can connect can encrypt and
// decrypt), so it is created mode 0600, owned by the plugin's user; a missing parent folder is
// created 0700. A socket file left by a plugin that died is replaced; a path that holds anything
// else, or a socket some process still accepts connections on, is refused. The socket file is
// removed on Shutdown() (and by the destructor).
//
// Not thread-safe itself: one owner starts and stops it; the service it serves is called from
// gRPC's threads.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace coffer::kms {

// The socket path of a --listen value: "unix:///run/kms/coffer.sock", "unix:/run/..." or an
// absolute path. kInvalidArgument for anything else (TCP addresses are not offered).
absl::StatusOr<std::string> SocketPath(std::string_view listen);

// Makes `path` ready to bind: creates its folder (0700) when missing, removes a stale socket.
absl::Status PrepareSocketPath(const std::string& path);

struct ServerOptions {
  std::string socket_path;
  // gRPC's threads (ResourceQuota): a call beyond them fails at once with RESOURCE_EXHAUSTED,
  // so this is a safety bound well above the calls expected at once; the service queues its
  // calls to Coffer itself (ServiceOptions::max_in_flight).
  int max_threads = 128;
  // Larger requests fail with RESOURCE_EXHAUSTED before reaching the service (which refuses
  // plaintexts over ServiceOptions::max_plaintext itself, with INVALID_ARGUMENT).
  int max_message_bytes = (1 << 20) + (64 << 10);
};

class PluginServer {
 public:
  // Binds and starts serving `service` (not owned; must outlive the server).
  static absl::StatusOr<std::unique_ptr<PluginServer>> Start(grpc::Service* service,
                                                             const ServerOptions& o);
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // Stops accepting calls, gives running ones up to `grace_ms` to finish, removes the socket.
  void Shutdown(int grace_ms = 5000);

  const std::string& socket_path() const { return path_; }

 private:
  PluginServer(std::unique_ptr<grpc::Server> server, std::string path, dev_t dev, ino_t ino);

  std::unique_ptr<grpc::Server> server_;
  std::string path_;
  dev_t dev_;  // identity of the socket file we made: removed only if it is still ours
  ino_t ino_;
  bool stopped_ = false;
};

}  // namespace coffer::kms
