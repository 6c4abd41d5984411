// ACL policies as Vault's: `path "<pattern>" { capabilities = [...] }` in HCL or JSON, with the
// legacy `policy = "read|write|sudo|deny"` shorthand.
//
// Patterns: an exact path; a prefix ending in `*` (glob); `+` matching exactly one segment.
// Rules from all of a token's policies are merged per pattern (capabilities are united; `deny`
// on a pattern removes all). For a request, one pattern decides: an exact match if there is one
// (for LIST also the path without its trailing '/'), else the highest-priority matching
// pattern by Vault's order:
//   1. the pattern whose first wildcard (`+` or `*`) comes later wins;
//   2. a pattern not ending in `*` beats one that does;
//   3. fewer `+` segments win;
//   4. the longer pattern wins;
//   5. the lexicographically larger pattern wins.
// Deny by default: no matching pattern, no capability.
//
// Policy and Acl are immutable after construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/request.h"

namespace coffer::core {

enum Capability : uint32_t {
  kCapDeny = 1u << 0,
  kCapCreate = 1u << 1,
  kCapRead = 1u << 2,
  kCapUpdate = 1u << 3,
  kCapDelete = 1u << 4,
  kCapList = 1u << 5,
  kCapSudo = 1u << 6,
  kCapPatch = 1u << 7,
};

struct PathRule {
  std::string pattern;
  uint32_t caps = 0;
};

struct Policy {
  std::string name;
  std::string raw;  // the text as written
  std::vector<PathRule> rules;
};

// Parses a policy document; errors name the line and what is wrong.
absl::StatusOr<Policy> ParsePolicy(std::string_view name, std::string_view text);
// Policy names: lowercase letters, digits, '-', '_', '.', '@', up to 128 characters.
absl::Status ValidatePolicyName(std::string_view name);

std::vector<std::string> CapabilityNames(uint32_t caps);
// The policy in canonical HCL (paths sorted, capabilities listed). Comments are not kept.
std::string FormatPolicy(const Policy& p);
uint32_t CapabilityFor(Operation op);

// The built-in policies.
const Policy& DefaultPolicy();

class Acl {
 public:
  // `root` grants everything (the root policy).
  static std::shared_ptr<const Acl> Build(
      const std::vector<std::shared_ptr<const Policy>>& policies);

  bool root() const { return root_; }
  // The capabilities the policies give on `path` (kCapDeny alone when denied).
  uint32_t Capabilities(std::string_view path, bool is_list) const;
  // OK, or kPermissionDenied. `needs_sudo` adds the sudo requirement of root-protected paths.
  bool Allows(std::string_view path, Operation op, bool needs_sudo) const;
  // Whether some rule grants something (other than deny) at or under `mount` ("secret/"), or a
  // glob covers it: Vault's test for showing a mount to a caller (sys/internal/ui/mounts).
  bool HasAccessUnder(std::string_view mount) const;

 private:
  struct Wildcard {
    std::string pattern;
    std::vector<std::string> segments;  // split on '/', "+" for a wildcard segment
    bool glob = false;                  // last segment ends with '*'
    uint32_t caps = 0;
  };
  bool MatchesWildcard(const Wildcard& w, std::string_view path) const;

  bool root_ = false;
  absl::flat_hash_map<std::string, uint32_t> exact_;
  absl::flat_hash_map<std::string, uint32_t> prefix_;  // glob patterns without the '*'
  std::vector<size_t> prefix_lengths_;                 // distinct lengths, longest first
  std::vector<Wildcard> wildcard_;
  // '+' rules indexed by their rarest literal segment: key = segment index byte + literal.
  // A request only tests the rules filed under one of its own (index, segment) pairs, plus
  // the rules without a literal segment.
  absl::flat_hash_map<std::string, std::vector<uint32_t>> wildcard_index_;
  std::vector<uint32_t> wildcard_unindexed_;
};

// True if pattern `a` has a higher priority than `b` (the order above).
bool HigherPriority(std::string_view a, std::string_view b);

}  // namespace coffer::core
