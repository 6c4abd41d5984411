// Entry point of the single `coffer` binary.
#include <openssl/crypto.h>
#include <sys/resource.h>

#include <iostream>

#include "cli/cli.h"
#include "cli/client_util.h"

namespace coffer::cli {

std::vector<std::string> NormalizeArgs(int argc, char** argv) {
  std::vector<std::string> out;
  bool rest = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") rest = true;
    if (!rest && a.size() > 2 && a[0] == '-' && a[1] != '-' &&
        std::isalpha(static_cast<unsigned char>(a[1]))) {
      size_t name_end = a.find('=');
      if ((name_end == std::string::npos ? a.size() : name_end) > 2) a.insert(0, 1, '-');
    }
    out.push_back(std::move(a));
  }
  return out;
}

namespace {

int Run(int argc, char** argv) {
  CLI::App app{"Coffer: a PKI and secrets server for Kubernetes clusters, speaking Vault's API",
               "coffer"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  int exit_code = kExitOk;
  RegisterServerCommand(app, &exit_code);
  RegisterClientCommands(app, &exit_code);
  RegisterAuthCommands(app, &exit_code);
  RegisterKvCommands(app, &exit_code);
  RegisterPkiCommands(app, &exit_code);
  RegisterClusterCommands(app, &exit_code);
  RegisterAgentCommands(app, &exit_code);
  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "Coffer v" << COFFER_VERSION << "\n";
  });

  auto args = NormalizeArgs(argc, argv);
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse order
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitLocal;
  }
  return exit_code;
}

}  // namespace
}  // namespace coffer::cli

int main(int argc, char** argv) {
  // No core dumps: they could hold key material.
  rlimit nocore{0, 0};
  setrlimit(RLIMIT_CORE, &nocore);
  // Errors are Status values; an exception reaching here is a bug (or std::bad_alloc). Say so
  // and exit, rather than std::terminate.
  try {
    return coffer::cli::Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "Error: unexpected exception: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "Error: unexpected exception\n";
  }
  return coffer::cli::kExitLocal;
}
