#include "core/acl.h"

#include <algorithm>
#include <map>

#include "config/hcl.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::core {
namespace {

absl::StatusOr<uint32_t> CapabilityByName(std::string_view n) {
  if (n == "deny") return kCapDeny;
  if (n == "create") return kCapCreate;
  if (n == "read") return kCapRead;
  if (n == "update") return kCapUpdate;
  if (n == "delete") return kCapDelete;
  if (n == "list") return kCapList;
  if (n == "sudo") return kCapSudo;
  if (n == "patch") return kCapPatch;
  if (n == "root") return absl::InvalidArgumentError("\"root\" is not a capability");
  return absl::InvalidArgumentError(
      Cat("unknown capability \"", n,
          "\": use create, read, update, patch, delete, list, sudo or deny"));
}

absl::StatusOr<uint32_t> LegacyPolicy(std::string_view n) {
  constexpr uint32_t kWrite =
      kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList | kCapPatch;
  if (n == "deny") return kCapDeny;
  if (n == "read") return kCapRead | kCapList;
  if (n == "write") return kWrite;
  if (n == "sudo") return kWrite | kCapSudo;
  return absl::InvalidArgumentError(
      Cat("unknown policy \"", n, "\": use read, write, sudo or deny"));
}

// Position of the first '+' segment or '*' in a pattern (npos if none).
size_t FirstWildcard(std::string_view p) {
  size_t star = p.find('*');
  size_t plus = std::string_view::npos;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '+' && (i == 0 || p[i - 1] == '/') &&
        (i + 1 == p.size() || p[i + 1] == '/' || p[i + 1] == '*')) {
      plus = i;
      break;
    }
  }
  return std::min(star, plus);
}

size_t PlusSegments(std::string_view p) {
  size_t n = 0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] == '+' && (i == 0 || p[i - 1] == '/') &&
        (i + 1 == p.size() || p[i + 1] == '/' || p[i + 1] == '*'))
      ++n;
  return n;
}

bool HasPlusSegment(std::string_view p) { return PlusSegments(p) > 0; }

uint32_t Merge(uint32_t a, uint32_t b) {
  uint32_t m = a | b;
  return (m & kCapDeny) ? kCapDeny : m;
}

}  // namespace

bool HigherPriority(std::string_view a, std::string_view b) {
  size_t wa = FirstWildcard(a), wb = FirstWildcard(b);
  if (wa != wb) return wa > wb;  // npos (no wildcard) is the largest
  bool ga = !a.empty() && a.back() == '*', gb = !b.empty() && b.back() == '*';
  if (ga != gb) return !ga;
  size_t pa = PlusSegments(a), pb = PlusSegments(b);
  if (pa != pb) return pa < pb;
  if (a.size() != b.size()) return a.size() > b.size();
  return a > b;
}

absl::Status ValidatePolicyName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("policy name is required");
  if (name.size() > 128)
    return absl::InvalidArgumentError("policy name is longer than 128 characters");
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '@'))
      return absl::InvalidArgumentError(
          Cat("policy name \"", name,
              "\" may only hold lowercase letters, digits, '-', '_', '.' and '@'"));
  return absl::OkStatus();
}

absl::StatusOr<Policy> ParsePolicy(std::string_view name, std::string_view text) {
  auto items = hcl::Parse(text);
  if (!items.ok())
    return absl::InvalidArgumentError(Cat("failed to parse policy: ", Msg(items.status())));
  Policy p;
  p.name = std::string(name);
  p.raw = std::string(text);
  std::map<std::string, uint32_t> merged;
  auto at = [](int line, std::string_view msg) {
    return absl::InvalidArgumentError(Cat("failed to parse policy: line ", line, ": ", msg));
  };
  for (const auto& item : *items) {
    if (item.key == "name") continue;  // legacy, ignored as Vault does
    if (item.key != "path")
      return at(item.line, Cat("unknown key \"", item.key, "\": a policy holds path blocks"));
    auto one = [&](const hcl::Value& v) -> absl::Status {
      if (v.kind != hcl::Value::Kind::kObject)
        return at(v.line, "path must be a block: path \"secret/*\" { ... }");
      for (const auto& pathitem : v.object) {
        const std::string& pattern = pathitem.key;
        if (pathitem.value.kind != hcl::Value::Kind::kObject)
          return at(pathitem.line, Cat("path \"", pattern, "\" must be a block"));
        size_t star = pattern.find('*');
        if (star != std::string::npos && star + 1 != pattern.size())
          return at(pathitem.line, Cat("path \"", pattern, "\": '*' is only allowed at the end"));
        uint32_t caps = 0;
        bool any = false;
        for (const auto& field : pathitem.value.object) {
          if (field.key == "capabilities") {
            if (field.value.kind != hcl::Value::Kind::kList)
              return at(field.line, "capabilities must be a list such as [\"read\", \"list\"]");
            for (const auto& c : field.value.list) {
              if (c.kind != hcl::Value::Kind::kString)
                return at(c.line, "capabilities must be strings");
              auto cap = CapabilityByName(c.str);
              if (!cap.ok()) return at(c.line, Msg(cap.status()));
              caps |= *cap;
            }
            any = true;
          } else if (field.key == "policy") {
            if (field.value.kind != hcl::Value::Kind::kString)
              return at(field.line, "policy must be a string");
            auto cap = LegacyPolicy(field.value.str);
            if (!cap.ok()) return at(field.line, Msg(cap.status()));
            caps |= *cap;
            any = true;
          } else if (field.key == "allowed_parameters" || field.key == "denied_parameters" ||
                     field.key == "required_parameters" || field.key == "min_wrapping_ttl" ||
                     field.key == "max_wrapping_ttl" || field.key == "control_group" ||
                     field.key == "mfa_methods") {
            // Refused rather than ignored: ignoring a restriction would grant more than written.
            return at(field.line, Cat("\"", field.key, "\" is not supported by Coffer yet"));
          } else {
            return at(field.line, Cat("unknown key \"", field.key, "\" in path \"", pattern, "\""));
          }
        }
        if (!any) return at(pathitem.line, Cat("path \"", pattern, "\" has no capabilities"));
        auto it = merged.find(pattern);
        merged[pattern] =
            it == merged.end() ? ((caps & kCapDeny) ? kCapDeny : caps) : Merge(it->second, caps);
      }
      return absl::OkStatus();
    };
    if (item.value.kind == hcl::Value::Kind::kList) {
      for (const auto& v : item.value.list) RETURN_IF_ERROR(one(v));
    } else {
      RETURN_IF_ERROR(one(item.value));
    }
  }
  for (auto& [pattern, caps] : merged) p.rules.push_back({pattern, caps});
  return p;
}

std::vector<std::string> CapabilityNames(uint32_t caps) {
  if (caps & kCapDeny) return {"deny"};
  std::vector<std::string> out;
  static const std::pair<uint32_t, const char*> kNames[] = {
      {kCapCreate, "create"}, {kCapDelete, "delete"}, {kCapList, "list"},    {kCapPatch, "patch"},
      {kCapRead, "read"},     {kCapSudo, "sudo"},     {kCapUpdate, "update"}};
  for (const auto& [bit, n] : kNames)
    if (caps & bit) out.emplace_back(n);
  if (out.empty()) out.emplace_back("deny");
  return out;
}

std::string FormatPolicy(const Policy& p) {
  std::string out;
  for (const auto& r : p.rules) {
    if (!out.empty()) out += "\n";
    out += Cat("path \"", r.pattern, "\" {\n  capabilities = [");
    auto names = CapabilityNames(r.caps);
    for (size_t i = 0; i < names.size(); ++i) out += Cat(i ? ", " : "", "\"", names[i], "\"");
    out += "]\n}\n";
  }
  return out;
}

uint32_t CapabilityFor(Operation op) {
  switch (op) {
    case Operation::kRead:
    case Operation::kHead:
      return kCapRead;
    case Operation::kCreate:
      return kCapCreate;
    case Operation::kUpdate:
      return kCapUpdate;
    case Operation::kPatch:
      return kCapPatch;
    case Operation::kDelete:
      return kCapDelete;
    case Operation::kList:
      return kCapList;
  }
  return kCapDeny;
}

const Policy& DefaultPolicy() {
  static const Policy* p = [] {
    auto parsed = ParsePolicy("default", R"(# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name (no identity store yet; harmless)
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties: this requires knowing the lease ID and shows nothing secret
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow checking the status of a Control Group request if the user has the accessor
path "sys/control-group/request" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
)");
    return new Policy(std::move(*parsed));
  }();
  return *p;
}

std::shared_ptr<const Acl> Acl::Build(const std::vector<std::shared_ptr<const Policy>>& policies) {
  auto acl = std::make_shared<Acl>();
  for (const auto& p : policies) {
    if (p->name == "root") {
      acl->root_ = true;
      continue;
    }
    for (const auto& r : p->rules) {
      const std::string& pat = r.pattern;
      if (HasPlusSegment(pat)) {
        auto it = std::find_if(acl->wildcard_.begin(), acl->wildcard_.end(),
                               [&](const Wildcard& w) { return w.pattern == pat; });
        if (it != acl->wildcard_.end()) {
          it->caps = Merge(it->caps, r.caps);
          continue;
        }
        Wildcard w;
        w.pattern = pat;
        w.glob = !pat.empty() && pat.back() == '*';
        std::string_view body =
            w.glob ? std::string_view(pat).substr(0, pat.size() - 1) : std::string_view(pat);
        size_t start = 0;
        while (true) {
          size_t slash = body.find('/', start);
          w.segments.emplace_back(body.substr(
              start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
          if (slash == std::string_view::npos) break;
          start = slash + 1;
        }
        w.caps = r.caps;
        acl->wildcard_.push_back(std::move(w));
      } else if (!pat.empty() && pat.back() == '*') {
        std::string prefix = pat.substr(0, pat.size() - 1);
        auto& slot = acl->prefix_[prefix];
        slot = slot ? Merge(slot, r.caps) : r.caps;
      } else {
        auto& slot = acl->exact_[pat];
        slot = slot ? Merge(slot, r.caps) : r.caps;
      }
    }
  }
  for (const auto& [prefix, caps] : acl->prefix_) acl->prefix_lengths_.push_back(prefix.size());
  std::sort(acl->prefix_lengths_.rbegin(), acl->prefix_lengths_.rend());
  acl->prefix_lengths_.erase(std::unique(acl->prefix_lengths_.begin(), acl->prefix_lengths_.end()),
                             acl->prefix_lengths_.end());
  // Index '+' rules by their least common literal segment (the glob's last segment is a prefix,
  // not a literal, so it is never a key).
  absl::flat_hash_map<std::string, int> freq;
  auto keys_of = [](const Wildcard& w) {
    std::vector<std::string> keys;
    size_t n = w.segments.size() - (w.glob ? 1 : 0);
    for (size_t i = 0; i < n && i < 255; ++i)
      if (w.segments[i] != "+")
        keys.push_back(std::string(1, static_cast<char>(i)) + w.segments[i]);
    return keys;
  };
  for (const auto& w : acl->wildcard_)
    for (const auto& k : keys_of(w)) ++freq[k];
  for (uint32_t i = 0; i < acl->wildcard_.size(); ++i) {
    auto keys = keys_of(acl->wildcard_[i]);
    if (keys.empty()) {
      acl->wildcard_unindexed_.push_back(i);
      continue;
    }
    const std::string* best = &keys[0];
    for (const auto& k : keys)
      if (freq[k] < freq[*best]) best = &k;
    acl->wildcard_index_[*best].push_back(i);
  }
  return acl;
}

bool Acl::MatchesWildcard(const Wildcard& w, std::string_view path) const {
  // Segment by segment. "+" matches one non-empty segment; for a glob pattern the last segment
  // is a prefix of whatever remains of the path.
  size_t pos = 0;
  for (size_t i = 0; i < w.segments.size(); ++i) {
    const std::string& seg = w.segments[i];
    const bool last = i + 1 == w.segments.size();
    if (pos > path.size()) return false;
    if (last && w.glob) {
      std::string_view rest = path.substr(pos);
      if (seg == "+") return !rest.empty();
      return rest.substr(0, seg.size()) == seg;
    }
    size_t slash = path.find('/', pos);
    std::string_view ps =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (seg == "+") {
      if (ps.empty()) return false;
    } else if (ps != seg) {
      return false;
    }
    if (last) return slash == std::string_view::npos;
    if (slash == std::string_view::npos) return false;
    pos = slash + 1;
  }
  return false;
}

bool Acl::HasAccessUnder(std::string_view mount) const {
  if (root_) return true;
  auto grants = [](uint32_t caps) { return caps != 0 && !(caps & kCapDeny); };
  auto starts = [](std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; };
  for (const auto& [pattern, caps] : exact_)
    if (grants(caps) && starts(pattern, mount)) return true;
  // A glob "a/b*" covers the mount when either is a prefix of the other.
  for (const auto& [prefix, caps] : prefix_)
    if (grants(caps) && (starts(prefix, mount) || starts(mount, prefix))) return true;
  for (const auto& w : wildcard_) {
    if (!grants(w.caps)) continue;
    // The literal text before the first '+': compatible with the mount either way.
    std::string_view lit = w.pattern;
    lit = lit.substr(0, lit.find('+'));
    if (!lit.empty() && lit.back() == '*') lit.remove_suffix(1);
    if (starts(lit, mount) || starts(mount, lit)) return true;
  }
  return false;
}

uint32_t Acl::Capabilities(std::string_view path, bool is_list) const {
  if (root_)
    return kCapCreate | kCapRead | kCapUpdate | kCapDelete | kCapList | kCapSudo | kCapPatch;
  if (auto it = exact_.find(AbslView(path)); it != exact_.end()) return it->second;
  if (is_list && !path.empty() && path.back() == '/') {
    if (auto it = exact_.find(AbslView(path.substr(0, path.size() - 1))); it != exact_.end())
      return it->second;
  }
  // Longest glob prefix: probe each prefix length once (cost follows the path, not the rules).
  const std::string* best = nullptr;
  uint32_t best_caps = 0;
  std::string best_pattern;
  for (size_t len : prefix_lengths_) {
    if (len > path.size()) continue;
    if (auto it = prefix_.find(AbslView(path.substr(0, len))); it != prefix_.end()) {
      best_pattern = it->first + "*";
      best_caps = it->second;
      best = &best_pattern;
      break;
    }
  }
  // LIST on "a/b/" is also allowed by patterns written for "a/b" (as Vault does).
  std::string_view trimmed =
      is_list && !path.empty() && path.back() == '/' ? path.substr(0, path.size() - 1) : path;
  auto consider = [&](uint32_t idx) {
    const Wildcard& w = wildcard_[idx];
    if (!MatchesWildcard(w, path) &&
        !(trimmed.size() != path.size() && MatchesWildcard(w, trimmed)))
      return;
    if (!best || HigherPriority(w.pattern, *best)) {
      best = &w.pattern;
      best_caps = w.caps;
    }
  };
  for (uint32_t idx : wildcard_unindexed_) consider(idx);
  if (!wildcard_index_.empty()) {
    // Each (index, segment) of the path names the bucket of rules that could match it.
    std::string key;
    size_t pos = 0;
    for (size_t i = 0; pos <= path.size() && i < 255; ++i) {
      size_t slash = path.find('/', pos);
      std::string_view seg =
          path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
      key.assign(1, static_cast<char>(i));
      key.append(seg);
      if (auto it = wildcard_index_.find(key); it != wildcard_index_.end())
        for (uint32_t idx : it->second) consider(idx);
      if (slash == std::string_view::npos) break;
      pos = slash + 1;
    }
  }
  return best ? best_caps : 0;
}

bool Acl::Allows(std::string_view path, Operation op, bool needs_sudo) const {
  if (root_) return true;
  uint32_t caps = Capabilities(path, op == Operation::kList);
  if (caps & kCapDeny) return false;
  if (needs_sudo && !(caps & kCapSudo)) return false;
  return (caps & CapabilityFor(op)) != 0;
}

}  // namespace coffer::core
