#include "core/acl.h"

#include <gtest/gtest.h>

#include <random>
#include <regex>

namespace coffer::core {
namespace {

std::shared_ptr<const Acl> Make(std::vector<std::string> texts) {
  std::vector<std::shared_ptr<const Policy>> ps;
  int i = 0;
  for (auto& t : texts) {
    std::string name = "p";
    name += std::to_string(i++);
    auto p = ParsePolicy(name, t);
    EXPECT_TRUE(p.ok()) << p.status();
    ps.push_back(std::make_shared<Policy>(std::move(*p)));
  }
  return Acl::Build(ps);
}

TEST(Policy, ParsesHclJsonAndLegacy) {
  auto hcl = ParsePolicy("x", R"(
path "secret/*" { capabilities = ["read", "list"] }
path "secret/admin" { policy = "write" }
path "sys/seal" { capabilities = ["update", "sudo"] }
)");
  ASSERT_TRUE(hcl.ok()) << hcl.status();
  EXPECT_EQ(hcl->rules.size(), 3u);
  auto json = ParsePolicy(
      "y",
      R"({"path": {"secret/*": {"capabilities": ["read"]}, "kv/+/x": {"capabilities": ["deny", "read"]}}})");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->rules.size(), 2u);
  EXPECT_EQ(json->rules[0].caps, kCapDeny) << "deny wins within a rule";
}

TEST(Policy, ErrorsAreActionable) {
  EXPECT_EQ(
      std::string(ParsePolicy("x", R"(path "a" { capabilities = ["reed"] })").status().message()),
      "failed to parse policy: line 1: unknown capability \"reed\": use create, read, update, "
      "patch, delete, list, sudo or deny");
  EXPECT_FALSE(ParsePolicy("x", R"(path "a/*/b" { capabilities = ["read"] })").ok());
  EXPECT_FALSE(
      ParsePolicy("x", R"(path "a" { allowed_parameters = { x = [] } capabilities = ["read"] })")
          .ok());
  EXPECT_FALSE(ParsePolicy("x", R"(path "a" { })").ok());
  EXPECT_FALSE(ParsePolicy("x", R"(pth "a" { capabilities = ["read"] })").ok());
  EXPECT_FALSE(ParsePolicy("x", "path \"a\" {").ok());
  EXPECT_TRUE(ValidatePolicyName("team-a_1.x@y").ok());
  EXPECT_FALSE(ValidatePolicyName("Team").ok());
  EXPECT_FALSE(ValidatePolicyName("a/b").ok());
}

TEST(Acl, PriorityOrderAsVault) {
  EXPECT_TRUE(HigherPriority("secret/a/b", "secret/a/*"));  // no wildcard beats wildcard
  EXPECT_TRUE(HigherPriority("secret/a/+", "secret/+/b"));  // first wildcard later wins
  EXPECT_TRUE(HigherPriority("secret/+/b", "secret/+*"));   // not ending in * wins
  EXPECT_TRUE(HigherPriority("a/+/+/c", "a/+/+*"));
  EXPECT_TRUE(HigherPriority("a/+/b/c", "a/+/+/c"));         // fewer + wins
  EXPECT_TRUE(HigherPriority("secret/abc*", "secret/ab*"));  // longer wins
  EXPECT_TRUE(HigherPriority("secret/b*", "secret/a*"));     // lexicographic
}

TEST(Acl, MatchesAndMerges) {
  auto acl = Make({R"(
path "secret/*" { capabilities = ["read", "list"] }
path "secret/team/+/config" { capabilities = ["update"] }
path "secret/private/*" { capabilities = ["deny"] }
path "kv/exact" { capabilities = ["create"] }
)",
                   R"(
path "secret/*" { capabilities = ["create"] }
path "kv/exact" { capabilities = ["read"] }
)"});
  EXPECT_TRUE(acl->Allows("secret/a", Operation::kRead, false));
  EXPECT_TRUE(acl->Allows("secret/a", Operation::kCreate, false));  // merged from the second policy
  EXPECT_FALSE(acl->Allows("secret/a", Operation::kUpdate, false));
  EXPECT_TRUE(acl->Allows("secret/team/x/config", Operation::kUpdate, false));
  EXPECT_FALSE(
      acl->Allows("secret/team/x/config", Operation::kRead, false));  // + rule decides alone
  EXPECT_TRUE(acl->Allows("secret/team/x/y/config", Operation::kRead, false));  // + is one segment
  EXPECT_FALSE(acl->Allows("secret/private/k", Operation::kRead, false));
  EXPECT_TRUE(acl->Allows("kv/exact", Operation::kRead, false));
  EXPECT_FALSE(acl->Allows("kv/exact/more", Operation::kRead, false));
  EXPECT_FALSE(acl->Allows("other/x", Operation::kRead, false));  // deny by default
  EXPECT_FALSE(acl->Allows("secret/a", Operation::kRead, true));  // sudo path without sudo
}

}  // namespace
}  // namespace coffer::core

namespace coffer::core {
namespace {

// An independent reference: every pattern as a regex, the winner by HigherPriority, exact
// patterns first. The indexed Acl must decide exactly as this does.
uint32_t Reference(const std::vector<PathRule>& rules, const std::string& path) {
  auto to_regex = [](const std::string& pat) {
    std::string re;
    std::string_view p = pat;
    bool glob = !p.empty() && p.back() == '*';
    if (glob) p.remove_suffix(1);
    size_t start = 0;
    while (true) {
      size_t slash = p.find('/', start);
      std::string_view seg =
          p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
      bool last = slash == std::string_view::npos;
      if (seg == "+" && !(last && glob)) {
        re += "[^/]+";
      } else if (seg == "+" && last && glob) {
        re += ".+";
      } else {
        for (char c : seg)
          re += std::isalnum(static_cast<unsigned char>(c)) ? std::string(1, c)
                                                            : std::string("\\") + c;
      }
      if (last) break;
      re += "/";
      start = slash + 1;
    }
    if (glob) re += ".*";
    return std::regex(re);
  };
  for (const auto& r : rules)
    if (r.pattern == path) return r.caps;
  const PathRule* best = nullptr;
  for (const auto& r : rules) {
    bool wildcard =
        r.pattern.find('*') != std::string::npos || r.pattern.find('+') != std::string::npos;
    if (!wildcard || !std::regex_match(path, to_regex(r.pattern))) continue;
    if (!best || HigherPriority(r.pattern, best->pattern)) best = &r;
  }
  return best ? best->caps : 0;
}

TEST(Acl, IndexedLookupMatchesAReferenceOnRandomRules) {
  std::mt19937 rng(20261122);
  const std::vector<std::string> segs = {"a", "b", "ab", "c", "+"};
  auto pick = [&](size_t n) { return rng() % n; };
  for (int round = 0; round < 200; ++round) {
    std::string text;
    std::vector<std::string> patterns;
    for (int r = 0; r < 12; ++r) {
      std::string pat;
      size_t n = 1 + pick(4);
      for (size_t i = 0; i < n; ++i) pat += (i ? "/" : "") + segs[pick(segs.size())];
      if (pick(3) == 0) pat += pick(2) ? "*" : "/*";
      if (pat.find('+') != std::string::npos && pat.find("+*") != std::string::npos) continue;
      patterns.push_back(pat);
      static const char* caps[] = {"read", "list", "update", "deny", "create"};
      text += "path \"" + pat + "\" { capabilities = [\"" + caps[pick(5)] + "\"] }\n";
    }
    auto policy = ParsePolicy("r", text);
    ASSERT_TRUE(policy.ok()) << policy.status() << "\n" << text;
    auto acl = Acl::Build({std::make_shared<Policy>(*policy)});
    for (int q = 0; q < 40; ++q) {
      std::string path;
      size_t n = 1 + pick(5);
      for (size_t i = 0; i < n; ++i) path += (i ? "/" : "") + segs[pick(segs.size() - 1)];
      if (pick(4) == 0) path += "/";
      EXPECT_EQ(acl->Capabilities(path, false), Reference(policy->rules, path)) << path << "\n"
                                                                                << text;
    }
  }
}

}  // namespace
}  // namespace coffer::core
