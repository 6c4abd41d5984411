// "Did you mean ...?": the known name closest to a misspelt one, for error messages (agent config
// keys, CLI commands and flags). Pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace coffer {

// Levenshtein distance (insertions, deletions, substitutions).
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate within two edits of `word` (or containing it, or contained in it), the closest
// first; empty when none is that close.
std::string ClosestMatch(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace coffer
