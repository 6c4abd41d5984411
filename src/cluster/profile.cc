#include "cluster/profile.h"

#include <algorithm>

#include "util/json.h"
#include "util/status.h"

namespace coffer::cluster {
namespace json = boost::json;
namespace {

json::array Arr(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::vector<std::string> SplitOn(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return n.front() != '-' && n.back() != '-' && n.front() != '.' && n.back() != '.';
}

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  if (!s.empty() && std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

std::string PathRule(std::string_view path, std::string_view caps) {
  return Cat("path \"", path, "\" {\n  capabilities = [", caps, "]\n}\n");
}

}  // namespace

bool NodeSpec::Has(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

absl::StatusOr<NodeSpec> ParseNode(std::string_view text) {
  // NAME:ROLES[:IPS]; the IP list may hold IPv6 addresses, so only the first two colons split.
  const size_t a = text.find(':');
  const size_t b = a == std::string_view::npos ? a : text.find(':', a + 1);
  NodeSpec n;
  if (a == std::string_view::npos || a == 0 || a + 1 == text.size() || b == a + 1)
    return absl::InvalidArgumentError(
        Cat("node \"", text, "\" must read NAME:ROLE[+ROLE][:IP[,IP]], e.g. etcd-1:etcd:10.0.0.5"));
  n.name = std::string(text.substr(0, a));
  n.roles = SplitOn(text.substr(a + 1, b == std::string_view::npos ? b : b - a - 1), '+');
  if (b != std::string_view::npos) n.ips = SplitOn(text.substr(b + 1), ',');
  return n;
}

json::object ClusterSpec::ToJson() const {
  json::array ns;
  for (const auto& n : nodes)
    ns.push_back(json::object{{"name", n.name}, {"roles", Arr(n.roles)}, {"ips", Arr(n.ips)}});
  return json::object{{"name", name},
                      {"key_type", key_type},
                      {"key_bits", key_bits},
                      {"ca_ttl", ca_ttl},
                      {"leaf_ttl", leaf_ttl},
                      {"service_ip", service_ip},
                      {"dns_domain", dns_domain},
                      {"apiserver_dns_sans", Arr(apiserver_dns_sans)},
                      {"apiserver_ip_sans", Arr(apiserver_ip_sans)},
                      {"admin_group", admin_group},
                      {"token_period", token_period},
                      {"init_token_ttl", init_token_ttl},
                      {"nodes", ns}};
}

absl::StatusOr<ClusterSpec> ClusterSpec::FromJson(const json::object& o) {
  ClusterSpec s;
  auto str = [&](std::string_view k, std::string* out) {
    if (auto* v = o.if_contains(k); v && v->is_string()) *out = std::string(v->as_string());
  };
  auto num = [&](std::string_view k, auto* out) {
    if (auto* v = o.if_contains(k);
        v && v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= (int64_t{1} << 40))
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(v->as_int64());
  };
  str("name", &s.name);
  str("key_type", &s.key_type);
  num("key_bits", &s.key_bits);
  num("ca_ttl", &s.ca_ttl);
  num("leaf_ttl", &s.leaf_ttl);
  str("service_ip", &s.service_ip);
  str("dns_domain", &s.dns_domain);
  s.apiserver_dns_sans = JsonStringsOr(o, "apiserver_dns_sans");
  s.apiserver_ip_sans = JsonStringsOr(o, "apiserver_ip_sans");
  str("admin_group", &s.admin_group);
  num("token_period", &s.token_period);
  num("init_token_ttl", &s.init_token_ttl);
  if (auto* v = o.if_contains("nodes"); v && v->is_array())
    for (const auto& e : v->as_array()) {
      if (!e.is_object()) continue;
      NodeSpec n;
      if (auto* nm = e.as_object().if_contains("name"); nm && nm->is_string())
        n.name = std::string(nm->as_string());
      n.roles = JsonStringsOr(e.as_object(), "roles");
      n.ips = JsonStringsOr(e.as_object(), "ips");
      s.nodes.push_back(std::move(n));
    }
  RETURN_IF_ERROR(s.Validate());
  return s;
}

absl::Status ClusterSpec::Validate() const {
  if (!ValidName(name))
    return absl::InvalidArgumentError(
        Cat("cluster name \"", name, "\" must be 1-63 lowercase letters, digits, '-' or '.'"));
  if (leaf_ttl <= 0 || ca_ttl <= 0 || leaf_ttl >= ca_ttl)
    return absl::InvalidArgumentError("the leaf TTL must be positive and shorter than the CA TTL");
  if (admin_group != "kubeadm:cluster-admins" && admin_group != "system:masters")
    return absl::InvalidArgumentError(
        "admin group must be kubeadm:cluster-admins or system:masters");
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    if (!ValidName(n.name))
      return absl::InvalidArgumentError(Cat(
          "node name \"", n.name, "\" must be a lowercase DNS label (letters, digits, '-', '.')"));
    if (n.roles.empty()) return absl::InvalidArgumentError(Cat("node ", n.name, " has no role"));
    for (const auto& r : n.roles)
      if (std::find(std::begin(kNodeRoles), std::end(kNodeRoles), r) == std::end(kNodeRoles))
        return absl::InvalidArgumentError(
            Cat("node ", n.name, ": unknown role \"", r, "\" (use etcd, control-plane or worker)"));
    for (size_t j = 0; j < i; ++j)
      if (nodes[j].name == n.name)
        return absl::InvalidArgumentError(Cat("node ", n.name, " is listed twice"));
  }
  return absl::OkStatus();
}

const NodeSpec* ClusterSpec::Node(std::string_view n) const {
  for (const auto& x : nodes)
    if (x.name == n) return &x;
  return nullptr;
}

absl::Status ParseKeyOption(std::string_view t, ClusterSpec* s) {
  if (t == "ec-p256") {
    s->key_type = "ec", s->key_bits = 256;
  } else if (t == "ec-p384") {
    s->key_type = "ec", s->key_bits = 384;
  } else if (t == "rsa-2048" || t == "rsa-3072" || t == "rsa-4096") {
    s->key_type = "rsa", s->key_bits = std::stoi(std::string(t.substr(4)));
  } else if (t == "ed25519") {
    // Kubernetes' Go TLS stack accepts Ed25519 certificates, but kubeadm does not make them and
    // some clients (older kubectl plugins, Java) refuse them; allowed, not the default.
    s->key_type = "ed25519", s->key_bits = 0;
  } else {
    return absl::InvalidArgumentError(Cat("key type \"", t,
                                          "\": use ec-p256 (default), ec-p384, rsa-2048, "
                                          "rsa-3072, rsa-4096 or ed25519"));
  }
  return absl::OkStatus();
}

std::string_view CaName(Ca ca) {
  switch (ca) {
    case Ca::kEtcd:
      return "etcd";
    case Ca::kKubernetes:
      return "kubernetes";
    case Ca::kFrontProxy:
      return "front-proxy";
  }
  return "";
}

std::string_view CaCommonName(Ca ca) {
  switch (ca) {
    case Ca::kEtcd:
      return "etcd-ca";
    case Ca::kKubernetes:
      return "kubernetes";
    case Ca::kFrontProxy:
      return "front-proxy-ca";
  }
  return "";
}

std::string MountPath(const ClusterSpec& s, Ca ca) { return Cat(s.name, "/pki/", CaName(ca)); }
std::string SecretsMount(const ClusterSpec& s) { return Cat(s.name, "/secrets"); }
std::string NodesMount(const ClusterSpec& s) { return Cat(s.name, "/nodes"); }

std::vector<CertKind> Kinds(const ClusterSpec& s) {
  const std::vector<std::string> cp{"control-plane"};
  const std::vector<std::string> cpw{"control-plane", "worker"};
  const std::vector<std::string> etcd{"etcd"};
  // kubeadm v1.29+: admin.conf and apiserver-kubelet-client carry kubeadm:cluster-admins
  // (bound to cluster-admin by kubeadm), the etcd clients no organization.
  return {
      {"apiserver", Ca::kKubernetes, true, cp, "kube-apiserver", {}, true, false, "apiserver", ""},
      {"apiserver-kubelet-client",
       Ca::kKubernetes,
       false,
       cp,
       "kube-apiserver-kubelet-client",
       {s.admin_group},
       false,
       true,
       "apiserver-kubelet-client",
       ""},
      {"apiserver-etcd-client",
       Ca::kEtcd,
       false,
       cp,
       "kube-apiserver-etcd-client",
       {},
       false,
       true,
       "apiserver-etcd-client",
       ""},
      {"front-proxy-client",
       Ca::kFrontProxy,
       false,
       cp,
       "front-proxy-client",
       {},
       false,
       true,
       "front-proxy-client",
       ""},
      {"etcd-server", Ca::kEtcd, true, etcd, "{node}", {}, true, true, "etcd/server", ""},
      {"etcd-peer", Ca::kEtcd, true, etcd, "{node}", {}, true, true, "etcd/peer", ""},
      {"etcd-healthcheck-client",
       Ca::kEtcd,
       false,
       {"etcd", "control-plane"},
       "kube-etcd-healthcheck-client",
       {},
       false,
       true,
       "etcd/healthcheck-client",
       ""},
      {"admin",
       Ca::kKubernetes,
       false,
       cp,
       "kubernetes-admin",
       {s.admin_group},
       false,
       true,
       "admin",
       "admin.conf"},
      {"kubelet",
       Ca::kKubernetes,
       true,
       cpw,
       "system:node:{node}",
       {"system:nodes"},
       true,
       true,
       "kubelet",
       "kubelet.conf"},
      {"kube-controller-manager",
       Ca::kKubernetes,
       false,
       cp,
       "system:kube-controller-manager",
       {},
       false,
       true,
       "controller-manager",
       "controller-manager.conf"},
      {"kube-scheduler",
       Ca::kKubernetes,
       false,
       cp,
       "system:kube-scheduler",
       {},
       false,
       true,
       "scheduler",
       "scheduler.conf"},
      {"kube-proxy",
       Ca::kKubernetes,
       false,
       cpw,
       "system:kube-proxy",
       {},
       false,
       true,
       "kube-proxy",
       "kube-proxy.conf"},
  };
}

std::optional<CertKind> FindKind(const ClusterSpec& s, std::string_view id) {
  for (auto& k : Kinds(s))
    if (k.id == id) return k;
  return std::nullopt;
}

std::string RoleName(const CertKind& k, const NodeSpec* node) {
  return k.per_node && node ? Cat(k.id, "-", node->name) : k.id;
}

Names CertNames(const ClusterSpec& s, const CertKind& k, const NodeSpec* node) {
  Names n;
  const std::string node_name = node ? node->name : "";
  n.common_name = Replace(k.cn, "{node}", node_name);
  if (k.id == "apiserver") {
    // kubeadm: the node name, kubernetes, kubernetes.default, kubernetes.default.svc,
    // kubernetes.default.svc.<dnsDomain>, the service IP, the advertise address, extra SANs.
    AddUnique(&n.dns, node_name);
    for (const char* d : {"kubernetes", "kubernetes.default", "kubernetes.default.svc"})
      AddUnique(&n.dns, d);
    AddUnique(&n.dns, Cat("kubernetes.default.svc.", s.dns_domain));
    for (const auto& d : s.apiserver_dns_sans) AddUnique(&n.dns, d);
    AddUnique(&n.ips, s.service_ip);
    if (node)
      for (const auto& ip : node->ips) AddUnique(&n.ips, ip);
    for (const auto& ip : s.apiserver_ip_sans) AddUnique(&n.ips, ip);
  } else if (k.id == "etcd-server" || k.id == "etcd-peer") {
    // kubeadm: the node name and localhost; the advertise address, 127.0.0.1 and ::1.
    AddUnique(&n.dns, node_name);
    AddUnique(&n.dns, "localhost");
    if (node)
      for (const auto& ip : node->ips) AddUnique(&n.ips, ip);
    AddUnique(&n.ips, "127.0.0.1");
    AddUnique(&n.ips, "::1");
  } else if (k.id == "kubelet") {
    // One certificate for kubelet.conf (client) and the kubelet's serving endpoint (server):
    // the node name and its IPs as SANs.
    AddUnique(&n.dns, node_name);
    if (node)
      for (const auto& ip : node->ips) AddUnique(&n.ips, ip);
  }
  return n;
}

json::object RoleBody(const ClusterSpec& s, const CertKind& k, const NodeSpec* node) {
  Names names = CertNames(s, k, node);
  std::vector<std::string> domains{names.common_name};
  for (const auto& d : names.dns) AddUnique(&domains, d);
  std::vector<std::string> cidrs;
  for (const auto& ip : names.ips)
    cidrs.push_back(ip.find(':') != std::string::npos ? ip + "/128" : ip + "/32");
  const bool hostname_cn = names.common_name.find(':') == std::string::npos;
  json::array ku{"DigitalSignature"};
  if (s.key_type == "rsa") ku.emplace_back("KeyEncipherment");
  return json::object{
      {"allowed_domains", Arr(domains)},
      {"allow_bare_domains", true},
      {"allow_subdomains", false},
      {"allow_glob_domains", false},
      {"allow_wildcard_certificates", false},
      {"allow_any_name", false},
      {"allow_localhost", std::find(domains.begin(), domains.end(), "localhost") != domains.end()},
      // Identities like system:node:N are not host names.
      {"enforce_hostnames", hostname_cn},
      {"allow_ip_sans", !cidrs.empty()},
      {"allowed_ip_sans_cidr", Arr(cidrs)},
      {"allowed_uri_sans", json::array{}},
      {"allowed_other_sans", json::array{}},
      {"require_cn", true},
      {"use_csr_common_name", false},
      {"use_csr_sans", false},
      {"server_flag", k.server},
      {"client_flag", k.client},
      {"code_signing_flag", false},
      {"email_protection_flag", false},
      {"key_usage", ku},
      {"ext_key_usage", json::array{}},
      {"organization", Arr(k.organization)},
      {"ou", json::array{}},
      {"key_type", s.key_type},
      {"key_bits", s.key_bits},
      {"ttl", s.leaf_ttl},
      {"max_ttl", s.leaf_ttl},
      {"no_store", false},
  };
}

std::string NodeTokenRole(const ClusterSpec& s, const NodeSpec& n) {
  return Cat(s.name, "-node-", n.name);
}

std::string NodeRolePolicy(const ClusterSpec& s, std::string_view node_role) {
  std::string out =
      Cat("# Coffer cluster ", s.name, ": shared certificates of ", node_role, " nodes\n");
  for (const auto& k : Kinds(s)) {
    if (k.per_node ||
        std::find(k.node_roles.begin(), k.node_roles.end(), node_role) == k.node_roles.end())
      continue;
    out += PathRule(Cat(MountPath(s, k.ca), "/sign/", k.id), "\"update\"");
    // During a CA rotation the agent names the issuer (cluster/rotation.h).
    out += PathRule(Cat(MountPath(s, k.ca), "/issuer/+/sign/", k.id), "\"update\"");
  }
  if (node_role == "control-plane") {
    out += PathRule(Cat(SecretsMount(s), "/service-accounts"), "\"read\"");
    out += PathRule(Cat(SecretsMount(s), "/encryption-config"), "\"read\"");
  }
  return out;
}

std::string NodePolicy(const ClusterSpec& s, const NodeSpec& n) {
  std::string out =
      Cat("# Coffer cluster ", s.name, ": certificates only node ", n.name, " may get\n");
  for (const auto& k : Kinds(s)) {
    if (!k.per_node) continue;
    bool wanted = false;
    for (const auto& r : k.node_roles) wanted = wanted || n.Has(r);
    if (!wanted) continue;
    out += PathRule(Cat(MountPath(s, k.ca), "/sign/", RoleName(k, &n)), "\"update\"");
    out += PathRule(Cat(MountPath(s, k.ca), "/issuer/+/sign/", RoleName(k, &n)), "\"update\"");
  }
  // Its own entry in the node registry, and no other node's; the CA rotation's document (public
  // certificates and the phase), read only.
  out += PathRule(Cat(NodesMount(s), "/data/", n.name), "\"create\", \"update\", \"read\"");
  out += PathRule(Cat(NodesMount(s), "/data/_rotation"), "\"read\"");
  out += PathRule(Cat(NodesMount(s), "/data/_turn/", n.name), "\"read\"");
  return out;
}

std::string InitPolicy(const ClusterSpec& s, const NodeSpec& n) {
  return Cat("# Coffer cluster ", s.name, ": node ", n.name,
             "'s init token may only create that node's token\n",
             PathRule(Cat("auth/token/create/", NodeTokenRole(s, n)), "\"create\", \"update\""));
}

std::vector<std::string> NodePolicies(const ClusterSpec& s, const NodeSpec& n) {
  std::vector<std::string> p;
  for (const char* r : kNodeRoles)
    if (n.Has(r)) p.push_back(Cat(s.name, "-", r));
  p.push_back(Cat(s.name, "-node-", n.name));
  return p;
}

json::object TokenRoleBody(const ClusterSpec& s, const NodeSpec& n) {
  return json::object{{"allowed_policies", Arr(NodePolicies(s, n))},
                      {"orphan", true},
                      {"renewable", true},
                      {"period", s.token_period}};
}

json::object AgentConfig(const ClusterSpec& s, const NodeSpec& n, const AgentLayout& l) {
  json::array certs;
  const std::string pki = l.root + "/pki";
  for (const auto& k : Kinds(s)) {
    bool wanted = false;
    for (const auto& r : k.node_roles) wanted = wanted || n.Has(r);
    if (!wanted) continue;
    Names names = CertNames(s, k, &n);
    json::object c{
        {"name", k.id},
        {"role", Cat(MountPath(s, k.ca), "/sign/", RoleName(k, k.per_node ? &n : nullptr))},
        {"common_name", names.common_name},
        {"dns_sans", Arr(names.dns)},
        {"ip_sans", Arr(names.ips)},
        {"key_type", s.key_type},
        {"key_bits", s.key_bits}};
    std::string ca_file = k.ca == Ca::kEtcd         ? pki + "/etcd/ca.crt"
                          : k.ca == Ca::kFrontProxy ? pki + "/front-proxy-ca.crt"
                                                    : pki + "/ca.crt";
    if (k.kubeconfig.empty() || k.id == "kubelet") {
      const std::string dir = k.id == "kubelet" ? l.kubelet_dir + "/pki" : pki;
      c["cert_file"] = Cat(dir, "/", k.file, ".crt");
      c["key_file"] = Cat(dir, "/", k.file, ".key");
      c["ca_file"] = ca_file;
    }
    if (!k.kubeconfig.empty()) {
      c["kubeconfig"] = json::object{{"path", Cat(l.root, "/", k.kubeconfig)},
                                     {"server", l.api_server},
                                     {"cluster", s.name},
                                     {"user", names.common_name}};
    }
    certs.push_back(std::move(c));
  }
  json::array secrets;
  if (n.Has("control-plane")) {
    secrets.push_back(json::object{{"path", Cat(SecretsMount(s), "/service-accounts")},
                                   {"field", "key"},
                                   {"dest", pki + "/sa.key"},
                                   {"mode", "0600"}});
    secrets.push_back(json::object{{"path", Cat(SecretsMount(s), "/service-accounts")},
                                   {"field", "pub"},
                                   {"dest", pki + "/sa.pub"},
                                   {"mode", "0644"}});
    secrets.push_back(json::object{{"path", Cat(SecretsMount(s), "/encryption-config")},
                                   {"field", "config"},
                                   {"dest", l.root + "/encryption-config.yaml"},
                                   {"mode", "0600"}});
  }
  return json::object{
      {"server", json::object{{"address", l.server_address}, {"ca_cert", l.server_ca_file}}},
      {"node_name", n.name},
      {"token_role", NodeTokenRole(s, n)},
      {"node_registry", NodesMount(s)},
      {"token_path", l.state_dir + "/token"},
      {"init_token_path", l.state_dir + "/init-token"},
      {"certificates", certs},
      {"secrets", secrets}};
}

}  // namespace coffer::cluster
