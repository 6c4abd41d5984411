#include "util/suggest.h"

#include <algorithm>

namespace coffer {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_d = 3;  // within two edits, or when one name contains the other
  for (std::string_view k : candidates) {
    size_t d = EditDistance(word, k);
    if (!word.empty() &&
        (k.find(word) != std::string_view::npos || word.find(k) != std::string_view::npos))
      d = std::min<size_t>(d, 2);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return std::string(best);
}

}  // namespace coffer
