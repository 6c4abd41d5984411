#include "util/glob.h"

#include "absl/strings/ascii.h"

namespace coffer {

bool StarGlobMatch(std::string_view pattern, std::string_view s, bool fold_case) {
  auto same = [fold_case](char a, char b) {
    if (!fold_case) return a == b;
    return absl::ascii_tolower(static_cast<unsigned char>(a)) ==
           absl::ascii_tolower(static_cast<unsigned char>(b));
  };
  // Greedy with backtracking to the last '*': linear in practice, O(|pattern|*|s|) at worst.
  size_t p = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pattern.size() && same(pattern[p], s[i])) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace coffer
