// `coffer kms-plugin`: the Kubernetes KMS v2 plugin. Its code, and gRPC with protobuf, are the
// program coffer-kms-plugin (src/kmsplugin/), which this command runs in its own place (execv,
// same process id, arguments passed on as given): a `coffer server` or agent then never loads
// gRPC (4.4 MB of resident memory, relocations and static initializers, in every process).
//
// Where the program is looked for, in this order (the first that runs): the install's libexec
// folder relative to this binary's real location (/proc/self/exe, symlinks resolved):
// <bindir>/../libexec/coffer as CMake configured it; then <bindir>/coffer-kms-plugin (a build
// folder); then the configured absolute path (/usr/libexec/coffer). No PATH search: the program
// run with the plugin's token is the one installed with this binary.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/cli.h"
#include "util/status.h"

#ifndef COFFER_BIN_TO_LIBEXEC
#define COFFER_BIN_TO_LIBEXEC "../libexec/coffer"
#endif
#ifndef COFFER_LIBEXEC_DIR
#define COFFER_LIBEXEC_DIR "/usr/libexec/coffer"
#endif

namespace coffer::cli {
namespace {

constexpr const char* kPluginProgram = "coffer-kms-plugin";

std::vector<std::filesystem::path> PluginCandidates(std::string* why_not_relative) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    *why_not_relative = Cat("cannot read /proc/self/exe (", ec.message(), ")");
  } else {
    const std::filesystem::path dir = self.parent_path();
    out.push_back((dir / COFFER_BIN_TO_LIBEXEC / kPluginProgram).lexically_normal());
    out.push_back(dir / kPluginProgram);
  }
  std::filesystem::path fixed = std::filesystem::path(COFFER_LIBEXEC_DIR) / kPluginProgram;
  if (std::find(out.begin(), out.end(), fixed) == out.end()) out.push_back(fixed);
  return out;
}

int RunPluginProgram(const std::vector<std::string>& args) {
  std::string why_not_relative;
  const std::vector<std::filesystem::path> candidates = PluginCandidates(&why_not_relative);
  std::vector<std::string> argv_s{kPluginProgram};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_s.size() + 1);
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string tried;
  for (const auto& path : candidates) {
    if (access(path.c_str(), X_OK) != 0) {
      tried += Cat("\n  ", path.string(), ": ", std::strerror(errno));
      continue;
    }
    std::cout.flush();
    execv(path.c_str(), argv.data());
    tried += Cat("\n  ", path.string(), ": cannot run it: ", std::strerror(errno));
  }
  std::cerr << "Error: the KMS plugin's program " << kPluginProgram
            << " is not installed with this coffer binary (it is part of the coffer package; "
               "copying coffer by hand, copy coffer-kms-plugin too, to the libexec folder or "
               "next to coffer). Looked for:"
            << tried << (why_not_relative.empty() ? "" : "\n  (" + why_not_relative + ")") << "\n";
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
