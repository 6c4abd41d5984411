// `coffer kms-plugin`: a Kubernetes KMS v2 plugin. kube-apiserver connects to its unix socket
// and has its data encryption keys encrypted by a Transit key in Coffer (src/kms/). The token
// comes from a file (-token-file) or from a Kubernetes service account login (-k8s-role); the
// server address and CA from the usual flags and COFFER_ADDR / COFFER_CACERT (VAULT_* too).
// Runs until SIGTERM or SIGINT, then stops serving and removes its socket.
//
// This code, with gRPC and protobuf, is the program coffer-kms-plugin (main.cc here), which
// `coffer kms-plugin` runs in its place (src/cli/kms_commands.cc): loading gRPC into every
// `coffer` process cost the server 4.4 MB of resident memory it never used.
#include "kmsplugin/plugin_command.h"

#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX sigtimedwait, sigset_t

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>

#include "cli/client_util.h"
#include "kms/server.h"
#include "kms/service.h"
#include "kms/token_source.h"
#include "kms/transit.h"
#include "util/duration.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::kmsplugin {
using cli::ClientFlags;
using cli::kExitLocal;
using cli::kExitOk;
using cli::Resolve;

namespace {

struct KmsArgs {
  ClientFlags flags;
  std::string listen, key, mount = "transit";
  std::string token_file, k8s_role, k8s_mount = "kubernetes";
  std::string k8s_jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string key_refresh = "5s";
  int concurrency = 8;
  std::string log_level = "info", log_format = "text";
};

int Fail(const absl::Status& st) {
  std::cerr << "Error: " << st.message() << "\n";
  return kExitLocal;
}

absl::StatusOr<std::unique_ptr<kms::TokenSource>> MakeTokenSource(const KmsArgs& a,
                                                                  const http::ClientOptions& o) {
  if (a.token_file.empty() == a.k8s_role.empty())
    return absl::InvalidArgumentError(
        "give either -token-file FILE or -k8s-role ROLE (with -k8s-jwt-file), not both or "
        "neither");
  if (!a.token_file.empty()) {
    ASSIGN_OR_RETURN(auto s, kms::FileTokenSource::Create(a.token_file));
    return std::unique_ptr<kms::TokenSource>(std::move(s));
  }
  kms::KubernetesLoginOptions k;
  k.client = o;
  k.client.timeout = std::chrono::seconds(10);
  k.mount = a.k8s_mount;
  k.role = a.k8s_role;
  k.jwt_file = a.k8s_jwt_file;
  return std::unique_ptr<kms::TokenSource>(
      std::make_unique<kms::KubernetesTokenSource>(std::move(k), RealClock::Get()));
}

int RunPlugin(const KmsArgs& a) {
  if (auto st = log::Configure(a.log_level, a.log_format); !st.ok()) return Fail(st);
  auto path = kms::SocketPath(a.listen);
  if (!path.ok()) return Fail(path.status());
  if (a.key.empty() || a.key.find('/') != std::string::npos)
    return Fail(absl::InvalidArgumentError("-transit-key must name one Transit key"));
  auto refresh = ParseDurationSeconds(a.key_refresh);
  if (!refresh.ok() || *refresh < 1)
    return Fail(absl::InvalidArgumentError(
        Cat("-key-refresh \"", a.key_refresh, "\": expected a duration of 1s or more")));
  if (a.concurrency < 1 || a.concurrency > 64)
    return Fail(absl::InvalidArgumentError("-concurrency must be between 1 and 64"));

  http::ClientOptions o = Resolve(a.flags);
  o.token.clear();  // only -token-file or -k8s-role give the plugin its token
  auto tokens = MakeTokenSource(a, o);
  if (!tokens.ok()) return Fail(tokens.status());

  kms::HttpTransitOptions t;
  t.client = o;
  t.mount = a.mount;
  t.key = a.key;
  kms::HttpTransit transit(std::move(t), tokens->get());
  kms::ServiceOptions so;
  so.mount = a.mount;
  so.key = a.key;
  so.refresh = absl::Seconds(*refresh);
  so.max_in_flight = a.concurrency;
  kms::KmsService service(&transit, so, RealClock::Get());

  // The signals are taken by this thread only (sigtimedwait below): block them before gRPC
  // starts its threads, which inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  kms::ServerOptions server_options;
  server_options.socket_path = *path;
  auto server = kms::PluginServer::Start(&service, server_options);
  if (!server.ok()) return Fail(server.status());
  log::Info("kms: serving the Kubernetes KMS v2 API",
            {{"socket", *path},
             {"transit_key", Cat(a.mount, "/keys/", a.key)},
             {"server", o.address},
             {"auth", (*tokens)->Describe()}});

  // A first look at the key, so a wrong mount, key or policy shows in the log at start-up.
  // Serving does not wait for it: Coffer may come up after the plugin.
  (*tokens)->Tick();
  if (auto v = service.LatestVersion(std::chrono::seconds(10)); v.ok()) {
    log::Info("kms: transit key ready", {{"key_id", service.KeyId(*v)}});
  } else {
    log::Warn("kms: cannot read the transit key yet (serving anyway; Status reports it)",
              {{"error", kms::ToGrpcStatus(v.status(), "reading the key", so).error_message()}});
  }

  int sig = 0;
  while (sig <= 0) {
    timespec tick{1, 0};
    sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig < 0 && errno != EAGAIN && errno != EINTR) break;
    if (sig <= 0) (*tokens)->Tick();  // renew or log in again when due
  }
  log::Info("kms: stopping", {{"signal", sig > 0 ? std::string(strsignal(sig)) : "error"}});
  (*server)->Shutdown();
  log::Info("kms: stopped; socket removed", {{"socket", *path}});
  return kExitOk;
}

}  // namespace

void ConfigureKmsPlugin(CLI::App* c, int* exit_code) {
  auto a = std::make_shared<KmsArgs>();
  c->add_option("--listen", a->listen, "Unix socket to serve on: unix:///run/kms/coffer.sock")
      ->required();
  c->add_option("--transit-key", a->key, "Transit key that encrypts kube-apiserver's DEKs")
      ->required();
  c->add_option("--transit-mount", a->mount, "Path of the Transit engine (transit)");
  c->add_option("--address", a->flags.address, "Server address (env COFFER_ADDR, VAULT_ADDR)");
  c->add_option("--ca-cert", a->flags.ca_cert,
                "CA certificate file (env COFFER_CACERT, VAULT_CACERT)");
  c->add_flag("--tls-skip-verify", a->flags.skip_verify,
              "Do not verify the server certificate (insecure)");
  c->add_option("--token-file", a->token_file,
                "File holding the token (read again when it changes)");
  c->add_option("--k8s-role", a->k8s_role,
                "Log in with the kubernetes auth method as this role (instead of -token-file)");
  c->add_option("--k8s-jwt-file", a->k8s_jwt_file,
                "Service account token for -k8s-role "
                "(/var/run/secrets/kubernetes.io/serviceaccount/token)");
  c->add_option("--k8s-mount", a->k8s_mount, "Path of the kubernetes auth method (kubernetes)");
  c->add_option("--key-refresh", a->key_refresh,
                "How often Status asks Coffer for the key's latest version (5s)");
  c->add_option("--concurrency", a->concurrency,
                "Most calls to Coffer at once (8); more wait for a turn within their deadline");
  c->add_option("--log-level", a->log_level, "trace|debug|info|warn|error");
  c->add_option("--log-format", a->log_format, "text or json");
  c->callback([a, exit_code] { *exit_code = RunPlugin(*a); });
}

}  // namespace coffer::kmsplugin
