// `coffer completion bash|zsh`: a completion script generated at run time from the CLI11 command
// tree, so it always matches the binary. The script holds, for each command path ("coffer",
// "coffer operator", ...), its subcommands and its flags in vault's single-dash spelling; the
// shell function walks the words typed so far down that tree and offers the subcommands (or,
// for a word starting with "-", the flags) of the command reached. Anything else (a file
// argument) falls back to the shell's default completion. zsh gets the same function through
// bashcompinit.
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/output.h"

namespace coffer::cli {
namespace {

struct Node {
  std::string path;  // "coffer operator unseal"
  std::vector<std::string> subcommands;
  std::vector<std::string> flags;
};

void Walk(const CLI::App* app, const std::string& path, std::vector<Node>* out) {
  Node n;
  n.path = path;
  std::vector<std::pair<const CLI::App*, std::string>> children;
  for (const CLI::App* sub : app->get_subcommands({})) {
    if (sub->get_name().empty() || sub->get_group().empty()) continue;  // option groups, hidden
    n.subcommands.push_back(sub->get_name());
    for (const auto& a : sub->get_aliases()) n.subcommands.push_back(a);
    children.emplace_back(sub, path + " " + sub->get_name());
  }
  for (const CLI::Option* o : app->get_options()) {
    if (o->get_group().empty()) continue;
    for (const auto& l : o->get_lnames()) n.flags.push_back("-" + l);
    for (const auto& s : o->get_snames()) n.flags.push_back("-" + s);
  }
  out->push_back(std::move(n));
  for (const auto& [sub, p] : children) Walk(sub, p, out);
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

// Works in bash and in zsh's bashcompinit: the word being completed comes from $2 (zsh's
// COMP_WORDS is indexed from 1), or from COMP_WORDS when the function is called by hand.
std::string Script(const CLI::App& root) {
  std::vector<Node> nodes;
  Walk(&root, "coffer", &nodes);
  std::string s =
      "_coffer() {\n"
      "  local cur=\"${2-${COMP_WORDS[COMP_CWORD]}}\" cmd=\"coffer\" word subs=\"\" flags=\"\"\n"
      "  for word in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n"
      "    case \"$word\" in -*) continue ;; esac\n"
      "    case \"$cmd $word\" in\n";
  for (const Node& n : nodes)
    if (n.path != "coffer") s += "      \"" + n.path + "\") cmd=\"$cmd $word\" ;;\n";
  s += "    esac\n"
       "  done\n"
       "  case \"$cmd\" in\n";
  for (const Node& n : nodes)
    s += "    \"" + n.path + "\") subs=\"" + Join(n.subcommands) + "\"; flags=\"" + Join(n.flags) +
         "\" ;;\n";
  s += "  esac\n"
       "  case \"$cur\" in\n"
       "    -format=*|--format=*)\n"
       "      COMPREPLY=($(compgen -P \"${cur%%=*}=\" -W \"table json yaml pretty\" -- "
       "\"${cur#*=}\")) ;;\n"
       "    -*) COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\")) ;;\n"
       "    *) COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\")) ;;\n"
       "  esac\n"
       "}\n"
       "complete -o default -F _coffer coffer\n";
  return s;
}

}  // namespace

void RegisterCompletionCommand(CLI::App& root, int* exit_code) {
  auto shell = std::make_shared<std::string>();
  auto* c = root.add_subcommand(
      "completion", "Print a shell completion script: source <(coffer completion bash)");
  c->add_option("shell", *shell, "bash or zsh")->required()->check(CLI::IsMember({"bash", "zsh"}));
  const CLI::App* tree = &root;
  c->callback([shell, tree, exit_code] {
    if (*shell == "zsh")
      std::cout << "#compdef coffer\n"
                   "# zsh: runs the bash completion through bashcompinit.\n"
                   "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit; }\n"
                   "autoload -U +X bashcompinit && bashcompinit\n";
    std::cout << Script(*tree);
    *exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
