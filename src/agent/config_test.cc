// The agent config refuses what it does not know, with the line and a suggestion: a misspelt key
// must not pass `coffer agent check` and silently lose a certificate's file.
#include "agent/config.h"

#include <gtest/gtest.h>

namespace coffer::agent {
namespace {

constexpr std::string_view kGood = R"(
server { address = "https://127.0.0.1:8200" }
node_name = "n1"
token_path = "/var/lib/coffer/token"
certificate "kubelet" {
  role = "pki/sign/kubelet"
  common_name = "system:node:n1"
  cert_file = "/var/lib/kubelet/pki/kubelet.crt"
  key_file = "/var/lib/kubelet/pki/kubelet.key"
  kubeconfig { path = "/etc/kubernetes/kubelet.conf", server = "https://10.0.0.1:6443" }
}
secret "db" { path = "kv/db", field = "password", dest = "/run/db" }
)";

std::string Error(const std::string& text) {
  auto c = ParseConfig(text);
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(AgentConfig, AGoodConfigParses) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->certificates.size(), 1u);
  EXPECT_EQ(c->certificates[0].cert_file, "/var/lib/kubelet/pki/kubelet.crt");
  EXPECT_EQ(c->node_name, "n1");
}

TEST(AgentConfig, HookTimeout) {
  auto c = ParseConfig(kGood);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hook_timeout_ms, 300000);  // 5 minutes unless set
  auto set = ParseConfig(std::string(kGood) + "hook_timeout = \"90s\"\n");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->hook_timeout_ms, 90000);
  EXPECT_NE(Error(std::string(kGood) + "hook_timeout = \"0s\"\n").find("hook_timeout"),
            std::string::npos);
  EXPECT_NE(Error(std::string(kGood) + "hook_timeout = \"soon\"\n").find("hook_timeout"),
            std::string::npos);
}

TEST(AgentConfig, UnknownKeysAreErrorsWithTheLineAndASuggestion) {
  std::string text(kGood);
  // node_name misspelt at the top (line 3).
  std::string e = Error(std::string(text).replace(text.find("node_name"), 9, "nodename"));
  EXPECT_NE(e.find("line 3: unknown key \"nodename\" in the agent config; did you mean "
                   "\"node_name\"?"),
            std::string::npos)
      << e;
  // cert_file misspelt in a certificate block (line 8).
  e = Error(std::string(text).replace(text.find("cert_file"), 9, "cert_fiel"));
  EXPECT_NE(e.find("line 8: unknown key \"cert_fiel\" in certificate \"kubelet\"; did you mean "
                   "\"cert_file\"?"),
            std::string::npos)
      << e;
  // A key that exists nowhere: listed with the known keys, no guess.
  e = Error(std::string(text).insert(text.find("  role ="), "  renew_before = \"10d\"\n"));
  EXPECT_NE(e.find("unknown key \"renew_before\" in certificate \"kubelet\" (known keys: name, "),
            std::string::npos)
      << e;
  // Inside kubeconfig, server and secret blocks too.
  EXPECT_NE(Error(std::string(text).replace(text.find("server = \"https://10"), 6, "servr"))
                .find("in certificate \"kubelet\" kubeconfig; did you mean \"server\"?"),
            std::string::npos);
  EXPECT_NE(Error(std::string(text).replace(text.find("address"), 7, "adress"))
                .find("in server; did you mean \"address\"?"),
            std::string::npos);
  EXPECT_NE(Error(std::string(text).replace(text.find("dest"), 4, "destination"))
                .find("in secret \"db\"; did you mean \"dest\"?"),
            std::string::npos);
  // The JSON form is checked the same way.
  EXPECT_NE(Error(R"({"server": {"address": "https://x:8200"}, "token_path": "/t",
                      "certificates": [{"role": "pki/sign/r", "common_name": "a",
                                        "cert_fiel": "/a.crt", "key_file": "/a.key"}]})")
                .find("unknown key \"cert_fiel\""),
            std::string::npos);
}

}  // namespace
}  // namespace coffer::agent
