#include "cluster/profile.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "agent/agent.h"
#include "agent/config.h"
#include "util/files.h"

namespace coffer {
namespace {

cluster::ClusterSpec Spec() {
  cluster::ClusterSpec s;
  s.name = "prod";
  s.nodes.push_back(*cluster::ParseNode("cp-1:control-plane+etcd:10.0.0.2"));
  s.nodes.push_back(*cluster::ParseNode("w-1:worker:10.0.0.3,fd00::3"));
  return s;
}

TEST(ClusterProfile, ParsesNodesAndRejectsBadOnes) {
  auto n = cluster::ParseNode("cp-1:control-plane+etcd:10.0.0.2,10.0.0.9");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->roles, (std::vector<std::string>{"control-plane", "etcd"}));
  EXPECT_EQ(n->ips.size(), 2u);
  EXPECT_FALSE(cluster::ParseNode("just-a-name").ok());
  auto s = Spec();
  s.nodes.push_back(*cluster::ParseNode("Bad_Name:worker"));
  EXPECT_FALSE(s.Validate().ok());
  s = Spec();
  s.nodes.push_back(*cluster::ParseNode("w-1:worker"));
  EXPECT_NE(s.Validate().message().find("listed twice"), std::string::npos);
}

TEST(ClusterProfile, SpecRoundTripsThroughJson) {
  auto s = Spec();
  s.apiserver_dns_sans = {"api.example.com"};
  auto back = cluster::ClusterSpec::FromJson(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(boost::json::serialize(back->ToJson()), boost::json::serialize(s.ToJson()));
}

TEST(ClusterProfile, PerNodeRolesAllowOnlyThatNodesNames) {
  auto s = Spec();
  auto k = *cluster::FindKind(s, "kubelet");
  auto body = cluster::RoleBody(s, k, s.Node("w-1"));
  EXPECT_EQ(cluster::RoleName(k, s.Node("w-1")), "kubelet-w-1");
  auto domains = body.at("allowed_domains").as_array();
  EXPECT_EQ(domains.size(), 2u);
  EXPECT_EQ(domains[0], "system:node:w-1");
  EXPECT_EQ(domains[1], "w-1");
  EXPECT_EQ(body.at("allow_subdomains"), false);
  EXPECT_EQ(body.at("allow_glob_domains"), false);
  EXPECT_EQ(body.at("enforce_hostnames"), false);  // system:node:w-1 is not a host name
  auto cidrs = body.at("allowed_ip_sans_cidr").as_array();
  EXPECT_EQ(cidrs.size(), 2u);
  EXPECT_EQ(cidrs[0], "10.0.0.3/32");
  EXPECT_EQ(cidrs[1], "fd00::3/128");
  EXPECT_EQ(body.at("organization").as_array()[0], "system:nodes");
}

TEST(ClusterProfile, PoliciesGrantExactlyTheirSignPaths) {
  auto s = Spec();
  std::string worker = cluster::NodeRolePolicy(s, "worker");
  EXPECT_NE(worker.find("prod/pki/kubernetes/sign/kube-proxy"), std::string::npos);
  EXPECT_EQ(worker.find("apiserver"), std::string::npos);
  EXPECT_EQ(worker.find("secrets"), std::string::npos);
  std::string node = cluster::NodePolicy(s, *s.Node("w-1"));
  EXPECT_NE(node.find("prod/pki/kubernetes/sign/kubelet-w-1"), std::string::npos);
  EXPECT_EQ(node.find("cp-1"), std::string::npos);
  std::string cp = cluster::NodePolicy(s, *s.Node("cp-1"));  // control-plane + etcd
  EXPECT_NE(cp.find("sign/etcd-server-cp-1"), std::string::npos);
  EXPECT_NE(cp.find("sign/apiserver-cp-1"), std::string::npos);
  std::string init = cluster::InitPolicy(s, *s.Node("w-1"));
  EXPECT_NE(init.find("auth/token/create/prod-node-w-1"), std::string::npos);
  EXPECT_EQ(init.find("sign"), std::string::npos);
}

TEST(ClusterProfile, KeyOptions) {
  cluster::ClusterSpec s;
  ASSERT_TRUE(cluster::ParseKeyOption("rsa-3072", &s).ok());
  EXPECT_EQ(s.key_type, "rsa");
  EXPECT_EQ(s.key_bits, 3072);
  ASSERT_TRUE(cluster::ParseKeyOption("ed25519", &s).ok());
  EXPECT_EQ(s.key_type, "ed25519");
  EXPECT_FALSE(cluster::ParseKeyOption("rsa-1024", &s).ok());
}

TEST(AgentConfig, HclBlocksAndJsonListsAreTheSame) {
  const char* hcl = R"(
server { address = "https://127.0.0.1:8200"  ca_cert = "/ca.pem" }
node_name = "w-1"
token_path = "/s/token"
init_token_path = "/s/init"
token_role = "prod-node-w-1"
retry_max = "30s"
certificate "kubelet" {
  role = "prod/pki/kubernetes/sign/kubelet-w-1"
  common_name = "system:node:w-1"
  dns_sans = ["w-1"]
  ip_sans = ["10.0.0.3"]
  cert_file = "/k/kubelet.crt"
  key_file = "/k/kubelet.key"
  mode = "0640"
  kubeconfig { path = "/k/kubelet.conf"  server = "https://10.0.0.1:6443" }
}
secret { path = "prod/secrets/x"  field = "key"  dest = "/k/x" }
)";
  auto c = agent::ParseConfig(hcl);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->certificates.size(), 1u);
  EXPECT_EQ(c->certificates[0].name, "kubelet");
  EXPECT_EQ(c->certificates[0].mode, 0640u);
  EXPECT_EQ(c->certificates[0].kubeconfig.user, "system:node:w-1");
  EXPECT_EQ(c->retry_max_ms, 30000);
  ASSERT_EQ(c->secrets.size(), 1u);
  EXPECT_EQ(c->secrets[0].mode, 0600u);
  const char* json = R"({"server": {"address": "https://h:8200"}, "token_path": "/t",
    "certificates": [{"name": "a", "role": "p/sign/r", "common_name": "a", "cert_file": "/a.crt",
                      "key_file": "/a.key"}]})";
  auto j = agent::ParseConfig(json);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(j->certificates[0].role, "p/sign/r");
}

TEST(AgentConfig, ErrorsSayWhatToFix) {
  auto c = agent::ParseConfig(R"(server { address = "https://h" }
token_path = "/t"
certificate "x" { role = "pki/issue/web"  common_name = "x"  cert_file = "/x"  key_file = "/y" })");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("must be a sign path"), std::string::npos);
  c = agent::ParseConfig("token_path = \"/t\"");
  EXPECT_NE(c.status().message().find("server block"), std::string::npos);
  c = agent::ParseConfig(R"(server { address = "https://h" }
token_path = "/t"
init_token_path = "/i")");
  EXPECT_NE(c.status().message().find("token_role"), std::string::npos);
  c = agent::ParseConfig(R"(server { address = "https://h" }
token_path = "/t"
certificate "x" { role = "p/sign/r"  common_name = "x"  cert_file = "/x"  key_file = "/y"  mode = "rw" })");
  EXPECT_NE(c.status().message().find("octal"), std::string::npos);
}

TEST(AgentSchedule, RenewalPointIsBetween60And75PercentAndSpread) {
  int64_t lo = 1000, hi = 1000 + 100000;
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    int64_t at = agent::Agent::RenewAt(lo, hi, "serial-" + std::to_string(i), "node");
    EXPECT_GE(at, lo + 60000);
    EXPECT_LT(at, lo + 75000);
    seen.insert(at / 1000);
  }
  EXPECT_GT(seen.size(), 12u);  // spread over the window, not one instant
  // The same certificate on the same node always gets the same point.
  EXPECT_EQ(agent::Agent::RenewAt(lo, hi, "s", "n"), agent::Agent::RenewAt(lo, hi, "s", "n"));
}

TEST(AgentSchedule, BackoffGrowsWithJitterUpToTheCap) {
  agent::Config c;
  c.retry_min_ms = 1000;
  c.retry_max_ms = 8000;
  agent::Agent a(c, RealClock::Get());
  for (int i = 0; i < 50; ++i) {
    int64_t b0 = a.BackoffMs(0), b2 = a.BackoffMs(2), b9 = a.BackoffMs(9);
    EXPECT_GE(b0, 500);
    EXPECT_LE(b0, 1000);
    EXPECT_GE(b2, 2000);
    EXPECT_LE(b2, 4000);
    EXPECT_GE(b9, 4000);
    EXPECT_LE(b9, 8000);
  }
}

TEST(Files, AtomicWriteSetsModeAndReplaces) {
  std::string dir = ::testing::TempDir() + "/coffer-files-test/a/b";
  std::string path = dir + "/key.pem";
  ASSERT_TRUE(files::WriteAtomic(path, "one", 0600).ok());
  ASSERT_TRUE(files::WriteAtomic(path, "two", 0600).ok());
  auto back = files::ReadIfExists(path);
  ASSERT_TRUE(back.ok() && *back);
  EXPECT_EQ(**back, "two");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  files::WriteOptions o;
  o.owner = "no-such-user-coffer";
  auto bad = files::WriteAtomic(path, "three", o);
  EXPECT_NE(bad.message().find("unknown user"), std::string::npos);
  EXPECT_EQ(**files::ReadIfExists(path), "two");  // untouched
  ASSERT_TRUE(files::Wipe(path).ok());
  EXPECT_FALSE(*files::ReadIfExists(path));
}

}  // namespace
TEST(ClusterProfile, KubeletServingPairInKubeadmsKubeletFolder) {
  auto s = Spec();
  cluster::AgentLayout l;  // defaults: /etc/kubernetes, /var/lib/kubelet
  l.root = "/etc/kubernetes";
  auto cfg = cluster::AgentConfig(s, *s.Node("w-1"), l);
  bool found = false;
  for (const auto& c : cfg.at("certificates").as_array()) {
    const auto& o = c.as_object();
    if (o.at("name").as_string() != "kubelet") continue;
    found = true;
    EXPECT_EQ(o.at("cert_file").as_string(), "/var/lib/kubelet/pki/kubelet.crt");
    EXPECT_EQ(o.at("key_file").as_string(), "/var/lib/kubelet/pki/kubelet.key");
    EXPECT_EQ(o.at("ca_file").as_string(), "/etc/kubernetes/pki/ca.crt");
    EXPECT_EQ(o.at("kubeconfig").as_object().at("path").as_string(),
              "/etc/kubernetes/kubelet.conf");
  }
  EXPECT_TRUE(found);
}

}  // namespace coffer
