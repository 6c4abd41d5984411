// Fuzzes what the agent and `coffer cluster` parse: agent config files (HCL or JSON), the cluster
// spec read back from the server, node specs from the command line, and kubeconfig renders.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/agent.h"
#include "agent/config.h"
#include "boost/json.hpp"
#include "cluster/profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto c = coffer::agent::ParseConfig(text); c.ok()) {
    for (const auto& cert : c->certificates)
      if (!cert.kubeconfig.path.empty())
        (void)coffer::agent::RenderKubeconfig(cert.kubeconfig, "ca", "cert", "key");
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (!ec && v.is_object()) {
    if (auto s = coffer::cluster::ClusterSpec::FromJson(v.as_object()); s.ok()) {
      for (const auto& n : s->nodes) {
        (void)coffer::cluster::NodePolicy(*s, n);
        (void)coffer::cluster::TokenRoleBody(*s, n);
      }
    }
  }
  (void)coffer::cluster::ParseNode(text.substr(0, 512));
  return 0;
}
