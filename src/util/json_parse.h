// Parsing JSON that came from outside (request bodies, fields holding JSON, other services'
// answers) with bounds on what it may cost, as Vault's listener bounds it since 1.20.3
// (max_json_depth, max_json_string_value_length, max_json_object_entry_count,
// max_json_array_element_count; same defaults). The bytes are first walked once without
// building anything, so a body over a limit costs a scan, never its parsed size in memory (a
// 30 MB array of zeros is 480 MB as values). Numbers that overflow to infinity are refused: a
// stored Infinity could never be written back as JSON.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"

namespace coffer {

struct JsonLimits {
  size_t max_depth = 500;                 // nesting of objects and arrays
  size_t max_string_bytes = 1024 * 1024;  // one string, key or number literal
  size_t max_object_entries = 10000;      // entries of one object
  size_t max_array_elements = 10000;      // elements of one array
  // Values and keys in the whole document (Vault's max_json_token; Coffer's default): nested
  // arrays within the other limits could otherwise hold 10000^depth values.
  size_t max_tokens = 1'000'000;
};

// The value, or InvalidArgument naming the syntax error or the limit (with its config key).
absl::StatusOr<boost::json::value> ParseUntrustedJson(std::string_view text,
                                                      const JsonLimits& limits = {});

}  // namespace coffer
