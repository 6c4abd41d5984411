#include "util/shell.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

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

namespace {

// fork + exec of /bin/sh -c `cmd` in a new process group, stdin /dev/null and stdout+stderr to
// `out_fd` when >= 0; waits for it, killing the group after `timeout_ms` (0: never). Returns the
// wait status, or -1 with *why set.
int SpawnAndWait(const std::string& cmd, int out_fd, int64_t timeout_ms, bool* timed_out,
                 std::string* why) {
  *timed_out = false;
  const pid_t pid = ::fork();
  if (pid < 0) {
    *why = Cat("could not start /bin/sh: ", std::strerror(errno));
    return -1;
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    ::setpgid(0, 0);
    const int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0) ::dup2(in, 0);
    if (out_fd >= 0) {
      ::dup2(out_fd, 1);
      ::dup2(out_fd, 2);
    }
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here: whichever runs first, the group exists before a kill
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto pause = std::chrono::milliseconds(1);
  bool termed = false;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) {
      *why = Cat("could not wait for /bin/sh: ", std::strerror(errno));
      return -1;
    }
    const auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (timeout_ms > 0 && !termed && ran.count() >= timeout_ms) {
      *timed_out = true;
      termed = true;
      ::kill(-pid, SIGTERM);
    }
    if (termed && ran.count() >= timeout_ms + 5000) ::kill(-pid, SIGKILL);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

int ExitCode(int status, bool timed_out) {
  if (timed_out) return kShellTimedOut;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int RunShell(const std::string& cmd, int64_t timeout_ms, std::string* why) {
  std::string reason;
  bool timed_out = false;
  const int status = SpawnAndWait(cmd, -1, timeout_ms, &timed_out, &reason);
  if (timed_out)
    reason = Cat("stopped after ", static_cast<double>(timeout_ms) / 1000.0, " s (the timeout)");
  if (why) *why = reason;
  if (status == -1) return -1;
  return ExitCode(status, timed_out);
}

int RunShellCaptured(const std::string& cmd, std::string* output, size_t keep, int64_t timeout_ms) {
  output->clear();
  std::error_code ec;
  std::string path = (std::filesystem::temp_directory_path(ec) / "coffer-hook-XXXXXX").string();
  const int fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    *output =
        Cat("could not make a file for the command's output (", path, "): ", std::strerror(errno));
    return -1;
  }
  std::string why;
  bool timed_out = false;
  const int status = SpawnAndWait(cmd, fd, timeout_ms, &timed_out, &why);
  close(fd);
  auto text = files::ReadIfExists(path);
  unlink(path.c_str());
  if (text.ok() && *text) *output = PrintableText(**text, keep, /*tail=*/true);
  if (status == -1) {
    *output = why;
    return -1;
  }
  if (timed_out)
    *output = PrintableText(Cat(*output, output->empty() ? "" : "\n", "(stopped after ",
                                static_cast<double>(timeout_ms) / 1000.0, " s: the timeout)"),
                            keep, /*tail=*/true);
  return ExitCode(status, timed_out);
}

}  // namespace coffer
