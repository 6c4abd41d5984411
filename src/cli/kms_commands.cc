// `coffer kms-plugin`: the Kubernetes KMS v2 plugin. Its code, and gRPC with protobuf, are the
// program coffer-kms-plugin (src/kmsplugin/), which this command runs in its own place (execv,
// same process id, arguments passed on as given): a `coffer server` or agent then never loads
// gRPC (4.4 MB of resident memory, relocations and static initializers, in every process).
//
// The program is looked for relative to this binary, so an install under any prefix and a build
// tree both work: <bindir>/../libexec/coffer/coffer-kms-plugin (the installed place), then
// <bindir>/coffer-kms-plugin (the build folder). No PATH search: the binary run with the
// plugin's token is the one installed with this one.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/cli.h"

namespace coffer::cli {
namespace {

constexpr const char* kPluginProgram = "coffer-kms-plugin";

std::vector<std::filesystem::path> PluginCandidates() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  std::filesystem::path dir = self.parent_path();
  return {dir.parent_path() / "libexec" / "coffer" / kPluginProgram, dir / kPluginProgram};
}

int RunPluginProgram(const std::vector<std::string>& args) {
  std::vector<std::filesystem::path> candidates = PluginCandidates();
  for (const auto& path : candidates) {
    if (access(path.c_str(), X_OK) != 0) continue;
    std::vector<std::string> argv_s{std::string("coffer kms-plugin")};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argv_s.size() + 1);
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::cout.flush();
    execv(path.c_str(), argv.data());
    std::cerr << "Error: cannot run the KMS plugin's program " << path.string() << ": "
              << std::strerror(errno) << "\n";
    return kExitLocal;
  }
  std::cerr << "Error: the KMS plugin's program " << kPluginProgram
            << " is not installed with this coffer binary; looked for";
  for (const auto& path : candidates) std::cerr << " " << path.string();
  std::cerr << ". It is part of the coffer package (or of a build folder, next to coffer).\n";
  return kExitLocal;
}

}  // namespace

void RegisterKmsCommands(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand(
      "kms-plugin",
      "Serve the Kubernetes KMS v2 API on a unix socket, encrypting with a Transit key "
      "(coffer kms-plugin -help for its flags)");
  // Every argument, -help included, is the plugin program's to parse.
  c->set_help_flag();
  c->prefix_command();
  c->callback([c, exit_code] { *exit_code = RunPluginProgram(c->remaining()); });
}

}  // namespace coffer::cli
