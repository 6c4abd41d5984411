// `coffer agent run|once|renew-token|cert|read|kubeconfig`: the node agent (vault-helper's
// command set). `run` and `once` read a config file; the one-off commands take the server and
// token from -config when given, else from the usual flags and COFFER_* variables.
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX sigwait, sigset_t

#include <algorithm>
#include <atomic>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>

#include "agent/agent.h"
#include "cli/client_util.h"
#include "util/duration.h"
#include "util/files.h"
#include "util/human_time.h"
#include "util/log.h"
#include "util/status.h"
#include "util/suggest.h"

namespace coffer::cli {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

struct AgentArgs {
  ClientFlags flags;
  std::string config, log_level = "info";
  bool force = false, rotate_key = false;
  // one-off commands
  std::string role, cn, dest, kubeconfig, api_server, cluster = "kubernetes", path, field;
  std::vector<std::string> sans, ip_sans;
  std::string key_type = "ec", ttl, owner, group, mode;
  int key_bits = 0;
};

absl::StatusOr<agent::Config> ConfigFor(const AgentArgs& a, bool required) {
  if (!a.config.empty()) return agent::LoadConfig(a.config);
  if (required) return absl::InvalidArgumentError("-config FILE is required");
  auto o = Resolve(a.flags);
  agent::Config c;
  c.address = o.address;
  c.ca_cert = o.ca_cert;
  c.token = o.token;
  return c;
}

void Logging(const AgentArgs& a) { (void)log::Configure(a.log_level, "text"); }

}  // namespace

void RegisterAgentCommands(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<AgentArgs>();
  auto* ag = app.add_subcommand("agent", "The node agent: tokens, keys and certificates on a node");
  ag->require_subcommand(1);
  auto common = [&](CLI::App* c, bool needs_config) {
    c->add_option("-c,--config", a->config, "Agent config file (HCL or JSON)")
        ->required(needs_config);
    c->add_option("--log-level", a->log_level, "trace|debug|info|warn|error");
  };

  auto* run = ag->add_subcommand("run", "Run as a daemon: keep the token and certificates valid");
  common(run, true);
  run->callback([a, exit_code] {
    Logging(*a);
    auto c = ConfigFor(*a, true);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    agent::Agent ag(std::move(*c), RealClock::Get());
    ag.Run(&g_stop);
  });

  auto* once = ag->add_subcommand(
      "once", "One pass (for a systemd timer); exit 0 when every certificate is valid");
  common(once, true);
  once->add_flag("--force", a->force, "Renew every certificate now");
  once->callback([a, exit_code] {
    Logging(*a);
    auto c = ConfigFor(*a, true);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    agent::Agent ag(std::move(*c), RealClock::Get());
    if (!ag.Once(a->force)) *exit_code = kExitRemote;
  });

  auto* renew = ag->add_subcommand(
      "renew", "Renew one certificate now (or all), as kubeadm certs renew: NAME|all");
  common(renew, true);
  auto which = std::make_shared<std::string>();
  auto rotate = std::make_shared<bool>(false);
  renew->add_option("name", *which, "The certificate's name in the config, or all")->required();
  renew->add_flag("--rotate-key", *rotate, "Make a fresh key too (the key is kept otherwise)");
  renew->callback([a, which, rotate, exit_code] {
    Logging(*a);
    auto c = ConfigFor(*a, true);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    std::vector<std::string> names;
    for (const auto& cs : c->certificates) names.push_back(cs.name);
    if (*which != "all" && std::find(names.begin(), names.end(), *which) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      auto near = ClosestMatch(*which, std::vector<std::string_view>(names.begin(), names.end()));
      std::cerr << "Error: no certificate \"" << *which << "\" in " << a->config
                << (near.empty() ? "" : "; did you mean \"" + near + "\"?") << " (known: " << known
                << ", or all)\n";
      *exit_code = kExitLocal;
      return;
    }
    agent::Agent ag(std::move(*c), RealClock::Get());
    if (auto st = ag.EnsureToken(); !st.ok()) {
      *exit_code = FailStatus(st);
      return;
    }
    // During a CA rotation, renewals sign with the rotation's issuer and write its CA content.
    if (auto st = ag.Rotate(/*act=*/false); !st.ok()) {
      *exit_code = FailStatus(st);
      return;
    }
    const int64_t now = std::time(nullptr);
    for (const auto& cs : ag.config().certificates) {
      if (*which != "all" && cs.name != *which) continue;
      auto r = ag.Renew(cs, *rotate);
      if (!r.ok()) {
        std::cerr << "Error renewing " << cs.name << ": " << r.status().message() << "\n";
        *exit_code = kExitRemote;
        continue;
      }
      std::cout << "renewed " << cs.name << ": serial " << r->serial << ", expires "
                << ExpiryText(r->not_after, now) << ", renews at " << Rfc3339Utc(r->renew_at)
                << "\n";
    }
  });

  auto* check = ag->add_subcommand("check", "Check a config file and print what it manages");
  common(check, true);
  check->callback([a, exit_code] {
    auto c = ConfigFor(*a, true);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    std::cout << "config OK: server " << c->address << ", node " << c->node_name << ", "
              << c->certificates.size() << " certificates, " << c->secrets.size() << " secrets\n";
    for (const auto& cs : c->certificates)
      std::cout << "  " << cs.name << ": " << cs.role << " CN=" << cs.common_name << " -> "
                << (cs.cert_file.empty() ? cs.kubeconfig.path : cs.cert_file) << "\n";
  });

  auto* rt = ag->add_subcommand("renew-token",
                                "Renew the node token (exchanging the init token first if needed)");
  common(rt, true);
  rt->callback([a, exit_code] {
    Logging(*a);
    auto c = ConfigFor(*a, true);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    agent::Agent ag(std::move(*c), RealClock::Get());
    auto ttl = ag.RenewToken();
    if (!ttl.ok()) {
      *exit_code = FailStatus(ttl.status());
      return;
    }
    std::cout << "token renewed, ttl " << *ttl << "s\n";
  });

  auto cert_flags = [&](CLI::App* c) {
    AddClientFlags(c, &a->flags);
    common(c, false);
    c->add_option("--san", a->sans, "DNS SAN; repeat");
    c->add_option("--ip-san", a->ip_sans, "IP SAN; repeat");
    c->add_option("--key-type", a->key_type, "ec (default), rsa or ed25519");
    c->add_option("--key-bits", a->key_bits, "256/384/521 for ec, 2048+ for rsa");
    c->add_option("--ttl", a->ttl, "Requested TTL (default: the role's)");
    c->add_option("--owner", a->owner, "Owner of the files");
    c->add_option("--group", a->group, "Group of the files");
    c->add_option("--mode", a->mode, "Mode of the certificate files (0644); keys are 0600");
    c->add_flag("--rotate-key", a->rotate_key, "Make a new key even if the current one fits");
  };
  auto make_spec = [](const AgentArgs& a) -> absl::StatusOr<agent::CertSpec> {
    agent::CertSpec s;
    s.name = a.cn;
    s.role = a.role;
    if (s.role.find("/sign/") == std::string::npos)
      return absl::InvalidArgumentError(
          Cat("role path \"", a.role, "\" must be a sign path like pki/sign/ROLE"));
    s.common_name = a.cn;
    s.dns_sans = a.sans;
    s.ip_sans = a.ip_sans;
    s.key_type = a.key_type;
    s.key_bits = a.key_bits > 0 ? a.key_bits
                                : (a.key_type == "rsa"  ? 2048
                                   : a.key_type == "ec" ? 256
                                                        : 0);
    if (!a.ttl.empty()) {
      ASSIGN_OR_RETURN(s.ttl, ParseDurationSeconds(a.ttl));
    }
    s.owner = a.owner;
    s.group = a.group;
    if (!a.mode.empty()) {
      ASSIGN_OR_RETURN(s.mode, files::ParseMode(a.mode));
    }
    // vault-helper's layout: DEST.pem, DEST-key.pem, DEST-ca.pem.
    s.cert_file = a.dest + ".pem";
    s.key_file = a.dest + "-key.pem";
    s.ca_file = a.dest + "-ca.pem";
    return s;
  };

  auto* cert = ag->add_subcommand(
      "cert",
      "Get one certificate: ROLE_PATH CN DEST (writes DEST.pem, DEST-key.pem, DEST-ca.pem)");
  cert_flags(cert);
  cert->add_option("role", a->role, "Sign path, e.g. c1/pki/kubernetes/sign/admin")->required();
  cert->add_option("cn", a->cn, "Common name")->required();
  cert->add_option("dest", a->dest, "Destination path prefix")->required();
  cert->callback([a, exit_code, make_spec] {
    Logging(*a);
    auto c = ConfigFor(*a, false);
    auto s = make_spec(*a);
    if (!c.ok() || !s.ok()) {
      *exit_code = FailStatus(!c.ok() ? c.status() : s.status());
      return;
    }
    agent::Agent ag(std::move(*c), RealClock::Get());
    agent::CertState st = ag.Inspect(*s);
    if (st.reason.empty() && !a->rotate_key) {
      std::cout << "certificate " << s->cert_file << " is valid; next renewal at " << st.renew_at
                << "\n";
      return;
    }
    auto r = ag.Renew(*s, a->rotate_key);
    if (!r.ok()) {
      *exit_code = FailStatus(r.status());
      return;
    }
    std::cout << "wrote " << s->cert_file << " (serial " << r->serial << ", expires "
              << r->not_after << ")\n";
  });

  auto* kc = ag->add_subcommand(
      "kubeconfig",
      "Get a client certificate and write a kubeconfig: ROLE_PATH CN DEST KUBECONFIG");
  cert_flags(kc);
  kc->add_option("role", a->role, "Sign path")->required();
  kc->add_option("cn", a->cn, "Common name (the Kubernetes user)")->required();
  kc->add_option("dest", a->dest, "Certificate path prefix")->required();
  kc->add_option("kubeconfig", a->kubeconfig, "Kubeconfig file")->required();
  kc->add_option("--api-server", a->api_server, "API server URL")->required();
  kc->add_option("--cluster", a->cluster, "Cluster name in the kubeconfig (kubernetes)");
  kc->callback([a, exit_code, make_spec] {
    Logging(*a);
    auto c = ConfigFor(*a, false);
    auto s = make_spec(*a);
    if (!c.ok() || !s.ok()) {
      *exit_code = FailStatus(!c.ok() ? c.status() : s.status());
      return;
    }
    s->kubeconfig = {a->kubeconfig, a->api_server, a->cluster, a->cn};
    agent::Agent ag(std::move(*c), RealClock::Get());
    agent::CertState st = ag.Inspect(*s);
    if (!st.reason.empty() || a->rotate_key) {
      auto r = ag.Renew(*s, a->rotate_key);
      if (!r.ok()) {
        *exit_code = FailStatus(r.status());
        return;
      }
    }
    std::cout << "wrote " << a->kubeconfig << "\n";
  });

  auto* rd = ag->add_subcommand("read", "Write one field of a secret to a file: PATH");
  AddClientFlags(rd, &a->flags);
  common(rd, false);
  rd->add_option("path", a->path, "Secret path, e.g. c1/secrets/service-accounts")->required();
  rd->add_option("--field", a->field, "Field")->required();
  rd->add_option("--dest", a->dest, "Destination file")->required();
  rd->add_option("--owner", a->owner, "Owner");
  rd->add_option("--group", a->group, "Group");
  rd->add_option("--mode", a->mode, "Mode (0600)");
  rd->callback([a, exit_code] {
    Logging(*a);
    auto c = ConfigFor(*a, false);
    if (!c.ok()) {
      *exit_code = FailStatus(c.status());
      return;
    }
    agent::SecretSpec s{a->path, a->field, a->dest, a->owner, a->group, 0600};
    if (!a->mode.empty()) {
      auto m = files::ParseMode(a->mode);
      if (!m.ok()) {
        *exit_code = FailStatus(m.status());
        return;
      }
      s.mode = *m;
    }
    agent::Agent ag(std::move(*c), RealClock::Get());
    auto st = ag.FetchSecret(s);
    if (!st.ok()) *exit_code = FailStatus(st);
  });
}

}  // namespace coffer::cli
