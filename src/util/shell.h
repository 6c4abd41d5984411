// Running the shell commands an operator configures (agent hooks, a CA rotation's finalize
// hooks) and keeping what they print for a report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace coffer {

// Runs `cmd` with /bin/sh -c, stdin from /dev/null, stdout and stderr to a temporary file
// (not a pipe: a hook that restarts a daemon leaves the daemon holding its descriptors, and a pipe
// would never reach its end), and keeps the last `keep` bytes of what it printed, made
// printable (PrintableText) in `output`. Returns its exit status, 128+signal when a signal ended
// it, or -1 when it could not run (then `output` says why).
// A command still running after `timeout_ms` (0: no limit) has its process group sent SIGTERM,
// then SIGKILL 5 s later, and returns kShellTimedOut with `output` saying so: a hook stuck on a
// wedged daemon must not stop the caller (the agent renews every other certificate and its
// own token from the same thread).
int RunShellCaptured(const std::string& cmd, std::string* output, size_t keep = 4096,
                     int64_t timeout_ms = 0);

// Runs `cmd` with /bin/sh -c in a process group of its own, stdin from /dev/null, stdout and
// stderr the caller's, with the same timeout as above. Returns as RunShellCaptured; `why` (may
// be null) gets a line when it could not run or timed out.
int RunShell(const std::string& cmd, int64_t timeout_ms, std::string* why = nullptr);

inline constexpr int kShellTimedOut = 124;  // as timeout(1)

// Text from elsewhere (a hook's output, what a node reported) for a terminal or a JSON document:
// printable ASCII, newlines and tabs; any other byte (escape sequences, invalid UTF-8) becomes
// '?'. At most `max` bytes: the last ones with `tail` (an error is usually at the end), else
// the first ones followed by "...".
std::string PrintableText(std::string_view text, size_t max, bool tail = false);

}  // namespace coffer
