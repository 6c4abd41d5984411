#include "util/shell.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "util/files.h"
#include "util/status.h"

namespace coffer {

std::string PrintableText(std::string_view text, size_t max, bool tail) {
  const bool cut = text.size() > max;
  if (cut) text = tail ? text.substr(text.size() - max) : text.substr(0, max);
  std::string out(text);
  for (char& c : out)
    if (!((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t')) c = '?';
  if (cut && !tail) out += "...";
  return out;
}

int RunShellCaptured(const std::string& cmd, std::string* output, size_t keep) {
  output->clear();
  std::error_code ec;
  std::string path = (std::filesystem::temp_directory_path(ec) / "coffer-hook-XXXXXX").string();
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    *output =
        Cat("could not make a file for the command's output (", path, "): ", std::strerror(errno));
    return -1;
  }
  close(fd);
  // The newline ends a trailing `# comment` in the command before the parenthesis; the path
  // (mkstemp's: no quote in it) is quoted for a temporary folder with spaces.
  const int rc = std::system(Cat("(", cmd, "\n) >'", path, "' 2>&1 </dev/null").c_str());
  auto text = files::ReadIfExists(path);
  unlink(path.c_str());
  if (text.ok() && *text) *output = PrintableText(**text, keep, /*tail=*/true);
  if (rc == -1) return -1;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

}  // namespace coffer
