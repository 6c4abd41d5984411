// Cost of one ACL decision with 50 policies of 20 rules each (exact paths, globs and '+'
// segments mixed), over request paths that hit exact rules, globs, wildcards and nothing.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "core/acl.h"

namespace {

std::shared_ptr<const coffer::core::Acl> BuildAcl() {
  std::vector<std::shared_ptr<const coffer::core::Policy>> policies;
  for (int p = 0; p < 50; ++p) {
    std::string text;
    for (int r = 0; r < 20; ++r) {
      std::string pattern;
      switch (r % 4) {
        case 0:
          pattern = "secret/team" + std::to_string(p) + "/app" + std::to_string(r);
          break;
        case 1:
          pattern = "secret/team" + std::to_string(p) + "/svc" + std::to_string(r) + "/*";
          break;
        case 2:
          pattern = "pki" + std::to_string(p % 5) + "/issue/role" + std::to_string(r);
          break;
        case 3:
          pattern = "kv/+/team" + std::to_string(p) + "/r" + std::to_string(r) + "/*";
          break;
      }
      text += "path \"" + pattern + "\" { capabilities = [\"read\", \"list\", \"update\"] }\n";
    }
    std::string name = "p";
    name += std::to_string(p);
    auto parsed = coffer::core::ParsePolicy(name, text);
    policies.push_back(std::make_shared<coffer::core::Policy>(std::move(*parsed)));
  }
  return coffer::core::Acl::Build(policies);
}

void BM_AclCheck(benchmark::State& state) {
  auto acl = BuildAcl();
  std::vector<std::string> paths = {
      "secret/team7/app4",                  // exact
      "secret/team12/svc5/deep/key",        // glob
      "kv/prod/team33/r7/config",           // + segment
      "pki3/issue/role10",                  // exact, other mount
      "secret/unknown/path/with/segments",  // no match: deny
      "sys/mounts",                         // no match: deny
  };
  size_t i = 0;
  for (auto _ : state) {
    bool allowed = acl->Allows(paths[i % paths.size()], coffer::core::Operation::kRead, false);
    benchmark::DoNotOptimize(allowed);
    ++i;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_AclCheck);

void BM_AclBuild(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(BuildAcl());
}
BENCHMARK(BM_AclBuild)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
