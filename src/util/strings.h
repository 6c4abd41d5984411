// Small string helpers shared across layers: one definition each (a unity build puts files of a
// layer in one translation unit, where two private copies of a helper would collide).
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace coffer {

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Debian's Abseil keeps its own string_view type: the same bytes, viewed for an absl:: call.
inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace coffer
