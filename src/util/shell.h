// Running the shell commands an operator configures (agent hooks, a CA rotation's finalize
// hooks) and keeping what they print for a report.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace coffer {

// Runs `cmd` with /bin/sh -c, stdin from /dev/null, stdout and stderr to a temporary file
// (not a pipe: a hook that restarts a daemon leaves the daemon holding its descriptors, and a pipe
// would never reach its end), and keeps the last `keep` bytes of what it printed, made
// printable (PrintableText) in `output`. Returns its exit status, 128+signal when a signal ended
// it, or -1 when it could not run (then `output` says why).
int RunShellCaptured(const std::string& cmd, std::string* output, size_t keep = 4096);

// Text from elsewhere (a hook's output, what a node reported) for a terminal or a JSON document:
// printable ASCII, newlines and tabs; any other byte (escape sequences, invalid UTF-8) becomes
// '?'. At most `max` bytes: the last ones with `tail` (an error is usually at the end), else
// the first ones followed by "...".
std::string PrintableText(std::string_view text, size_t max, bool tail = false);

}  // namespace coffer
