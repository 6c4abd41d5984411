// Entry point of the single `coffer` binary.
#include <openssl/crypto.h>
#include <sys/resource.h>

#include <iostream>

#include "cli/cli.h"
#include "cli/client_util.h"
#include "cli/output.h"
#include "util/suggest.h"

namespace coffer::cli {

namespace {

// Names of a command's subcommands (and their aliases).
std::vector<std::string> SubcommandNames(const CLI::App* app) {
  std::vector<std::string> out;
  for (const CLI::App* sub : app->get_subcommands({})) {
    out.push_back(sub->get_name());
    for (const auto& a : sub->get_aliases()) out.push_back(a);
  }
  return out;
}

std::string Suggestion(std::string_view word, const std::vector<std::string>& names) {
  std::string best = ClosestMatch(word, std::vector<std::string_view>(names.begin(), names.end()));
  return best;
}

// The innermost command the parse reached.
const CLI::App* Deepest(const CLI::App* app) {
  for (const CLI::App* sub : app->get_subcommands())
    if (sub->parsed()) return Deepest(sub);
  return app;
}

// As the vault CLI: an unknown command or flag says which, suggests the closest known one and
// exits 1 (CLI11's own message named neither the command nor an alternative).
int UnknownCommand(const CLI::App& app, const std::vector<std::string>& args) {
  // Walk the words as far as they name commands; the first that does not is the unknown one.
  const CLI::App* at = &app;
  std::string path = "coffer";
  for (const std::string& word : args) {
    if (word.empty() || word[0] == '-') return -1;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : at->get_subcommands({}))
      if (sub->check_name(word)) next = sub;
    if (!next) {
      if (at->get_subcommands({}).empty()) return -1;  // a command's own argument
      std::string best = Suggestion(word, SubcommandNames(at));
      std::cerr << "Error: unknown command \"" << word << "\""
                << (best.empty() ? "" : "; did you mean \"" + best + "\"?") << "\nRun \"" << path
                << " --help\" for the list of commands.\n";
      return kExitLocal;
    }
    at = next;
    path += " " + next->get_name();
  }
  return -1;
}

int UnknownFlag(const CLI::App& app, const CLI::ExtrasError& e) {
  const CLI::App* at = Deepest(&app);
  std::string what = e.what();
  size_t colon = what.find(": ");
  std::string extra = colon == std::string::npos ? what : what.substr(colon + 2);
  if (size_t sp = extra.find(' '); sp != std::string::npos) extra.resize(sp);
  std::string name = extra;
  while (!name.empty() && name[0] == '-') name.erase(0, 1);
  if (size_t eq = name.find('='); eq != std::string::npos) name.resize(eq);
  std::vector<std::string> names;
  for (const CLI::Option* o : at->get_options())
    for (const auto& l : o->get_lnames()) names.push_back(l);
  std::string best = Suggestion(name, names);
  if (!extra.empty() && extra[0] != '-') {
    std::cerr << "Error: unexpected argument \"" << extra << "\" for \"" << at->get_name()
              << "\"\nRun with -help for its usage.\n";
    return kExitLocal;
  }
  std::cerr << "Error: unknown flag -" << name
            << (best.empty() ? "" : "; did you mean -" + best + "?") << "\nRun with -help for \""
            << at->get_name() << "\"'s flags.\n";
  return kExitLocal;
}

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
  RegisterTransitCommands(app, &exit_code);
  RegisterPkiCommands(app, &exit_code);
  RegisterClusterCommands(app, &exit_code);
  RegisterAgentCommands(app, &exit_code);
  RegisterKmsCommands(app, &exit_code);
  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "Coffer v" << COFFER_VERSION << "\n";
  });
  RegisterCompletionCommand(app, &exit_code);  // last: its script lists every command

  auto args = NormalizeArgs(argc, argv);
  // `coffer -version` and `--version`, as `vault`.
  if (!args.empty() && args[0] == "--version") {
    std::cout << "Coffer v" << COFFER_VERSION << "\n";
    return kExitOk;
  }
  if (int code = UnknownCommand(app, args); code >= 0) return code;
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse order
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    return UnknownFlag(app, e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // the message is printed already (an unknown -format)
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitLocal;
  }
  // -output-curl-string on a command that made no request (vault's message).
  if (CurlMode() && !CurlPrinted() && exit_code == kExitOk) {
    std::cerr << "Could not generate cURL command\n";
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
