#include "core/backend.h"

#include "util/log.h"

namespace coffer::core {

PathList::PathList(std::initializer_list<std::string_view> entries) {
  for (auto e : entries) entries_.emplace_back(e);
}
PathList::PathList(const std::vector<std::string>& entries) : entries_(entries) {}

namespace {
// One entry against one path: '+' segments match any one segment, a trailing '*' any suffix.
bool EntryMatches(std::string_view entry, std::string_view path) {
  size_t e = 0, p = 0;
  while (e < entry.size()) {
    const char c = entry[e];
    if (c == '*' && e + 1 == entry.size()) return true;
    if (c == '+' && (e == 0 || entry[e - 1] == '/') &&
        (e + 1 == entry.size() || entry[e + 1] == '/')) {
      size_t end = path.find('/', p);
      if (end == std::string_view::npos) end = path.size();
      if (end == p) return false;  // '+' needs a non-empty segment
      p = end;
      ++e;
      continue;
    }
    if (p >= path.size() || path[p] != c) return false;
    ++e;
    ++p;
  }
  return p == path.size();
}
}  // namespace

bool PathList::Matches(std::string_view path) const {
  for (const auto& e : entries_)
    if (EntryMatches(e, path)) return true;
  return false;
}

const SpecialPaths& Backend::Special() const {
  static const SpecialPaths kNone;
  return kNone;
}

void BackendConfig::LogInfo(std::string_view msg) const { log::Info(msg, {{"mount", entry.path}}); }
void BackendConfig::LogWarn(std::string_view msg) const { log::Warn(msg, {{"mount", entry.path}}); }

}  // namespace coffer::core
