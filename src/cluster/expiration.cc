#include "cluster/expiration.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "cluster/profile.h"
#include "cluster/setup.h"
#include "crypto/cert_fields.h"
#include "crypto/pem.h"
#include "util/encoding.h"
#include "util/human_time.h"
#include "util/status.h"

namespace coffer::cluster {
namespace json = boost::json;
namespace {

std::string_view CaColumn(Ca ca) {
  switch (ca) {
    case Ca::kEtcd:
      return "etcd-ca";
    case Ca::kFrontProxy:
      return "front-proxy-ca";
    case Ca::kKubernetes:
      break;
  }
  return "ca";
}

std::string KindName(const CertKind& k) { return k.kubeconfig.empty() ? k.id : k.kubeconfig; }

struct Row {
  std::string name, ca;
  std::optional<int64_t> not_after;  // nullopt: not issued / not found
  bool external = false;
};

void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    out << line << "\n";
  }
}

void PrintCerts(const std::vector<Row>& rows, int64_t now, std::ostream& out) {
  std::vector<std::vector<std::string>> t{
      {"CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"}};
  for (const auto& r : rows)
    t.push_back({r.name, r.not_after ? KubeadmDate(*r.not_after) : "not issued",
                 r.not_after ? KubeadmResidual(*r.not_after, now) : "", r.ca,
                 r.external ? "yes" : "no"});
  PrintTable(t, out);
}

void PrintCas(const std::vector<Row>& rows, int64_t now, std::ostream& out) {
  std::vector<std::vector<std::string>> t{
      {"CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"}};
  for (const auto& r : rows)
    t.push_back({r.name, r.not_after ? KubeadmDate(*r.not_after) : "missing",
                 r.not_after ? KubeadmResidual(*r.not_after, now) : "", r.external ? "yes" : "no"});
  PrintTable(t, out);
}

// The latest expiry per common name among the live certificates stored in `mount` (paged).
absl::StatusOr<std::map<std::string, int64_t>> LatestByName(const http::Api& api,
                                                            const std::string& mount) {
  std::map<std::string, int64_t> out;
  RETURN_IF_ERROR(ForEachStoredCert(api, mount, [&out](const StoredCert& c) {
    if (c.expiration == 0 || c.common_name.empty()) return;
    auto [it, fresh] = out.emplace(c.common_name, c.expiration);
    if (!fresh) it->second = std::max(it->second, c.expiration);
  }));
  return out;
}

std::optional<int64_t> FileNotAfter(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  if (path.size() > 5 && path.compare(path.size() - 5, 5, ".conf") == 0) {
    // A kubeconfig: the first user's client-certificate-data (base64 PEM).
    const std::string key = "client-certificate-data:";
    size_t at = text.find(key);
    if (at == std::string::npos) return std::nullopt;
    size_t start = text.find_first_not_of(" \t", at + key.size());
    size_t end = text.find_first_of("\r\n", start);
    auto pem = Base64Decode(text.substr(start, end - start));
    if (!pem) return std::nullopt;
    text = std::move(*pem);
  }
  auto cert = crypto::ParseCertPem(text);
  if (!cert.ok()) {
    // A bundle: the first certificate in it.
    size_t end = text.find("-----END CERTIFICATE-----");
    if (end == std::string::npos) return std::nullopt;
    cert = crypto::ParseCertPem(text.substr(0, end + 25));
    if (!cert.ok()) return std::nullopt;
  }
  return crypto::NotAfterUnix(cert->get());
}

}  // namespace

absl::Status CheckExpirationServer(const http::Api& api, const std::string& cluster,
                                   const std::string& node, int64_t now, std::ostream& out) {
  ASSIGN_OR_RETURN(ClusterSpec s, LoadSpec(api, cluster));
  if (!node.empty() && !s.Node(node))
    return absl::InvalidArgumentError(Cat("node \"", node, "\" is not part of cluster ", cluster));
  std::map<Ca, std::map<std::string, int64_t>> latest;
  std::vector<Row> cas;
  for (Ca ca : {Ca::kKubernetes, Ca::kEtcd, Ca::kFrontProxy}) {
    ASSIGN_OR_RETURN(latest[ca], LatestByName(api, MountPath(s, ca)));
    Row r{std::string(CaColumn(ca)), "", std::nullopt, false};
    auto pem = api.Read(Cat(MountPath(s, ca), "/cert/ca"));
    if (pem.ok() && pem->contains("certificate")) {
      auto cert = crypto::ParseCertPem(std::string(pem->at("certificate").as_string()));
      if (cert.ok()) r.not_after = crypto::NotAfterUnix(cert->get());
    }
    cas.push_back(std::move(r));
  }
  bool first = true;
  for (const auto& n : s.nodes) {
    if (!node.empty() && n.name != node) continue;
    std::vector<Row> rows;
    for (const auto& k : Kinds(s)) {
      bool wanted = false;
      for (const auto& role : k.node_roles) wanted = wanted || n.Has(role);
      if (!wanted) continue;
      Names names = CertNames(s, k, &n);
      Row r{KindName(k), std::string(CaColumn(k.ca)), std::nullopt, false};
      const auto& by = latest[k.ca];
      if (auto it = by.find(names.common_name); it != by.end() && it->second > 0)
        r.not_after = it->second;
      rows.push_back(std::move(r));
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
    out << (first ? "" : "\n") << "Node " << n.name << ":\n";
    first = false;
    PrintCerts(rows, now, out);
  }
  out << "\n";
  PrintCas(cas, now, out);
  return absl::OkStatus();
}

absl::Status CheckExpirationLocal(const std::string& root, const std::string& kubelet_dir,
                                  int64_t now, std::ostream& out) {
  ClusterSpec s;  // the kinds kubeadm makes, whatever the cluster's names
  std::vector<Row> rows;
  for (const auto& k : Kinds(s)) {
    std::string path;
    if (!k.kubeconfig.empty()) {
      path = Cat(root, "/", k.kubeconfig);
    } else {
      path = Cat(root, "/pki/", k.file, ".crt");
    }
    if (auto na = FileNotAfter(path))
      rows.push_back({KindName(k), std::string(CaColumn(k.ca)), na});
    if (k.id == "kubelet")
      if (auto na = FileNotAfter(Cat(kubelet_dir, "/pki/kubelet.crt")))
        rows.push_back({"kubelet", "ca", na});
  }
  // Files kubeadm makes that no cluster role describes (for example super-admin.conf): listed as
  // externally managed, so a renewal Coffer will not do is visible.
  for (const char* extra : {"super-admin.conf"})
    if (auto na = FileNotAfter(Cat(root, "/", extra))) rows.push_back({extra, "ca", na, true});
  if (rows.empty())
    return absl::FailedPreconditionError(
        Cat("no certificate found under ", root, " (pki/*.crt, *.conf) or ", kubelet_dir,
            "/pki: give the node's Kubernetes folder with --local"));
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  PrintCerts(rows, now, out);
  std::vector<Row> cas;
  for (auto [name, file] : {std::pair{"ca", "pki/ca.crt"},
                            {"etcd-ca", "pki/etcd/ca.crt"},
                            {"front-proxy-ca", "pki/front-proxy-ca.crt"}})
    if (auto na = FileNotAfter(Cat(root, "/", file))) cas.push_back({name, "", na, false});
  out << "\n";
  PrintCas(cas, now, out);
  return absl::OkStatus();
}

}  // namespace coffer::cluster
