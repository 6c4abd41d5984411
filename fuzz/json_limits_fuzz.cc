// Fuzzes ParseUntrustedJson, the parser of every untrusted JSON document (request bodies, JSON in
// fields, other services' answers), under small limits chosen by the first bytes. Checks what
// the limits promise: a document accepted under small limits is accepted under larger ones, and
// holds no container deeper, wider or string longer than allowed; anything accepted serializes
// back to JSON that parses again (no Infinity, which once made a secret unreadable).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "boost/json.hpp"
#include "util/json_parse.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

// Walks without recursion, checking every container and string against the limits.
void CheckWithin(const boost::json::value& root, const coffer::JsonLimits& l) {
  std::vector<std::pair<const boost::json::value*, size_t>> todo{{&root, 0}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (v->is_array()) {
      Check(depth < l.max_depth && v->as_array().size() <= l.max_array_elements);
      for (const auto& e : v->as_array()) todo.emplace_back(&e, depth + 1);
    } else if (v->is_object()) {
      Check(depth < l.max_depth && v->as_object().size() <= l.max_object_entries);
      for (const auto& [k, e] : v->as_object()) {
        Check(k.size() <= l.max_string_bytes);
        todo.emplace_back(&e, depth + 1);
      }
    } else if (v->is_string()) {
      Check(v->as_string().size() <= l.max_string_bytes);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  coffer::JsonLimits small;
  small.max_depth = 1 + data[0] % 8;
  small.max_string_bytes = data[1] % 64;
  small.max_object_entries = data[2] % 8;
  small.max_array_elements = data[3] % 8;
  const std::string text(reinterpret_cast<const char*>(data) + 4, size - 4);
  auto limited = coffer::ParseUntrustedJson(text, small);
  auto full = coffer::ParseUntrustedJson(text);
  if (limited.ok()) {
    Check(full.ok() && *full == *limited);
    CheckWithin(*limited, small);
  }
  if (full.ok()) {
    const std::string again = boost::json::serialize(*full);
    // Equal up to kinds: Boost 1.81 reads some doubles one ulp off their shortest form.
    auto reparsed = coffer::ParseUntrustedJson(again);
    Check(reparsed.ok() && reparsed->kind() == full->kind());
  }
  return 0;
}
