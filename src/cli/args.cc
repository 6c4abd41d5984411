// Vault's flag spelling for CLI11 (cli.h), shared by `coffer` and coffer-kms-plugin.
#include <cctype>

#include "cli/cli.h"

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

}  // namespace coffer::cli
