// `coffer cluster setup|status|nodes|certs check-expiration|import-ca|init-token|agent-config|
// rotate-ca|rotation status|resume|abort|skip-node`.
#include <iostream>
#include <memory>

#include "cli/client_util.h"
#include "cluster/expiration.h"
#include "cluster/nodes.h"
#include "cluster/rotation.h"
#include "cluster/setup.h"
#include "util/duration.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/status.h"

namespace coffer::cli {
namespace {

struct ClusterArgs {
  ClientFlags flags;
  std::string cluster, node, ca, file, out;
  std::vector<std::string> nodes, apiserver_sans;
  std::string key_type, ca_ttl, leaf_ttl, service_ip, dns_domain, admin_group, token_period,
      init_token_ttl;
  std::string intermediate_of, csr_dir = ".", init_token_dir;
  bool csr = false, dry_run = false;
  int soonest = 10;
  std::string root = "/etc/kubernetes", kubelet_dir = "/var/lib/kubelet",
              state_dir = "/var/lib/coffer-agent", api_server = "https://127.0.0.1:6443";
};

// The stored spec of `cluster`, checked to hold `node`.
absl::StatusOr<cluster::ClusterSpec> LoadNode(const http::Api& api, const std::string& cluster,
                                              const std::string& node) {
  ASSIGN_OR_RETURN(auto spec, cluster::LoadSpec(api, cluster));
  if (!spec.Node(node))
    return absl::InvalidArgumentError(Cat("node \"", node, "\" is not part of cluster ", cluster));
  return spec;
}

absl::Status ApplyFlags(ClusterArgs* a, CLI::App* cmd, cluster::ClusterSpec* s) {
  auto set = [&](const char* flag) { return cmd->get_option(flag)->count() > 0; };
  s->name = a->cluster;
  if (set("--key-type")) RETURN_IF_ERROR(cluster::ParseKeyOption(a->key_type, s));
  auto dur = [&](const char* flag, const std::string& v, int64_t* out) -> absl::Status {
    if (!set(flag)) return absl::OkStatus();
    auto d = ParseDurationSeconds(v);
    if (!d.ok())
      return absl::InvalidArgumentError(Cat(flag, ": ", std::string(d.status().message())));
    *out = *d;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(dur("--ca-ttl", a->ca_ttl, &s->ca_ttl));
  RETURN_IF_ERROR(dur("--leaf-ttl", a->leaf_ttl, &s->leaf_ttl));
  RETURN_IF_ERROR(dur("--token-period", a->token_period, &s->token_period));
  RETURN_IF_ERROR(dur("--init-token-ttl", a->init_token_ttl, &s->init_token_ttl));
  if (set("--service-ip")) s->service_ip = a->service_ip;
  if (set("--dns-domain")) s->dns_domain = a->dns_domain;
  if (set("--admin-group")) s->admin_group = a->admin_group;
  if (set("--apiserver-san")) {
    s->apiserver_dns_sans.clear();
    s->apiserver_ip_sans.clear();
    for (const auto& san : a->apiserver_sans) {
      bool ip = !san.empty() && (std::isdigit(static_cast<unsigned char>(san[0])) ||
                                 san.find(':') != std::string::npos);
      (ip ? s->apiserver_ip_sans : s->apiserver_dns_sans).push_back(san);
    }
  }
  if (set("--node")) {
    s->nodes.clear();
    for (const auto& n : a->nodes) {
      ASSIGN_OR_RETURN(auto node, cluster::ParseNode(n));
      s->nodes.push_back(std::move(node));
    }
  }
  return s->Validate();
}

}  // namespace

void RegisterClusterCommands(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ClusterArgs>();
  auto* cl = app.add_subcommand("cluster", "Lay out and inspect a Kubernetes cluster's PKI");
  cl->require_subcommand(1);

  auto* setup = cl->add_subcommand(
      "setup",
      "Create or update, idempotently, a cluster's CAs, roles, policies, token roles, secrets "
      "and init tokens; prints the plan, then what changed");
  AddClientFlags(setup, &a->flags);
  setup->add_option("cluster", a->cluster, "Cluster name")->required();
  setup->add_option("--node", a->nodes,
                    "NAME:ROLE[+ROLE][:IP[,IP]] (roles: etcd, control-plane, worker); repeat. "
                    "Without it the stored node list is kept");
  setup->add_option("--key-type", a->key_type,
                    "ec-p256 (default), ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519");
  setup->add_option("--ca-ttl", a->ca_ttl, "CA validity (default 87600h)");
  setup->add_option("--leaf-ttl", a->leaf_ttl, "Leaf validity (default 8760h)");
  setup->add_option("--service-ip", a->service_ip, "The kubernetes service IP (10.96.0.1)");
  setup->add_option("--dns-domain", a->dns_domain, "Cluster DNS domain (cluster.local)");
  setup->add_option("--apiserver-san", a->apiserver_sans, "Extra API server name or IP; repeat");
  setup->add_option("--admin-group", a->admin_group,
                    "Organization of admin.conf: kubeadm:cluster-admins (default) or "
                    "system:masters");
  setup->add_option("--token-period", a->token_period, "Node token period (24h)");
  setup->add_option("--init-token-ttl", a->init_token_ttl, "Init token TTL (168h)");
  setup->add_option("--intermediate-of", a->intermediate_of,
                    "Make the CAs intermediates signed by this PKI mount's default issuer");
  setup->add_flag("--csr", a->csr, "Make CSRs for an external root instead (see import-ca)");
  setup->add_option("--csr-dir", a->csr_dir, "Where --csr writes <ca>.csr");
  setup->add_option("--init-token-dir", a->init_token_dir,
                    "Write each node's one-use init token to DIR/<node>.token (0600)");
  setup->add_flag("--dry-run", a->dry_run, "Print the plan only");
  setup->callback([a, setup, exit_code] {
    http::Api api(Resolve(a->flags));
    cluster::SetupOptions o;
    auto stored = cluster::LoadSpec(api, a->cluster);
    if (stored.ok()) {
      o.spec = *stored;
    } else if (!absl::IsNotFound(stored.status())) {
      *exit_code = FailStatus(stored.status());
      return;
    }
    if (auto st = ApplyFlags(a.get(), setup, &o.spec); !st.ok()) {
      *exit_code = FailStatus(st);
      return;
    }
    o.intermediate_of = a->intermediate_of;
    o.csr = a->csr;
    o.csr_dir = a->csr_dir;
    o.init_token_dir = a->init_token_dir;
    o.dry_run = a->dry_run;
    o.progress = &std::cerr;
    o.progress_tty = StderrIsTerminal();
    auto r = cluster::Setup(api, o, std::cout);
    if (!r.ok()) *exit_code = FailStatus(r.status());
  });

  auto* nodes = cl->add_subcommand(
      "nodes",
      "List the cluster's nodes as their agents report them: last seen, agent version, "
      "certificates' expiry, CA fingerprints");
  AddClientFlags(nodes, &a->flags);
  nodes->add_option("cluster", a->cluster, "Cluster name")->required();
  nodes->callback([a, exit_code] {
    http::Api api(Resolve(a->flags));
    auto st = cluster::Nodes(api, a->cluster, std::time(nullptr), std::cout);
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  // CA rotation (cluster/rotation.h, docs/rotation.md).
  auto ro = std::make_shared<cluster::RotateOptions>();
  auto timeout = std::make_shared<std::string>("1h");
  auto no_wait = std::make_shared<bool>(false);
  auto rotate_options = [a, ro, timeout](CLI::App* c) -> absl::Status {
    ro->cluster = a->cluster;
    auto t = ParseDurationSeconds(*timeout);
    if (!t.ok() || *t < 1)
      return absl::InvalidArgumentError("--timeout: a duration such as \"30m\" or \"2h\"");
    ro->timeout_s = *t;
    ro->progress = &std::cerr;
    ro->progress_tty = StderrIsTerminal();
    return absl::OkStatus();
  };
  auto* rotate = cl->add_subcommand(
      "rotate-ca",
      "Rotate one of a cluster's CAs on every node: trust (old+new), reissue, finalize; each "
      "phase acknowledged by every node's agent (docs/rotation.md)");
  AddClientFlags(rotate, &a->flags);
  rotate->add_option("cluster", a->cluster, "Cluster name")->required();
  rotate->add_option("--ca", ro->ca, "etcd, kubernetes or front-proxy")->required();
  rotate->add_option("--key-type", ro->key_type,
                     "The new CA's key: ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519 "
                     "(default: the cluster's)");
  rotate->add_flag("--from-csr", ro->from_csr,
                   "Make the new CA an intermediate of your own root: write its CSR (--csr-out) "
                   "and stop; start the rotation with --signed");
  rotate->add_flag("--cross-sign", ro->cross_sign,
                   "Also certify the new CA with the old one; agents send that certificate after "
                   "each new leaf, so clients trusting only the old CA accept it");
  rotate->add_option("--csr-out", ro->csr_out, "Where --from-csr writes the CSR (<ca>.csr)");
  rotate->add_option("--signed", ro->signed_file,
                     "The certificate your root signed for the --from-csr CSR, then its chain");
  rotate->add_option("--max-unavailable", ro->max_unavailable,
                     "How many nodes act (and run their hooks) at once (1)");
  rotate->add_option("--finalize-hook", ro->finalize_hooks,
                     "A shell command run once, here, when every node is on the new CA; repeat");
  rotate->add_option("--timeout", *timeout,
                     "How long to drive the rotation before leaving it stored (1h)");
  rotate->add_flag("--no-wait", *no_wait, "Start the rotation and return (drive it with resume)");
  rotate->callback([a, ro, no_wait, rotate_options, rotate, exit_code] {
    http::Api api(Resolve(a->flags));
    ro->wait = !*no_wait;
    if (ro->csr_out.empty()) ro->csr_out = ro->ca + ".csr";
    auto st = rotate_options(rotate);
    if (st.ok() && ro->from_csr && !ro->signed_file.empty())
      st = absl::InvalidArgumentError("--from-csr and --signed are two steps: give one of them");
    if (st.ok()) st = cluster::RotateCa(api, *ro, std::cout);
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  auto* rotation = cl->add_subcommand("rotation", "Follow and steer a cluster's CA rotation");
  rotation->require_subcommand(1);
  auto* rs = rotation->add_subcommand(
      "status", "The rotation's phase and every node's state (done, pending since, failed)");
  AddClientFlags(rs, &a->flags);
  rs->add_option("cluster", a->cluster, "Cluster name")->required();
  auto status_wait = std::make_shared<bool>(false);
  rs->add_flag("--wait", *status_wait,
               "Follow the rotation (a progress bar per phase) until it is done, aborted or "
               "paused, or --timeout passes; another command drives it");
  rs->add_option("--timeout", *timeout, "With --wait: how long to follow it (1h)");
  rs->callback([a, ro, rotate_options, rs, status_wait, exit_code] {
    http::Api api(Resolve(a->flags));
    auto st = cluster::RotationStatus(api, a->cluster, std::time(nullptr), std::cout);
    if (st.ok() && *status_wait) {
      st = rotate_options(rs);
      if (st.ok()) st = cluster::WaitRotation(api, *ro, std::cout);
    }
    if (!st.ok()) *exit_code = FailStatus(st);
  });
  auto add_driver =
      [&](const char* name, const char* help,
          absl::Status (*fn)(const http::Api&, const cluster::RotateOptions&, std::ostream&)) {
        auto* c = rotation->add_subcommand(name, help);
        AddClientFlags(c, &a->flags);
        c->add_option("cluster", a->cluster, "Cluster name")->required();
        c->add_option("--timeout", *timeout, "How long to drive the rotation (1h)");
        c->callback([a, ro, rotate_options, c, fn, exit_code] {
          http::Api api(Resolve(a->flags));
          auto st = rotate_options(c);
          if (st.ok()) st = fn(api, *ro, std::cout);
          if (!st.ok()) *exit_code = FailStatus(st);
        });
      };
  add_driver("resume",
             "Continue a stored rotation (after a fix, a timeout or a server restart): failed "
             "nodes try again",
             &cluster::Resume);
  add_driver("abort", "Take every node back to the old CA (any phase before done)",
             &cluster::Abort);
  auto* skip = rotation->add_subcommand("skip-node",
                                        "Leave a node that is gone for good out of the rotation");
  AddClientFlags(skip, &a->flags);
  skip->add_option("cluster", a->cluster, "Cluster name")->required();
  skip->add_option("node", a->node, "Node name")->required();
  skip->callback([a, exit_code] {
    http::Api api(Resolve(a->flags));
    auto st = cluster::SkipNode(api, a->cluster, a->node, std::cout);
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  auto* status = cl->add_subcommand(
      "status",
      "Show a cluster's CAs, roles, nodes holding tokens and certificates expiring soonest");
  AddClientFlags(status, &a->flags);
  status->add_option("cluster", a->cluster, "Cluster name")->required();
  status->add_option("--soonest", a->soonest, "How many certificates to list (10)");
  status->callback([a, exit_code] {
    http::Api api(Resolve(a->flags));
    auto st = cluster::Status(api, a->cluster, a->soonest, std::time(nullptr), std::cout,
                              &std::cerr, StderrIsTerminal());
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  auto* certs = cl->add_subcommand("certs", "kubeadm's certificate commands");
  certs->require_subcommand(1);
  auto* ce = certs->add_subcommand(
      "check-expiration",
      "kubeadm's expiry table for a cluster's certificates: the server's view, or a node's files "
      "with --local");
  AddClientFlags(ce, &a->flags);
  auto local = std::make_shared<std::string>();
  ce->add_option("cluster", a->cluster, "Cluster name (not needed with --local)");
  ce->add_option("--node", a->node, "Only this node");
  ce->add_option("--local", *local,
                 "Read a node's Kubernetes folder (like /etc/kubernetes) instead of the server");
  ce->add_option("--kubelet-dir", a->kubelet_dir,
                 "With --local: the kubelet's folder (/var/lib/kubelet)");
  ce->callback([a, local, exit_code] {
    absl::Status st;
    if (!local->empty()) {
      st = cluster::CheckExpirationLocal(*local, a->kubelet_dir, std::time(nullptr), std::cout);
    } else if (a->cluster.empty()) {
      st = absl::InvalidArgumentError("give the cluster's name, or --local DIR for a node's files");
    } else {
      http::Api api(Resolve(a->flags));
      st = cluster::CheckExpirationServer(api, a->cluster, a->node, std::time(nullptr), std::cout);
    }
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  auto* imp = cl->add_subcommand(
      "import-ca", "Install a CA certificate signed by an external root (after setup --csr)");
  AddClientFlags(imp, &a->flags);
  imp->add_option("cluster", a->cluster, "Cluster name")->required();
  imp->add_option("ca", a->ca, "etcd, kubernetes or front-proxy")->required();
  imp->add_option("file", a->file, "PEM certificate (chain allowed)")->required();
  imp->callback([a, exit_code] {
    auto pem = files::ReadIfExists(a->file);
    if (!pem.ok() || !*pem) {
      std::cerr << "Error: cannot read " << a->file << "\n";
      *exit_code = kExitLocal;
      return;
    }
    http::Api api(Resolve(a->flags));
    auto st = cluster::ImportCa(api, a->cluster, a->ca, **pem, std::cout);
    if (!st.ok()) *exit_code = FailStatus(st);
  });

  auto* it = cl->add_subcommand("init-token", "Make a new one-use init token for a node");
  AddClientFlags(it, &a->flags);
  it->add_option("cluster", a->cluster, "Cluster name")->required();
  it->add_option("node", a->node, "Node name")->required();
  it->add_option("--out", a->out, "Write it to this file (0600) instead of printing it");
  it->callback([a, exit_code] {
    http::Api api(Resolve(a->flags));
    auto spec = LoadNode(api, a->cluster, a->node);
    if (!spec.ok()) {
      *exit_code = FailStatus(spec.status());
      return;
    }
    const cluster::NodeSpec* n = spec->Node(a->node);
    auto t = cluster::NewInitToken(api, *spec, *n);
    if (!t.ok()) {
      *exit_code = FailStatus(t.status());
      return;
    }
    if (a->out.empty()) {
      std::cout << *t << "\n";
    } else if (auto st = files::WriteAtomic(a->out, *t + "\n", 0600); !st.ok()) {
      *exit_code = FailStatus(st);
    }
  });

  auto* ac =
      cl->add_subcommand("agent-config",
                         "Print the agent configuration (JSON) for a node: every certificate of "
                         "its roles in kubeadm's file layout");
  AddClientFlags(ac, &a->flags);
  ac->add_option("cluster", a->cluster, "Cluster name")->required();
  ac->add_option("node", a->node, "Node name")->required();
  ac->add_option("--root", a->root, "Kubernetes folder (/etc/kubernetes)");
  ac->add_option("--kubelet-dir", a->kubelet_dir,
                 "The kubelet's folder: its serving certificate goes to DIR/pki/kubelet.crt "
                 "(/var/lib/kubelet, as kubeadm)");
  ac->add_option("--state-dir", a->state_dir, "Agent token folder (/var/lib/coffer-agent)");
  ac->add_option("--api-server", a->api_server, "API server URL for kubeconfigs");
  ac->add_option("--out", a->out, "Write to this file instead of stdout");
  ac->callback([a, exit_code] {
    auto o = Resolve(a->flags);
    http::Api api(o);
    auto spec = LoadNode(api, a->cluster, a->node);
    if (!spec.ok()) {
      *exit_code = FailStatus(spec.status());
      return;
    }
    const cluster::NodeSpec* n = spec->Node(a->node);
    cluster::AgentLayout l;
    l.server_address = o.address;
    l.server_ca_file = o.ca_cert;
    l.root = a->root;
    l.kubelet_dir = a->kubelet_dir;
    l.state_dir = a->state_dir;
    l.api_server = a->api_server;
    std::string text = boost::json::serialize(cluster::AgentConfig(*spec, *n, l)) + "\n";
    if (a->out.empty()) {
      std::cout << text;
    } else if (auto st = files::WriteAtomic(a->out, text, 0644); !st.ok()) {
      *exit_code = FailStatus(st);
    }
  });
}

}  // namespace coffer::cli
