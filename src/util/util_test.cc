#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <thread>

#include "boost/json.hpp"
#include "util/duration.h"
#include "util/glob.h"
#include "util/json.h"
#include "util/shell.h"
#include "util/suggest.h"

namespace coffer {
namespace {

TEST(StarGlob, StarMatchesAnyRunAnywhere) {
  EXPECT_TRUE(StarGlobMatch("team-*", "team-a"));
  EXPECT_TRUE(StarGlobMatch("team-*", "team-"));
  EXPECT_FALSE(StarGlobMatch("team-*", "team"));
  EXPECT_TRUE(StarGlobMatch("*-admin", "db-admin"));
  EXPECT_FALSE(StarGlobMatch("*-admin", "db-admins"));
  EXPECT_TRUE(StarGlobMatch("a*b*c", "aXbYc"));
  EXPECT_TRUE(StarGlobMatch("a*b*c", "abc"));
  EXPECT_FALSE(StarGlobMatch("a*b*c", "acb"));
  EXPECT_TRUE(StarGlobMatch("a*c", "abcbc"));  // the backtrack past the first "c"
  EXPECT_TRUE(StarGlobMatch("*", ""));
  EXPECT_TRUE(StarGlobMatch("**", "anything"));
  EXPECT_TRUE(StarGlobMatch("", ""));
  EXPECT_FALSE(StarGlobMatch("", "x"));
  EXPECT_FALSE(StarGlobMatch("ops", "op"));
  EXPECT_FALSE(StarGlobMatch("?ps", "ops"));  // no '?': every other character is itself
  EXPECT_FALSE(StarGlobMatch("Team-*", "team-a"));
  EXPECT_TRUE(StarGlobMatch("Team-*", "team-a", /*fold_case=*/true));
}

TEST(Duration, VaultForms) {
  EXPECT_EQ(*ParseDurationSeconds("90"), 90);
  EXPECT_EQ(*ParseDurationSeconds("90s"), 90);
  EXPECT_EQ(*ParseDurationSeconds("15m"), 900);
  EXPECT_EQ(*ParseDurationSeconds("1h30m"), 5400);
  EXPECT_EQ(*ParseDurationSeconds("2d"), 172800);
  EXPECT_EQ(*ParseDurationSeconds("1.5h"), 5400);
  EXPECT_EQ(*ParseDurationSeconds(boost::json::value(3600)), 3600);
}

TEST(Duration, GarbageIsAnErrorNotACrash) {
  // ".h30m" once reached std::stod and threw (found by fuzz/json_body_fuzz).
  for (const char* bad :
       {"", ".h30m", ".", "1.2.3h", "h", "10y", "-5s", "1e400h", "99999999999999999"})
    EXPECT_EQ(ParseDurationSeconds(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(-1)).ok());
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(uint64_t{18000000000000000000u})).ok());
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(int64_t{9000000000000000000})).ok());
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(1e300)).ok());
  EXPECT_FALSE(ParseDurationSeconds("999999999999").ok());
  EXPECT_FALSE(ParseDurationSeconds("200000000000h").ok());
  EXPECT_EQ(*ParseDurationSeconds("876000h"), 876000LL * 3600);  // 100 years: still accepted
  EXPECT_FALSE(ParseDurationSeconds(boost::json::value(boost::json::array{})).ok());
}

TEST(JsonFields, TypesAndMessages) {
  boost::json::object o{
      {"n", 5}, {"s", "7"}, {"b", "true"}, {"x", "abc"}, {"arr", boost::json::array{}}};
  EXPECT_EQ(**JsonInt(o, "n"), 5);
  EXPECT_EQ(**JsonInt(o, "s"), 7);
  EXPECT_EQ(std::string(JsonInt(o, "x").status().message()),
            "field \"x\" must be an integer, got string \"abc\"");
  EXPECT_TRUE(**JsonBool(o, "b"));
  EXPECT_FALSE(JsonBool(o, "arr").ok());
  EXPECT_FALSE(JsonString(o, "n").ok());
  EXPECT_FALSE(JsonInt(o, "missing")->has_value());
  // Doubles outside int64 (or not whole) are refused, never cast (UBSan found the cast).
  boost::json::object big{{"a", 1e300}, {"b", -1e19}, {"c", 2.5}, {"d", 4.0}};
  EXPECT_FALSE(JsonInt(big, "a").ok());
  EXPECT_FALSE(JsonInt(big, "b").ok());
  EXPECT_FALSE(JsonInt(big, "c").ok());
  EXPECT_EQ(**JsonInt(big, "d"), 4);
}

}  // namespace
}  // namespace coffer

namespace coffer {
namespace {

// AppendJsonText writes the bytes boost::json::serialize writes, for every kind of value, every
// byte in a string or key, and nesting deeper than its own recursion goes.
TEST(JsonText, SameBytesAsBoostSerialize) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  boost::json::object o;
  o["null"] = nullptr;
  o["t"] = true;
  o["f"] = false;
  o["min"] = std::numeric_limits<int64_t>::min();
  o["max"] = std::numeric_limits<int64_t>::max();
  o["umax"] = std::numeric_limits<uint64_t>::max();
  o["zero"] = 0;
  o["doubles"] = boost::json::array{1.0, -0.0, 0.1, 1.5e300, -2.5e-300};
  o["all bytes"] = all;
  o[all] = "key with every byte";
  o["empty"] = boost::json::object{};
  o["empty list"] = boost::json::array{};
  o["pem"] = "-----BEGIN CERTIFICATE-----\nMIIB\"x\\y\n-----END CERTIFICATE-----";
  boost::json::value deep = "bottom";
  for (int i = 0; i < 100; ++i)
    deep = i % 2 ? boost::json::value(boost::json::array{deep, i})
                 : boost::json::value(boost::json::object{{"k", deep}});
  o["deep"] = deep;
  std::string got;
  AppendJsonText(got, o);
  EXPECT_EQ(got, boost::json::serialize(o));
  for (const auto& [k, v] : o) {
    std::string one;
    AppendJsonText(one, v);
    EXPECT_EQ(one, boost::json::serialize(v)) << std::string_view(k).substr(0, 20);
  }
  std::string s;
  AppendJsonText(s, std::string_view(all));
  EXPECT_EQ(s, boost::json::serialize(boost::json::string(all)));
}

TEST(Suggest, ClosestWithinTwoEditsOrContained) {
  const std::vector<std::string_view> names = {"write", "read", "list", "delete", "node_name"};
  EXPECT_EQ(EditDistance("wirte", "write"), 2u);
  EXPECT_EQ(ClosestMatch("wirte", names), "write");
  EXPECT_EQ(ClosestMatch("lsit", names), "list");
  EXPECT_EQ(ClosestMatch("nodename", names), "node_name");
  EXPECT_EQ(ClosestMatch("zzzzzz", names), "");
  EXPECT_EQ(ClosestMatch("", names), "");
}

}  // namespace
}  // namespace coffer

namespace coffer {
namespace {

TEST(Shell, RunShellCapturedKeepsTheTailOfWhatTheCommandPrinted) {
  std::string out;
  EXPECT_EQ(RunShellCaptured("echo first; echo second >&2; exit 3", &out), 3);
  EXPECT_EQ(out, "first\nsecond\n");
  EXPECT_EQ(RunShellCaptured("printf 'abcdefgh'", &out, 3), 0);
  EXPECT_EQ(out, "fgh");
  // Escape sequences and invalid UTF-8 never reach a terminal or a JSON document.
  EXPECT_EQ(RunShellCaptured("printf '\\033[2Jok\\377'", &out), 0);
  EXPECT_EQ(out, "?[2Jok?");
  // A command that leaves a child holding its output does not make the caller wait for it.
  EXPECT_EQ(RunShellCaptured("sleep 5 & echo started", &out), 0);
  EXPECT_EQ(out, "started\n");
  EXPECT_EQ(RunShellCaptured("kill -9 $$", &out), 128 + 9);
  EXPECT_EQ(RunShellCaptured("echo ok # a comment", &out), 0);
  EXPECT_EQ(out, "ok\n");
}

// A hook stuck past its timeout is stopped with its whole process group (a child it started
// included), reported as kShellTimedOut, and the caller goes on.
TEST(Shell, ACommandPastItsTimeoutIsKilledWithItsChildren) {
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  const std::string marker =
      (std::filesystem::temp_directory_path() / ("coffer-shell-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove(marker);
  // The child outlives the shell's own wait only if the group is not killed: it would write
  // the marker after 3 s.
  EXPECT_EQ(
      RunShellCaptured("echo begun; (sleep 3; touch '" + marker + "') & sleep 30", &out, 4096, 300),
      kShellTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_NE(out.find("begun"), std::string::npos) << out;
  EXPECT_NE(out.find("the timeout"), std::string::npos) << out;
  std::string why;
  EXPECT_EQ(RunShell("sleep 30", 200, &why), kShellTimedOut);
  EXPECT_NE(why.find("timeout"), std::string::npos) << why;
  // A command that ignores SIGTERM is killed 5 s later.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RunShell("trap '' TERM; sleep 30", 100, &why), kShellTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the hook's child was left running";
  // Within the timeout: the exit status, as before.
  EXPECT_EQ(RunShell("exit 7", 5000), 7);
  EXPECT_EQ(RunShell("true", 0), 0);
}

TEST(Shell, PrintableTextCutsTheHeadOrTheTail) {
  EXPECT_EQ(PrintableText("line\tone\nline\r", 100), "line\tone\nline?");
  EXPECT_EQ(PrintableText("abcdef", 3), "abc...");
  EXPECT_EQ(PrintableText("abcdef", 3, /*tail=*/true), "def");
}

}  // namespace
}  // namespace coffer
