// A parser for the HCL subset Vault's configuration and policies use, and for JSON (which it
// reads as the same tree). Every item keeps its line so errors can name it.
//
//   key = value            attributes: strings, numbers, true/false, lists, objects, heredocs
//   name "label" { ... }   blocks; labels nest: storage "sqlite" {..} == storage = { sqlite = {..}
//   } # comment, // comment, /* comment */
//
// Pure functions over their input; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::hcl {

struct Item;

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kList, kObject };
  Kind kind = Kind::kNull;
  int line = 0;
  bool boolean = false;
  double number = 0;
  std::string str;  // kString; for kNumber the literal text
  std::vector<Value> list;
  std::vector<Item> object;
};

struct Item {
  std::string key;
  int line = 0;
  Value value;
};

// Parses a whole document into its top-level items. Errors read "line N: ...".
absl::StatusOr<std::vector<Item>> Parse(std::string_view text);

std::string_view KindName(Value::Kind k);

}  // namespace coffer::hcl
