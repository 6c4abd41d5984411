// coffer-kms-plugin: the program `coffer kms-plugin` runs (src/cli/kms_commands.cc), the one
// that links gRPC. Installed in <prefix>/libexec/coffer/; its flags are those of
// `coffer kms-plugin` (vault's single-dash spelling too), and so are its exit codes.
#include <sys/resource.h>

#include <iostream>

#include "cli/cli.h"
#include "kmsplugin/plugin_command.h"

int main(int argc, char** argv) {
  rlimit nocore{0, 0};  // no core dumps: they could hold the plugin's token
  setrlimit(RLIMIT_CORE, &nocore);
  try {
    CLI::App app{"Serve the Kubernetes KMS v2 API on a unix socket, encrypting with a Transit key",
                 "coffer kms-plugin"};
    int exit_code = coffer::cli::kExitOk;
    coffer::kmsplugin::ConfigureKmsPlugin(&app, &exit_code);
    auto args = coffer::cli::NormalizeArgs(argc, argv);
    std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse order
    try {
      app.parse(args);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      app.exit(e);
      return coffer::cli::kExitLocal;
    }
    return exit_code;
  } catch (const std::exception& e) {
    std::cerr << "Error: unexpected exception: " << e.what() << "\n";
  }
  return coffer::cli::kExitLocal;
}
