#include "kms/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "util/log.h"
#include "util/status.h"

// ThreadSanitizer and gRPC. Debian's gRPC, protobuf and abseil are not built with TSan: their
// own memory accesses are invisible to it, and so is the synchronization between gRPC's
// threads (abseil's Mutex, futexes, atomics in uninstrumented code), while the libc calls they
// make (epoll_wait, close, memmove, free ...) still go through TSan's interceptors. Without this
// a first TSan run of the plugin reported races between gRPC's own threads on its epoll file
// descriptor, in abseil's deadlock-detection graph and in absl::Status payloads, all between
// two frames of these libraries. called_from_lib ignores the interceptors those libraries call
// (a pattern may match at most one loaded library), nothing else: races in Coffer's code,
// including the KMS handlers that gRPC calls, are still reported. One race: entry, for the C++
// gRPC client of kms_test.cc: grpc++'s inline code reading the status text that gRPC's core
// wrote in another thread (12 of 12 runs clean with it, 1 of 3 failing without). Compiled into
// every TSan binary that links this file (coffer, coffer_tests); read at start-up.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
extern "C" const char* __tsan_default_suppressions() {  // NOLINT(bugprone-reserved-identifier)
  return "called_from_lib:libgrpc.so\n"
         "called_from_lib:libgrpc++.so\n"
         "called_from_lib:libgpr.so\n"
         "called_from_lib:libprotobuf.so\n"
         "race:grpc::internal::CallOpClientRecvStatus::FinishOp\n"
         "called_from_lib:libabsl_bad_optional_access.so\n"
         "called_from_lib:libabsl_bad_variant_access.so\n"
         "called_from_lib:libabsl_base.so\n"
         "called_from_lib:libabsl_city.so\n"
         "called_from_lib:libabsl_civil_time.so\n"
         "called_from_lib:libabsl_cord.so\n"
         "called_from_lib:libabsl_cord_internal.so\n"
         "called_from_lib:libabsl_cordz_functions.so\n"
         "called_from_lib:libabsl_cordz_handle.so\n"
         "called_from_lib:libabsl_cordz_info.so\n"
         "called_from_lib:libabsl_debugging_internal.so\n"
         "called_from_lib:libabsl_demangle_internal.so\n"
         "called_from_lib:libabsl_exponential_biased.so\n"
         "called_from_lib:libabsl_graphcycles_internal.so\n"
         "called_from_lib:libabsl_hash.so\n"
         "called_from_lib:libabsl_hashtablez_sampler.so\n"
         "called_from_lib:libabsl_int128.so\n"
         "called_from_lib:libabsl_log_severity.so\n"
         "called_from_lib:libabsl_low_level_hash.so\n"
         "called_from_lib:libabsl_malloc_internal.so\n"
         "called_from_lib:libabsl_random_distributions.so\n"
         "called_from_lib:libabsl_random_internal_platform.so\n"
         "called_from_lib:libabsl_random_internal_pool_urbg.so\n"
         "called_from_lib:libabsl_random_internal_randen.so\n"
         "called_from_lib:libabsl_random_internal_randen_hwaes.so\n"
         "called_from_lib:libabsl_random_internal_randen_hwaes_impl.so\n"
         "called_from_lib:libabsl_random_internal_randen_slow.so\n"
         "called_from_lib:libabsl_random_internal_seed_material.so\n"
         "called_from_lib:libabsl_random_seed_gen_exception.so\n"
         "called_from_lib:libabsl_random_seed_sequences.so\n"
         "called_from_lib:libabsl_raw_hash_set.so\n"
         "called_from_lib:libabsl_raw_logging_internal.so\n"
         "called_from_lib:libabsl_spinlock_wait.so\n"
         "called_from_lib:libabsl_stacktrace.so\n"
         "called_from_lib:libabsl_status.so\n"
         "called_from_lib:libabsl_statusor.so\n"
         "called_from_lib:libabsl_str_format_internal.so\n"
         "called_from_lib:libabsl_strerror.so\n"
         "called_from_lib:libabsl_strings.so\n"
         "called_from_lib:libabsl_strings_internal.so\n"
         "called_from_lib:libabsl_symbolize.so\n"
         "called_from_lib:libabsl_synchronization.so\n"
         "called_from_lib:libabsl_throw_delegate.so\n"
         "called_from_lib:libabsl_time.so\n"
         "called_from_lib:libabsl_time_zone.so\n";
}
#endif
#endif

namespace coffer::kms {

absl::StatusOr<std::string> SocketPath(std::string_view listen) {
  std::string_view p = listen;
  if (p.substr(0, 7) == "unix://") {
    p.remove_prefix(7);
  } else if (p.substr(0, 5) == "unix:") {
    p.remove_prefix(5);
  }
  if (p.empty() || p[0] != '/')
    return absl::InvalidArgumentError(
        Cat("--listen \"", listen,
            "\": expected a unix socket as unix:///absolute/path.sock (kube-apiserver reaches KMS "
            "plugins over a unix socket only)"));
  if (p.size() >= sizeof(sockaddr_un{}.sun_path))
    return absl::InvalidArgumentError(Cat("--listen \"", listen, "\": the socket path is longer ",
                                          "than the ", sizeof(sockaddr_un{}.sun_path) - 1,
                                          " bytes a unix socket address holds"));
  return std::string(p);
}

namespace {

// True when some process accepts connections on the socket at `path`.
bool SomeoneListens(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  const bool up = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return up;
}

}  // namespace

absl::Status PrepareSocketPath(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return absl::FailedPreconditionError(
          Cat("cannot create the socket's folder ", dir.string(), ": ", ec.message()));
    // Only this user may reach the socket through a folder the plugin made.
    if (chmod(dir.c_str(), 0700) != 0)
      return absl::FailedPreconditionError(
          Cat("cannot set mode 0700 on ", dir.string(), ": ", std::strerror(errno)));
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(Cat("cannot inspect ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode))
    return absl::FailedPreconditionError(
        Cat("refusing to listen on ", path, ": the path exists and is not a socket"));
  if (SomeoneListens(path))
    return absl::AlreadyExistsError(
        Cat("another process is serving on ", path, "; stop it first or choose another --listen"));
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return absl::FailedPreconditionError(
        Cat("cannot remove the stale socket ", path, ": ", std::strerror(errno)));
  log::Info("kms: removed a stale socket file", {{"path", path}});
  return absl::OkStatus();
}

PluginServer::PluginServer(std::unique_ptr<grpc::Server> server, std::string path, dev_t dev,
                           ino_t ino)
    : server_(std::move(server)), path_(std::move(path)), dev_(dev), ino_(ino) {}

absl::StatusOr<std::unique_ptr<PluginServer>> PluginServer::Start(grpc::Service* service,
                                                                  const ServerOptions& o) {
  RETURN_IF_ERROR(PrepareSocketPath(o.socket_path));
  grpc::ServerBuilder b;
  b.AddListeningPort("unix://" + o.socket_path, grpc::InsecureServerCredentials());
  b.RegisterService(service);
  b.SetMaxReceiveMessageSize(o.max_message_bytes);
  b.SetMaxSendMessageSize(o.max_message_bytes);
  grpc::ResourceQuota quota("coffer-kms-plugin");
  quota.SetMaxThreads(o.max_threads);
  b.SetResourceQuota(quota);
  // gRPC creates the socket file with the process umask: none but the owner may connect, from
  // the moment it exists (the chmod below only repeats it).
  const mode_t old_umask = umask(0077);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  umask(old_umask);
  if (!server)
    return absl::UnavailableError(
        Cat("cannot listen on unix://", o.socket_path, " (gRPC's reason is logged above)"));
  struct stat st {};
  if (chmod(o.socket_path.c_str(), 0600) != 0 || lstat(o.socket_path.c_str(), &st) != 0) {
    const std::string err = std::strerror(errno);
    server->Shutdown();
    return absl::FailedPreconditionError(
        Cat("cannot set mode 0600 on the socket ", o.socket_path, ": ", err));
  }
  return std::unique_ptr<PluginServer>(
      new PluginServer(std::move(server), o.socket_path, st.st_dev, st.st_ino));
}

void PluginServer::Shutdown(int grace_ms) {
  if (stopped_) return;
  stopped_ = true;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  // Another plugin may have replaced the file meanwhile: remove only the socket made here.
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    unlink(path_.c_str());
}

PluginServer::~PluginServer() { Shutdown(0); }

}  // namespace coffer::kms
