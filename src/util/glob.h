// Vault's '*' glob (go-glob, used for PKI allowed_domains and token roles' *_policies_glob):
// '*' matches any run of characters, empty included, anywhere in the pattern and any number of
// times; every other character matches itself. No '?', no classes, no escapes.
#pragma once

#include <string_view>

namespace coffer {

// Whether `s` matches `pattern`; with fold_case, ASCII letters match either case.
bool StarGlobMatch(std::string_view pattern, std::string_view s, bool fold_case = false);

}  // namespace coffer
