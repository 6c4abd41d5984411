// kv version 2 through a real core (type "kv" with options.version "2"): every endpoint's status
// and body, check-and-set, what delete, destroy and max_versions leave in physical storage,
// delete_version_after on a fake clock, the upgrade of version 1 data, JSON merge patch, and
// concurrent check-and-set writers.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "engines/kv/kv_backend.h"
#include "registry/test_harness.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::kv {
namespace {
namespace json = boost::json;
using core::Operation;

// The HTTP status the core's answer becomes.
int Code(const absl::StatusOr<core::Response>& r) {
  if (!r.ok()) return core::HttpStatusFor(r.status());
  if (r->http_status) return r->http_status;
  return r->data || !r->warnings.empty() ? 200 : 204;
}

std::string Ser(const json::value& v) { return json::serialize(v); }

class NoSystem final : public core::SystemView {
 public:
  int64_t DefaultLeaseTtl() const override { return 3600; }
  int64_t MaxLeaseTtl() const override { return 7200; }
  core::TokenStore* Tokens() const override { return nullptr; }
};

class KvV2Test : public coffer::testing::CoreHarness {
 protected:
  void SetUp() override {
    CoreHarness::SetUp();  // the fake clock starts at 2027-01-15T08:00:00Z
    Must(Operation::kUpdate, "sys/mounts/secret",
         {{"type", "kv"}, {"options", json::object{{"version", "2"}}}});
  }
  // The request must succeed with a 2xx (hides the harness's Must, which lets a 404 with a body
  // through).
  core::Response Must(Operation op, const std::string& path, json::object data = {}) {
    auto r = Do(op, path, std::move(data));
    EXPECT_TRUE(r.ok() && Code(r) < 300) << path << ": "
                                         << (!r.ok()   ? Msg(r.status())
                                             : r->data ? Ser(*r->data)
                                                       : "no data");
    return r.ok() ? *r : core::Response();
  }
  // Writes data/<path> and returns the new version.
  int64_t Put(const std::string& path, json::object data, std::optional<int64_t> cas = {}) {
    json::object body{{"data", std::move(data)}};
    if (cas) body["options"] = json::object{{"cas", *cas}};
    auto r = Must(Operation::kUpdate, "secret/data/" + path, std::move(body));
    return r.data ? r.data->at("version").as_int64() : -1;
  }
  // Physical keys under the mount's view, relative to it ("versions/<hash>/1", "metadata/a").
  std::set<std::string> MountKeys(const std::string& mount = "secret") {
    auto r = Do(Operation::kRead, "sys/mounts/" + mount);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    const std::string prefix =
        Cat("logical/", std::string_view(r->data->at("uuid").as_string()), "/");
    std::set<std::string> out;
    for (const auto& k : PhysicalKeys(prefix)) out.insert(k.substr(prefix.size()));
    return out;
  }
  static std::string VersionKey(std::string_view path, int64_t n) {
    return Cat("versions/", HexEncode(crypto::Sha256(path)), "/", n);
  }
};

TEST_F(KvV2Test, WriteAndReadHaveVaultsShapes) {
  clock_.Advance(absl::Nanoseconds(945319214));
  auto w = Must(Operation::kUpdate, "secret/data/app/db", {{"data", json::object{{"user", "u"}}}});
  EXPECT_EQ(Ser(*w.data),
            R"({"created_time":"2027-01-15T08:00:00.945319214Z","custom_metadata":null,)"
            R"("deletion_time":"","destroyed":false,"version":1})");
  clock_.Advance(absl::Nanoseconds(54680786));  // a whole second: no fraction, as Go prints it
  Put("app/db", {{"user", "v"}});

  auto latest = Must(Operation::kRead, "secret/data/app/db");
  EXPECT_EQ(Ser(*latest.data),
            R"({"data":{"user":"v"},"metadata":{"created_time":"2027-01-15T08:00:01Z",)"
            R"("custom_metadata":null,"deletion_time":"","destroyed":false,"version":2}})");
  auto v1 = Must(Operation::kRead, "secret/data/app/db", {{"version", "1"}});
  EXPECT_EQ(Ser(v1.data->at("data")), R"({"user":"u"})");
  EXPECT_EQ(v1.data->at("metadata").at("version").as_int64(), 1);
  EXPECT_EQ(v1.lease_duration, 0);

  // A missing secret or version: a plain 404.
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/nope")), 404);
  auto missing = Do(Operation::kRead, "secret/data/app/db", {{"version", 7}});
  EXPECT_EQ(Code(missing), 404);
  EXPECT_FALSE(missing.ok());  // no body: {"errors":[]}

  // No data: 400 with Vault's message; data must be an object.
  auto bad = Do(Operation::kUpdate, "secret/data/app/db", {{"options", json::object{}}});
  EXPECT_EQ(Code(bad), 400);
  EXPECT_EQ(bad.status().message(), "no data provided");
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/data/x", {{"data", "str"}})), 400);
}

TEST_F(KvV2Test, CheckAndSet) {
  EXPECT_EQ(Put("c", {{"v", 1}}, 0), 1);  // cas 0: only when the secret does not exist
  auto again = Do(Operation::kUpdate, "secret/data/c",
                  {{"data", json::object{{"v", 2}}}, {"options", json::object{{"cas", 0}}}});
  EXPECT_EQ(Code(again), 400);
  EXPECT_EQ(again.status().message(), "check-and-set parameter did not match the current version");
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/data/c",
                    {{"data", json::object{{"v", 2}}}, {"options", json::object{{"cas", 5}}}})),
            400);
  EXPECT_EQ(Put("c", {{"v", 2}}, 1), 2);
  // A string holding the number is accepted (Vault's weak decoding); a word is not.
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/data/c",
                    {{"data", json::object{{"v", 3}}}, {"options", json::object{{"cas", "2"}}}})),
            200);
  auto word = Do(Operation::kUpdate, "secret/data/c",
                 {{"data", json::object{{"v", 4}}}, {"options", json::object{{"cas", "two"}}}});
  EXPECT_EQ(word.status().message(), "error parsing check-and-set parameter");

  // cas_required on the key, then on the mount.
  Must(Operation::kUpdate, "secret/metadata/k", {{"cas_required", true}});
  auto need = Do(Operation::kUpdate, "secret/data/k", {{"data", json::object{{"v", 1}}}});
  EXPECT_EQ(Code(need), 400);
  EXPECT_EQ(need.status().message(), "check-and-set parameter required for this call");
  EXPECT_EQ(Put("k", {{"v", 1}}, 0), 1);

  Must(Operation::kUpdate, "secret/config", {{"cas_required", true}});
  need = Do(Operation::kUpdate, "secret/data/other", {{"data", json::object{{"v", 1}}}});
  EXPECT_EQ(need.status().message(), "check-and-set parameter required for this call");
  need = Do(Operation::kPatch, "secret/data/c", {{"data", json::object{{"v", 9}}}});
  EXPECT_EQ(need.status().message(), "check-and-set parameter required for this call");
  // Turning it off on a key of a mount that requires it: Vault's warning, the value ignored.
  auto warn = Must(Operation::kUpdate, "secret/metadata/k", {{"cas_required", false}});
  ASSERT_EQ(warn.warnings.size(), 1u);
  EXPECT_EQ(warn.warnings[0],
            "\"cas_required\" set to false, but is mandated by backend config. This value will "
            "be ignored.");
}

TEST_F(KvV2Test, DeleteUndeleteDestroyAndWhatStorageKeeps) {
  Put("s", {{"pw", "one"}});
  Put("s", {{"pw", "two"}});
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(Code(Do(Operation::kDelete, "secret/data/s")), 204);
  // A deleted version: 404 with the body, data null, metadata filled.
  auto gone = Do(Operation::kRead, "secret/data/s");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->http_status, 404);
  EXPECT_EQ(Ser(*gone->data),
            R"({"data":null,"metadata":{"created_time":"2027-01-15T08:00:00Z",)"
            R"("custom_metadata":null,"deletion_time":"2027-01-15T08:00:05Z","destroyed":false,)"
            R"("version":2}})");
  // The soft-deleted version's data is still in storage.
  EXPECT_TRUE(MountKeys().contains(VersionKey("s", 2)));

  Must(Operation::kUpdate, "secret/undelete/s", {{"versions", json::array{2}}});
  EXPECT_EQ(Ser(Must(Operation::kRead, "secret/data/s").data->at("data")), R"({"pw":"two"})");

  // delete/ with a comma-separated string; destroy/ with strings.
  Must(Operation::kUpdate, "secret/delete/s", {{"versions", "1, 2"}});
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/s", {{"version", 1}})), 404);
  Must(Operation::kUpdate, "secret/destroy/s", {{"versions", json::array{"1"}}});
  auto destroyed = Do(Operation::kRead, "secret/data/s", {{"version", 1}});
  EXPECT_EQ(Code(destroyed), 404);
  EXPECT_TRUE(destroyed->data->at("metadata").at("destroyed").as_bool());
  // Destroyed: its bytes are gone; version 2's are not. A destroyed version stays destroyed.
  auto keys = MountKeys();
  EXPECT_FALSE(keys.contains(VersionKey("s", 1)));
  EXPECT_TRUE(keys.contains(VersionKey("s", 2)));
  Must(Operation::kUpdate, "secret/undelete/s", {{"versions", json::array{1, 2}}});
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/s", {{"version", 1}})), 404);
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/s", {{"version", 2}})), 200);

  // Vault's messages without versions.
  auto none = Do(Operation::kUpdate, "secret/delete/s", {});
  EXPECT_EQ(none.status().message(), "No version number provided");
  none = Do(Operation::kUpdate, "secret/undelete/s", {{"versions", json::array{}}});
  EXPECT_EQ(none.status().message(), "No version number provided");
  none = Do(Operation::kUpdate, "secret/destroy/s", {});
  EXPECT_EQ(none.status().message(), "no version number provided");
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/destroy/s", {{"versions", "x"}})), 400);
  // On a secret that does not exist: nothing to do, 204.
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/destroy/nope", {{"versions", "1"}})), 204);
  EXPECT_EQ(Code(Do(Operation::kDelete, "secret/data/nope")), 204);
}

TEST_F(KvV2Test, MetadataReadWriteListPatchDelete) {
  clock_.Advance(absl::Milliseconds(250));
  Put("app/a", {{"x", 1}});
  clock_.Advance(absl::Seconds(1));
  Put("app/a", {{"x", 2}});
  Put("app/sub/b", {{"x", 1}});
  Put("top", {{"x", 1}});

  auto md = Must(Operation::kRead, "secret/metadata/app/a");
  EXPECT_EQ(
      Ser(*md.data),
      R"({"cas_required":false,"created_time":"2027-01-15T08:00:00.25Z","current_version":2,)"
      R"("custom_metadata":null,"delete_version_after":"0s","max_versions":0,)"
      R"("oldest_version":0,"updated_time":"2027-01-15T08:00:01.25Z","versions":{)"
      R"("1":{"created_time":"2027-01-15T08:00:00.25Z","deletion_time":"","destroyed":false},)"
      R"("2":{"created_time":"2027-01-15T08:00:01.25Z","deletion_time":"","destroyed":false}}})");
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/metadata/nope")), 404);

  // LIST: folders end in '/'; an empty folder is a 404, as in version 1.
  EXPECT_EQ(Ser(Must(Operation::kList, "secret/metadata/").data->at("keys")), R"(["app/","top"])");
  EXPECT_EQ(Ser(Must(Operation::kList, "secret/metadata/app/").data->at("keys")),
            R"(["a","sub/"])");
  EXPECT_EQ(Ser(Must(Operation::kList, "secret/metadata/app").data->at("keys")), R"(["a","sub/"])");
  EXPECT_EQ(Code(Do(Operation::kList, "secret/metadata/empty/")), 404);

  // Write the settings and custom metadata; numbers become strings as Vault decodes them.
  Must(Operation::kUpdate, "secret/metadata/app/a",
       {{"max_versions", 5},
        {"delete_version_after", "1h30m"},
        {"custom_metadata", json::object{{"owner", "ops"}, {"n", 3}}}});
  md = Must(Operation::kRead, "secret/metadata/app/a");
  EXPECT_EQ(md.data->at("max_versions").as_int64(), 5);
  EXPECT_EQ(md.data->at("delete_version_after").as_string(), "1h30m0s");
  EXPECT_EQ(Ser(md.data->at("custom_metadata")), R"({"n":"3","owner":"ops"})");
  // The data read shows the custom metadata too.
  EXPECT_EQ(
      Ser(Must(Operation::kRead, "secret/data/app/a").data->at("metadata").at("custom_metadata")),
      R"({"n":"3","owner":"ops"})");

  // PATCH merges: null removes a custom key, other settings stay.
  Must(Operation::kPatch, "secret/metadata/app/a",
       {{"custom_metadata", json::object{{"n", nullptr}, {"team", "blue"}}}, {"max_versions", 7}});
  md = Must(Operation::kRead, "secret/metadata/app/a");
  EXPECT_EQ(Ser(md.data->at("custom_metadata")), R"({"owner":"ops","team":"blue"})");
  EXPECT_EQ(md.data->at("max_versions").as_int64(), 7);
  EXPECT_EQ(md.data->at("delete_version_after").as_string(), "1h30m0s");
  EXPECT_EQ(Code(Do(Operation::kPatch, "secret/metadata/nope", {{"max_versions", 1}})), 404);

  // A metadata write on a new path makes a secret without versions.
  Must(Operation::kUpdate, "secret/metadata/fresh",
       {{"custom_metadata", json::object{{"a", "b"}}}});
  md = Must(Operation::kRead, "secret/metadata/fresh");
  EXPECT_EQ(md.data->at("current_version").as_int64(), 0);
  EXPECT_EQ(Ser(md.data->at("versions")), "{}");
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/fresh")), 404);
  // No field: nothing written.
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/metadata/ghost", {})), 204);
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/metadata/ghost")), 404);

  // DELETE: every version's data and the record are gone from physical storage.
  const size_t before = MountKeys().size();
  EXPECT_EQ(Code(Do(Operation::kDelete, "secret/metadata/app/a")), 204);
  auto keys = MountKeys();
  EXPECT_EQ(keys.size(), before - 3);
  EXPECT_FALSE(keys.contains("metadata/app/a"));
  const std::string v1 = VersionKey("app/a", 1), folder = v1.substr(0, v1.rfind('/') + 1);
  for (const auto& k : keys) EXPECT_FALSE(k.starts_with(folder)) << k;
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/metadata/app/a")), 404);
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/app/a")), 404);
  EXPECT_TRUE(keys.contains("metadata/app/sub/b"));
}

TEST_F(KvV2Test, CustomMetadataLimitsAreVaults) {
  auto r =
      Do(Operation::kUpdate, "secret/metadata/m", {{"custom_metadata", json::object{{"", "v"}}}});
  EXPECT_EQ(Code(r), 400);
  EXPECT_EQ(r.status().message(),
            "1 error occurred:\n\t* custom_metadata validation failed: length of key \"\" is 0 "
            "but must be 0 < len(key) <= 128\n\n");
  r = Do(Operation::kUpdate, "secret/metadata/m",
         {{"custom_metadata", json::object{{"k", std::string(513, 'v')}, {"b\tad", "x"}}}});
  EXPECT_EQ(r.status().message(),
            "2 errors occurred:\n\t* custom_metadata validation failed: key \"b\\tad\" (b\tad) "
            "contains unprintable characters\n\t* custom_metadata validation failed: length of "
            "value for key \"k\" is 513 but must be 0 < len(value) <= 512\n\n");
  json::object many;
  for (int i = 0; i < 65; ++i) many[Cat("k", i)] = "v";
  r = Do(Operation::kUpdate, "secret/metadata/m", {{"custom_metadata", many}});
  EXPECT_EQ(r.status().message(),
            "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at "
            "most 64 keys, provided 65\n\n");
  r = Do(Operation::kUpdate, "secret/metadata/m",
         {{"custom_metadata", json::object{{"k", json::object{}}}}});
  EXPECT_EQ(Code(r), 400);
  // Several patches cannot grow the map past the limit.
  many.erase("k64");
  Must(Operation::kUpdate, "secret/metadata/m", {{"custom_metadata", many}});
  r = Do(Operation::kPatch, "secret/metadata/m", {{"custom_metadata", json::object{{"z", "v"}}}});
  EXPECT_EQ(Code(r), 400);
}

TEST_F(KvV2Test, MaxVersionsPrunesTheOldestData) {
  Must(Operation::kUpdate, "secret/config", {{"max_versions", 3}});
  EXPECT_EQ(Ser(*Must(Operation::kRead, "secret/config").data),
            R"({"cas_required":false,"delete_version_after":"0s","max_versions":3})");
  for (int i = 1; i <= 5; ++i) Put("p", {{"i", i}});
  auto md = Must(Operation::kRead, "secret/metadata/p");
  EXPECT_EQ(md.data->at("current_version").as_int64(), 5);
  EXPECT_EQ(md.data->at("oldest_version").as_int64(), 3);
  EXPECT_EQ(Ser(md.data->at("versions").as_object().at("3").at("destroyed")), "false");
  EXPECT_EQ(md.data->at("versions").as_object().size(), 3u);
  auto keys = MountKeys();
  for (int i = 1; i <= 5; ++i)
    EXPECT_EQ(keys.contains(VersionKey("p", i)), i >= 3) << "version " << i;
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/p", {{"version", 2}})), 404);
  EXPECT_EQ(Ser(Must(Operation::kRead, "secret/data/p", {{"version", 3}}).data->at("data")),
            R"({"i":3})");

  // The key keeps the larger of its own max_versions and the mount's (Vault's rule).
  Must(Operation::kUpdate, "secret/metadata/q", {{"max_versions", 4}});
  for (int i = 1; i <= 6; ++i) Put("q", {{"i", i}});
  md = Must(Operation::kRead, "secret/metadata/q");
  EXPECT_EQ(md.data->at("oldest_version").as_int64(), 3);
  EXPECT_EQ(md.data->at("versions").as_object().size(), 4u);
  // A smaller max_versions on the key does not lower the mount's.
  Must(Operation::kUpdate, "secret/metadata/q2", {{"max_versions", 2}});
  for (int i = 1; i <= 4; ++i) Put("q2", {{"i", i}});
  EXPECT_EQ(Must(Operation::kRead, "secret/metadata/q2").data->at("versions").as_object().size(),
            3u);
  // The default is 10.
  Must(Operation::kUpdate, "secret/config", {{"max_versions", 0}});
  for (int i = 1; i <= 11; ++i) Put("r", {{"i", i}});
  md = Must(Operation::kRead, "secret/metadata/r");
  EXPECT_EQ(md.data->at("oldest_version").as_int64(), 2);
  EXPECT_EQ(md.data->at("versions").as_object().size(), 10u);
  EXPECT_FALSE(MountKeys().contains(VersionKey("r", 1)));
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/config", {{"max_versions", -1}})), 400);
}

TEST_F(KvV2Test, DeleteVersionAfterOnAFakeClock) {
  Must(Operation::kUpdate, "secret/config", {{"delete_version_after", "1h"}});
  EXPECT_EQ(Must(Operation::kRead, "secret/config").data->at("delete_version_after").as_string(),
            "1h0m0s");
  auto w = Must(Operation::kUpdate, "secret/data/t", {{"data", json::object{{"a", 1}}}});
  EXPECT_EQ(w.data->at("deletion_time").as_string(), "2027-01-15T09:00:00Z");
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/data/t")), 200);
  clock_.Advance(absl::Minutes(1));
  auto gone = Do(Operation::kRead, "secret/data/t");
  EXPECT_EQ(Code(gone), 404);
  EXPECT_EQ(gone->data->at("metadata").at("deletion_time").as_string(), "2027-01-15T09:00:00Z");
  EXPECT_EQ(Code(Do(Operation::kPatch, "secret/data/t", {{"data", json::object{{"b", 2}}}})), 404);

  // The key's shorter setting wins; undelete restarts the count from now.
  Must(Operation::kUpdate, "secret/metadata/t", {{"delete_version_after", "10m"}});
  w = Must(Operation::kUpdate, "secret/data/t", {{"data", json::object{{"a", 2}}}});
  EXPECT_EQ(w.data->at("deletion_time").as_string(), "2027-01-15T09:10:00Z");
  Must(Operation::kUpdate, "secret/undelete/t", {{"versions", json::array{1}}});
  EXPECT_EQ(Must(Operation::kRead, "secret/data/t", {{"version", 1}})
                .data->at("metadata")
                .at("deletion_time")
                .as_string(),
            "2027-01-15T09:10:00Z");

  // A negative duration on the mount disables it for every key.
  Must(Operation::kUpdate, "secret/config", {{"delete_version_after", "-1s"}});
  EXPECT_EQ(Must(Operation::kRead, "secret/config").data->at("delete_version_after").as_string(),
            "-1s");
  w = Must(Operation::kUpdate, "secret/data/t", {{"data", json::object{{"a", 3}}}});
  EXPECT_EQ(w.data->at("deletion_time").as_string(), "");
  // 0 clears it.
  Must(Operation::kUpdate, "secret/config", {{"delete_version_after", 0}});
  EXPECT_EQ(Must(Operation::kRead, "secret/config").data->at("delete_version_after").as_string(),
            "0s");
  EXPECT_EQ(Code(Do(Operation::kUpdate, "secret/config", {{"delete_version_after", "soon"}})), 400);
}

TEST_F(KvV2Test, PatchIsAJsonMergePatch) {
  Put("m", {{"a", 1}, {"b", json::object{{"c", 2}, {"d", 3}}}, {"e", 4}});
  auto r = Must(Operation::kPatch, "secret/data/m",
                {{"data", json::object{{"b", json::object{{"c", nullptr}, {"f", 5}}},
                                       {"e", nullptr},
                                       {"g", json::array{1, 2}}}}});
  EXPECT_EQ(r.data->at("version").as_int64(), 2);
  EXPECT_EQ(Ser(Must(Operation::kRead, "secret/data/m").data->at("data")),
            R"({"a":1,"b":{"d":3,"f":5},"g":[1,2]})");
  // With cas: the current version only.
  auto bad = Do(Operation::kPatch, "secret/data/m",
                {{"data", json::object{{"a", 9}}}, {"options", json::object{{"cas", 1}}}});
  EXPECT_EQ(bad.status().message(), "check-and-set parameter did not match the current version");
  Must(Operation::kPatch, "secret/data/m",
       {{"data", json::object{{"a", 9}}}, {"options", json::object{{"cas", 2}}}});
  // Nothing to patch: 404; a deleted latest version: 404 with its metadata (flat, as Vault).
  EXPECT_EQ(Code(Do(Operation::kPatch, "secret/data/nope", {{"data", json::object{{"a", 1}}}})),
            404);
  Must(Operation::kDelete, "secret/data/m");
  auto deleted = Do(Operation::kPatch, "secret/data/m", {{"data", json::object{{"a", 1}}}});
  EXPECT_EQ(Code(deleted), 404);
  EXPECT_EQ(deleted->data->at("version").as_int64(), 3);
  EXPECT_EQ(Do(Operation::kPatch, "secret/data/m", {}).status().message(), "no data provided");
}

TEST_F(KvV2Test, SubkeysReplaceValuesWithNull) {
  Put("sk", {{"foo", "abc"}, {"bar", json::object{{"baz", "def"}}}, {"quux", json::object{}}});
  auto r = Must(Operation::kRead, "secret/subkeys/sk");
  EXPECT_EQ(Ser(r.data->at("subkeys")), R"({"foo":null,"bar":{"baz":null},"quux":null})");
  EXPECT_EQ(r.data->at("metadata").at("version").as_int64(), 1);
  r = Must(Operation::kRead, "secret/subkeys/sk", {{"depth", "1"}});
  EXPECT_EQ(Ser(r.data->at("subkeys")), R"({"foo":null,"bar":null,"quux":null})");
  EXPECT_EQ(Code(Do(Operation::kRead, "secret/subkeys/nope")), 404);
  Must(Operation::kDelete, "secret/data/sk");
  auto gone = Do(Operation::kRead, "secret/subkeys/sk");
  EXPECT_EQ(Code(gone), 404);
  EXPECT_TRUE(gone->data->at("subkeys").is_null());
}

TEST_F(KvV2Test, RootAndUnknownPathsAnswerAsVaultDoes) {
  auto expect_warning = [&](Operation op, const std::string& path, const std::string& warning) {
    auto r = Do(op, path);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status();
    EXPECT_EQ(r->http_status, 404) << path;
    ASSERT_EQ(r->warnings.size(), 1u) << path;
    EXPECT_EQ(r->warnings[0], warning) << path;
  };
  const std::string root =
      "Non-listing operations on the root of a K/V v2 mount are not supported.";
  auto invalid = [](std::string_view sub) {
    return Cat(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the "
        "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ",
        sub, "' for this operation.");
  };
  for (const char* p : {"secret/data", "secret/metadata", "secret/delete", "secret/destroy"})
    expect_warning(Operation::kRead, p, root);
  expect_warning(Operation::kRead, "secret/", invalid("get"));
  expect_warning(Operation::kRead, "secret/app/db", invalid("get"));
  expect_warning(Operation::kUpdate, "secret/app/db", invalid("put"));
  expect_warning(Operation::kList, "secret/", invalid("list"));
  expect_warning(Operation::kList, "secret/data/", invalid("list"));
  expect_warning(Operation::kDelete, "secret/data/dir/", invalid("delete"));
  expect_warning(Operation::kPatch, "secret/data/", invalid("patch"));
  // A declared path without the operation: Vault's bare 405.
  auto r = Do(Operation::kPatch, "secret/config");
  EXPECT_EQ(Code(r), 405);
  EXPECT_EQ(r.status().message(), "unsupported operation");
  expect_warning(Operation::kList, "secret/data/a/", invalid("list"));
  // The secret path's rules hold as in version 1.
  EXPECT_EQ(Do(Operation::kRead, "secret/data/a/../b").status().message(),
            "path segments \".\" and \"..\" are not allowed");
  EXPECT_EQ(Do(Operation::kUpdate, "secret/metadata/", {{"max_versions", 1}}).status().message(),
            "missing path");
}

TEST_F(KvV2Test, ExistenceCheckAsksForCreateOnNewSecrets) {
  Put("old", {{"v", 1}});
  Must(Operation::kUpdate, "sys/policies/acl/p",
       {{"policy", R"(path "secret/data/*" { capabilities = ["update"] })"}});
  auto t = Must(Operation::kUpdate, "auth/token/create", {{"policies", json::array{"p"}}});
  const std::string tok(t.auth->at("client_token").as_string());
  EXPECT_TRUE(
      Do(Operation::kUpdate, "secret/data/old", {{"data", json::object{{"v", 2}}}}, tok).ok());
  EXPECT_EQ(
      Code(Do(Operation::kUpdate, "secret/data/new", {{"data", json::object{{"v", 1}}}}, tok)),
      403);
}

TEST_F(KvV2Test, OptionsVersionPicksTheEngine) {
  auto r = Do(Operation::kUpdate, "sys/mounts/v3",
              {{"type", "kv"}, {"options", json::object{{"version", "3"}}}});
  EXPECT_EQ(Code(r), 400);
  EXPECT_NE(r.status().message().find("unknown kv version"), std::string_view::npos) << r.status();
  Must(Operation::kUpdate, "sys/mounts/v1",
       {{"type", "kv"}, {"options", json::object{{"version", "1"}}}});
  Must(Operation::kUpdate, "v1/plain", {{"a", "b"}});
  EXPECT_EQ(Ser(*Must(Operation::kRead, "v1/plain").data), R"({"a":"b"})");
  // A new version 2 mount holds nothing but the format marker.
  EXPECT_EQ(MountKeys(), std::set<std::string>{"kv-v2-format"});
}

TEST_F(KvV2Test, SpecialPathsAreVaults) {
  core::BackendConfig cfg;
  storage::MemoryStorage mem;
  NoSystem sys;
  cfg.entry.type = "kv";
  cfg.entry.options = json::object{{"version", "2"}};
  cfg.storage = &mem;
  cfg.clock = &clock_;
  cfg.system = &sys;
  auto b = Factory(cfg);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE((*b)->Special().root.entries().empty());
  EXPECT_TRUE((*b)->Special().unauthenticated.entries().empty());
  EXPECT_TRUE((*b)->Special().seal_wrap_storage.Matches(VersionKey("a", 1)));
}

// A mount's view holding version 1 secrets, read by a version 2 backend created over it (what
// tuning options.version from 1 to 2 does).
TEST_F(KvV2Test, UpgradeFromVersion1KeepsEverySecretAsVersion1) {
  Must(Operation::kUpdate, "sys/mounts/old", {{"type", "kv"}});
  const std::map<std::string, std::string> v1 = {
      {"x", R"({"who":"x"})"},
      {"metadata/x", R"({"who":"metadata/x"})"},  // collides with x's version 2 metadata key
      {"a/b/c", R"({"deep":true,"ttl":"1h"})"},
      {"config", R"({"max_versions":"not a setting"})"},
      {"kv-v2-format", R"({"not":"the marker"})"}};
  for (const auto& [k, v] : v1) Must(Operation::kUpdate, "old/" + k, json::parse(v).as_object());
  const size_t v1_keys = MountKeys("old").size();
  ASSERT_EQ(v1_keys, v1.size());

  clock_.Advance(absl::Seconds(30));
  storage::Storage* view = core_->MountStorage("old/");
  ASSERT_NE(view, nullptr);
  NoSystem sys;
  core::BackendConfig cfg;
  cfg.entry.path = "old/";
  cfg.entry.type = "kv";
  cfg.entry.options = json::object{{"version", "2"}};
  cfg.storage = view;
  cfg.clock = &clock_;
  cfg.system = &sys;
  auto made = Factory(cfg);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<core::Backend> b = std::move(*made);
  ASSERT_TRUE(b->Initialize().ok());
  auto call = [&](Operation op, std::string path, json::object data = {}) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.mount_point = "old/";
    r.mount_type = "kv";
    r.storage = view;
    return b->Handle(r);
  };
  for (const auto& [k, v] : v1) {
    auto r = call(Operation::kRead, "data/" + k);
    ASSERT_TRUE(r.ok()) << k << ": " << r.status();
    ASSERT_EQ(r->http_status, 0) << k;
    EXPECT_EQ(Ser(r->data->at("data")), v) << k;
    EXPECT_EQ(r->data->at("metadata").at("version").as_int64(), 1) << k;
    EXPECT_EQ(r->data->at("metadata").at("created_time").as_string(), "2027-01-15T08:00:30Z");
  }
  auto list = call(Operation::kList, "metadata/");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Ser(list->data->at("keys")), R"(["a/","config","kv-v2-format","metadata/","x"])");
  // Physically: no version 1 key is left; each secret is a record and a version, plus the marker.
  auto keys = MountKeys("old");
  EXPECT_EQ(keys.size(), 2 * v1.size() + 1);
  for (const auto& [k, v] : v1) {
    EXPECT_TRUE(keys.contains("metadata/" + k)) << k;
    EXPECT_TRUE(keys.contains(VersionKey(k, 1))) << k;
  }
  EXPECT_FALSE(keys.contains("a/b/c"));

  // A second start finds the marker and changes nothing.
  auto again = Factory(cfg);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Initialize().ok());
  EXPECT_EQ(MountKeys("old"), keys);
  auto w = call(Operation::kUpdate, "data/x", {{"data", json::object{{"who", "x2"}}}});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->data->at("version").as_int64(), 2);
}

// The operator's way: tuning options.version from 1 to 2 re-creates the backend over the same
// view; the data is converted once, and a restart (unseal) finds it converted.
TEST_F(KvV2Test, TuningAVersion1MountTo2ConvertsItsDataOnce) {
  Must(Operation::kUpdate, "sys/mounts/tuned", {{"type", "kv"}});
  Must(Operation::kUpdate, "tuned/x", {{"who", "x"}});
  Must(Operation::kUpdate, "tuned/metadata/x", {{"who", "metadata/x"}});
  Must(Operation::kUpdate, "tuned/dir/y", {{"who", "y"}});
  Must(Operation::kUpdate, "sys/mounts/tuned/tune", {{"options", json::object{{"version", "2"}}}});
  // What data/<path> reads as: "<who>@<version>".
  auto at = [&](const std::string& path) {
    auto r = Must(Operation::kRead, "tuned/data/" + path);
    if (!r.data) return std::string("nothing");
    return Cat(std::string_view(r.data->at("data").at("who").as_string()), "@",
               r.data->at("metadata").at("version").as_int64());
  };
  EXPECT_EQ(at("x"), "x@1");
  EXPECT_EQ(at("metadata/x"), "metadata/x@1");
  EXPECT_EQ(at("dir/y"), "y@1");
  EXPECT_EQ(Ser(Must(Operation::kList, "tuned/metadata/").data->at("keys")),
            R"(["dir/","metadata/","x"])");
  const auto keys = MountKeys("tuned");
  EXPECT_EQ(keys.size(), 7u);  // 3 records, 3 versions, the marker
  EXPECT_FALSE(keys.contains("dir/y"));
  Must(Operation::kUpdate, "tuned/data/x", {{"data", json::object{{"who", "x2"}}}});
  Restart();
  EXPECT_EQ(at("x"), "x2@2");
  EXPECT_EQ(at("metadata/x"), "metadata/x@1");
  EXPECT_EQ(at("dir/y"), "y@1");
  EXPECT_EQ(MountKeys("tuned").size(), 8u);
}

// Writers racing on one secret with check-and-set: every accepted write got its own version,
// and the versions are exactly 1..n.
TEST_F(KvV2Test, ConcurrentCasWritersGetDistinctVersions) {
  Must(Operation::kUpdate, "secret/config", {{"max_versions", 1000}});
  constexpr int kThreads = 6, kWritesEach = 25;
  constexpr size_t kTotal = size_t{kThreads} * kWritesEach;
  std::atomic<int> conflicts{0};
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int done = 0; done < kWritesEach;) {
        auto md = Do(Operation::kRead, "secret/metadata/race");
        const int64_t cur = md.ok() ? md->data->at("current_version").as_int64() : 0;
        auto w = Do(Operation::kUpdate, "secret/data/race",
                    {{"data", json::object{{"t", t}, {"n", done}}},
                     {"options", json::object{{"cas", cur}}}});
        if (w.ok()) {
          got[t].push_back(w->data->at("version").as_int64());
          ++done;
        } else {
          EXPECT_EQ(w.status().message(),
                    "check-and-set parameter did not match the current version");
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<int64_t> all;
  size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(total, kTotal);
  EXPECT_EQ(all.size(), total);
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), static_cast<int64_t>(kTotal));
  auto md = Must(Operation::kRead, "secret/metadata/race");
  EXPECT_EQ(md.data->at("current_version").as_int64(), static_cast<int64_t>(kTotal));
  EXPECT_EQ(md.data->at("versions").as_object().size(), kTotal);
}

}  // namespace
}  // namespace coffer::engines::kv
