// Secrets typed at a terminal (unseal keys, tokens) are read with echo off, and the terminal is
// put back on every way out: the normal return, an error, and the signals that end the command
// (Ctrl-C, Ctrl-\, hang-up, kill), whose handler restores it and then dies of the same signal.
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <string>

#include "cli/client_util.h"
#include "util/status.h"

namespace coffer::cli {
namespace {

termios g_saved{};
std::atomic<bool> g_echo_off{false};
constexpr int kSignals[] = {SIGINT, SIGQUIT, SIGHUP, SIGTERM};

void RestoreAndDie(int sig) {
  // Async-signal-safe only: tcsetattr, signal, raise.
  if (g_echo_off.exchange(false)) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

absl::StatusOr<std::string> ReadSecret(const std::string& arg, std::string_view what,
                                       std::string_view prompt) {
  if (!arg.empty() && arg != "-") return arg;
  const bool tty = isatty(STDIN_FILENO) == 1;
  if (arg.empty() && !tty)
    return absl::InvalidArgumentError(
        Cat("no ", what,
            " given and standard input is not a terminal: give it as an argument, "
            "or - to read it from standard input"));
  std::string line;
  if (tty) {
    std::cerr << prompt << std::flush;
    if (tcgetattr(STDIN_FILENO, &g_saved) != 0)
      return absl::InternalError("cannot read the terminal's settings");
    struct sigaction handler {};
    handler.sa_handler = RestoreAndDie;
    sigemptyset(&handler.sa_mask);
    struct sigaction previous[std::size(kSignals)];
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &handler, &previous[i]);
    termios quiet = g_saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
    g_echo_off = true;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    std::getline(std::cin, line);
    if (g_echo_off.exchange(false)) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved);
    for (size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &previous[i], nullptr);
    std::cerr << "\n";
  } else {
    std::getline(std::cin, line);
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
    line.pop_back();
  if (line.empty()) return absl::InvalidArgumentError(Cat("no ", what, " given"));
  return line;
}

}  // namespace coffer::cli
