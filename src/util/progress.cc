#include "util/progress.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "util/status.h"

namespace coffer {

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::ostream* out, bool tty, std::string label, size_t total, size_t min_total)
    : out_(out),
      tty_(tty),
      label_(std::move(label)),
      total_(total),
      active_(out != nullptr && total >= min_total && total > 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::Set(size_t done) {
  if (!active_ || finished_) return;
  done_ = std::min(done, total_);
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_draw_ = now;
    Draw(done_, false);
    return;
  }
  const size_t tenth = done_ * 10 / total_;
  if (tenth > last_tenth_ && tenth < 10) {
    last_tenth_ = tenth;
    Draw(done_, false);
  }
}

void Progress::Draw(size_t done, bool last) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const size_t pct = done * 100 / total_;
  std::string eta;
  if (!last && done > 0) {
    const auto secs = static_cast<long long>(elapsed * static_cast<double>(total_ - done) /
                                             static_cast<double>(done));
    eta = Cat(" ETA ", secs, "s");
  } else if (last) {
    eta = absl::StrFormat(" in %.1fs", elapsed);
  }
  if (tty_) {
    constexpr size_t kWidth = 30;
    const size_t filled = done * kWidth / total_;
    *out_ << "\r" << label_ << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.')
          << "] " << done << "/" << total_ << " " << pct << "%" << eta << "\x1b[K"
          << (last ? "\n" : "") << std::flush;
  } else {
    *out_ << label_ << ": " << done << "/" << total_ << " (" << pct << "%)" << eta << "\n";
  }
}

void Progress::Finish() {
  if (!active_ || finished_) return;
  finished_ = true;
  Draw(done_, true);
}

}  // namespace coffer
