#include "core/acl.h"

#include <gtest/gtest.h>

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
  auto json = ParsePolicy("y", R"({"path": {"secret/*": {"capabilities": ["read"]}, "kv/+/x": {"capabilities": ["deny", "read"]}}})");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_EQ(json->rules.size(), 2u);
  EXPECT_EQ(json->rules[0].caps, kCapDeny) << "deny wins within a rule";
}

TEST(Policy, ErrorsAreActionable) {
  EXPECT_EQ(std::string(ParsePolicy("x", R"(path "a" { capabilities = ["reed"] })").status().message()),
            "failed to parse policy: line 1: unknown capability \"reed\": use create, read, update, patch, delete, list, sudo or deny");
  EXPECT_FALSE(ParsePolicy("x", R"(path "a/*/b" { capabilities = ["read"] })").ok());
  EXPECT_FALSE(ParsePolicy("x", R"(path "a" { allowed_parameters = { x = [] } capabilities = ["read"] })").ok());
  EXPECT_FALSE(ParsePolicy("x", R"(path "a" { })").ok());
  EXPECT_FALSE(ParsePolicy("x", R"(pth "a" { capabilities = ["read"] })").ok());
  EXPECT_FALSE(ParsePolicy("x", "path \"a\" {").ok());
  EXPECT_TRUE(ValidatePolicyName("team-a_1.x@y").ok());
  EXPECT_FALSE(ValidatePolicyName("Team").ok());
  EXPECT_FALSE(ValidatePolicyName("a/b").ok());
}

TEST(Acl, PriorityOrderAsVault) {
  EXPECT_TRUE(HigherPriority("secret/a/b", "secret/a/*"));   // no wildcard beats wildcard
  EXPECT_TRUE(HigherPriority("secret/a/+", "secret/+/b"));   // first wildcard later wins
  EXPECT_TRUE(HigherPriority("secret/+/b", "secret/+*"));    // not ending in * wins
  EXPECT_TRUE(HigherPriority("a/+/+/c", "a/+/+*"));
  EXPECT_TRUE(HigherPriority("a/+/b/c", "a/+/+/c"));          // fewer + wins
  EXPECT_TRUE(HigherPriority("secret/abc*", "secret/ab*"));  // longer wins
  EXPECT_TRUE(HigherPriority("secret/b*", "secret/a*"));     // lexicographic
}

TEST(Acl, MatchesAndMerges) {
  auto acl = Make({R"(
path "secret/*" { capabilities = ["read", "list"] }
path "secret/team/+/config" { capabilities = ["update"] }
path "secret/private/*" { capabilities = ["deny"] }
path "kv/exact" { capabilities = ["create"] }
)", R"(
path "secret/*" { capabilities = ["create"] }
path "kv/exact" { capabilities = ["read"] }
)"});
  EXPECT_TRUE(acl->Allows("secret/a", Operation::kRead, false));
  EXPECT_TRUE(acl->Allows("secret/a", Operation::kCreate, false));  // merged from the second policy
  EXPECT_FALSE(acl->Allows("secret/a", Operation::kUpdate, false));
  EXPECT_TRUE(acl->Allows("secret/team/x/config", Operation::kUpdate, false));
  EXPECT_FALSE(acl->Allows("secret/team/x/config", Operation::kRead, false));  // + rule decides alone
  EXPECT_TRUE(acl->Allows("secret/team/x/y/config", Operation::kRead, false));  // + is one segment
  EXPECT_FALSE(acl->Allows("secret/private/k", Operation::kRead, false));
  EXPECT_TRUE(acl->Allows("kv/exact", Operation::kRead, false));
  EXPECT_FALSE(acl->Allows("kv/exact/more", Operation::kRead, false));
  EXPECT_FALSE(acl->Allows("other/x", Operation::kRead, false));  // deny by default
  EXPECT_FALSE(acl->Allows("secret/a", Operation::kRead, true));  // sudo path without sudo
}

}  // namespace
}  // namespace coffer::core
