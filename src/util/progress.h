// Progress of a long operation (cluster setup of many nodes, cluster status of a large store),
// for a person watching: on a terminal a bar redrawn in place ("checking [#####.....] 340/1000
// 34% ETA 12s"), at most ten times a second; otherwise a plain line at each tenth, so logs stay
// readable. Operations shorter than `min_total` steps print nothing. Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

namespace coffer {

class Progress {
 public:
  Progress(std::ostream* out, bool tty, std::string label, size_t total, size_t min_total = 200);
  ~Progress() { Finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Set(size_t done);
  void Finish();  // the final state (100% or where it stopped), and a newline on a terminal

 private:
  void Draw(size_t done, bool last);

  std::ostream* out_;
  bool tty_;
  std::string label_;
  size_t total_;
  bool active_;
  bool finished_ = false;
  size_t done_ = 0;
  size_t last_tenth_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Whether standard error is a terminal (where a bar can be redrawn).
bool StderrIsTerminal();

}  // namespace coffer
