// kv version 2: data/<path> (read, write, patch, soft delete of the latest version),
// subkeys/<path>, and delete/, undelete/, destroy/ of chosen versions, with Vault's fields,
// messages and status codes.
#include <charconv>
#include <cmath>

#include "engines/kv/kv_v2_internal.h"
#include "util/duration.h"
#include "util/status.h"

namespace coffer::engines::kv::v2 {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;
using core::framework::Path;

namespace {

// The 404 Vault answers for a deleted or destroyed version: the body says which and when.
Response NotFoundWith(json::object data) {
  Response r = Response::Data(std::move(data));
  r.http_status = 404;
  return r;
}

// options.cas as Vault's weak decoding reads it: an integer, a string holding one, a bool.
absl::StatusOr<int64_t> ParseCas(const json::value& v) {
  const absl::Status bad = absl::InvalidArgumentError("error parsing check-and-set parameter");
  if (v.is_null()) return 0;
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return v.as_uint64() <= INT64_MAX ? static_cast<int64_t>(v.as_uint64()) : -1;
  if (v.is_bool()) return v.as_bool() ? 1 : 0;
  if (v.is_double()) {
    const double d = v.as_double();
    if (d >= -9.2e18 && d <= 9.2e18) return static_cast<int64_t>(d);
    return bad;
  }
  if (v.is_string()) {
    std::string_view s = v.as_string();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return n;
  }
  return bad;
}

// The check-and-set rule of a write or patch: the cas option, when given, must be the current
// version (0: the secret must not exist yet); the mount or the key may make it mandatory.
absl::Status CheckCas(const FieldData& d, const Config& config, const KeyMeta& meta) {
  const json::value& options = d.Get("options");
  const json::value* cas = options.is_object() ? options.as_object().if_contains("cas") : nullptr;
  if (cas) {
    ASSIGN_OR_RETURN(int64_t n, ParseCas(*cas));
    if (n != meta.current)
      return absl::InvalidArgumentError(
          "check-and-set parameter did not match the current version");
    return absl::OkStatus();
  }
  if (config.cas_required || meta.cas_required)
    return absl::InvalidArgumentError("check-and-set parameter required for this call");
  return absl::OkStatus();
}

// RFC 7386 JSON merge patch: objects merge key by key, null removes a key, anything else
// replaces.
json::value MergePatch(json::value target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  if (!target.is_object()) target = json::object();
  json::object& t = target.as_object();
  for (const auto& [k, v] : patch.as_object()) {
    if (v.is_null()) {
      t.erase(k);
      continue;
    }
    json::value current = t.contains(k) ? std::move(t[k]) : json::value(nullptr);
    t[k] = MergePatch(std::move(current), v);
  }
  return target;
}

// Vault's subkeys: every leaf (a non-object, or an empty object) becomes null; objects at
// `max_depth` (when non-zero) are leaves too.
void RemoveValues(json::object& o, int64_t depth, int64_t max_depth) {
  for (auto& [k, v] : o) {
    if (v.is_object() && !v.as_object().empty() && (max_depth == 0 || depth + 1 <= max_depth))
      RemoveValues(v.as_object(), depth + 1, max_depth);
    else
      v = nullptr;
  }
}

// versions (Vault's comma-int-slice): a list of numbers or of strings holding them, or one
// comma-separated string.
absl::StatusOr<std::vector<int64_t>> ParseVersions(const json::value& v) {
  std::vector<int64_t> out;
  auto bad = [](std::string_view item) {
    return absl::InvalidArgumentError(
        Cat("field \"versions\" must be a list of version numbers: \"", item.substr(0, 64),
            "\" is not one"));
  };
  auto one = [&](std::string_view s) -> absl::Status {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (s.empty()) return absl::OkStatus();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size()) return bad(s);
    out.push_back(n);
    return absl::OkStatus();
  };
  auto item = [&](const json::value& x) -> absl::Status {
    if (x.is_int64()) {
      out.push_back(x.as_int64());
    } else if (x.is_double() && x.as_double() == std::floor(x.as_double()) &&
               std::fabs(x.as_double()) < 9.2e18) {
      out.push_back(static_cast<int64_t>(x.as_double()));
    } else if (x.is_string()) {
      std::string_view s = x.as_string();
      size_t start = 0;
      while (start <= s.size()) {
        const size_t comma = s.find(',', start);
        RETURN_IF_ERROR(one(s.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
    } else {
      return bad(json::serialize(x));
    }
    return absl::OkStatus();
  };
  if (v.is_null()) return out;
  if (v.is_array()) {
    for (const auto& x : v.as_array()) RETURN_IF_ERROR(item(x));
  } else {
    RETURN_IF_ERROR(item(v));
  }
  return out;
}

// Reads the version's data for data/ and subkeys/: the record and the data, or the response
// to give instead (a plain 404, or Vault's 404 with the version's metadata).
struct VersionRead {
  std::optional<Response> answer;
  int64_t version = 0;
  json::object metadata;
  json::object data;
};
absl::StatusOr<VersionRead> ReadVersion(KvV2Backend* b, Request& req, const std::string& key,
                                        int64_t wanted, std::string_view body_field) {
  VersionRead out;
  ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
  if (!meta) return absl::NotFoundError("");
  out.version = wanted > 0 ? wanted : meta->current;
  auto it = meta->versions.find(out.version);
  if (it == meta->versions.end()) return absl::NotFoundError("");
  out.metadata = VersionJson(out.version, it->second, *meta);
  if (it->second.DeletedAt(b->Now()) || it->second.destroyed) {
    out.answer = NotFoundWith(json::object{{body_field, nullptr}, {"metadata", out.metadata}});
    return out;
  }
  ASSIGN_OR_RETURN(auto raw, req.storage->Get(KvV2Backend::VersionKey(key, out.version)));
  if (!raw) return absl::DataLossError("could not find version data");
  ASSIGN_OR_RETURN(out.data, ParseStoredObject(*raw, "kv version data"));
  return out;
}

// Writes `data` as the next version of `key` with the metadata and the removal of versions
// past max_versions, in one batch; the response is the new version's metadata. The caller
// holds the key's lock.
absl::StatusOr<Response> Commit(KvV2Backend* b, Request& req, const std::string& key, KeyMeta& meta,
                                const Config& config, const json::object& data, absl::Time now) {
  const VersionMeta v{.created = now, .deletion = DeletionTime(now, config, meta)};
  const std::vector<int64_t> dropped = meta.AddVersion(v, config.max_versions);
  const int64_t version = meta.current;
  std::vector<storage::WriteOp> ops;
  ops.push_back(
      {storage::WriteOp::Kind::kPut, KvV2Backend::VersionKey(key, version), json::serialize(data)});
  for (int64_t old : dropped)
    ops.push_back({storage::WriteOp::Kind::kDelete, KvV2Backend::VersionKey(key, old), ""});
  ops.push_back({storage::WriteOp::Kind::kPut, KvV2Backend::MetaKey(key), meta.Serialize()});
  RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
  return Response::Data(VersionJson(version, v, meta));
}

absl::Status NeedVersions(const std::vector<int64_t>& versions, std::string_view message) {
  return versions.empty() ? absl::InvalidArgumentError(std::string(message)) : absl::OkStatus();
}

// A long poll of data/<key> (Coffer's extension, core/watch.h): ?wait=<duration, at most 5m>
// &after_version=<n>: the answer comes when the key's current version is past n (a write), or
// when the wait is over, whichever is first.
struct LongPoll {
  int64_t wait_ms = 0, after_version = 0;
};
absl::StatusOr<LongPoll> ParseLongPoll(const std::string& wait,
                                       const std::optional<std::string>& after) {
  auto secs = ParseDurationSeconds(wait);
  if (!secs.ok() || *secs < 1 || *secs > 300)
    return absl::InvalidArgumentError(
        Cat("wait \"", wait.substr(0, 32), "\" must be a duration from 1s to 5m, such as \"30s\""));
  int64_t n = -1;
  if (after) {
    auto [end, ec] = std::from_chars(after->data(), after->data() + after->size(), n);
    if (ec != std::errc() || end != after->data() + after->size()) n = -1;
  }
  if (n < 0)
    return absl::InvalidArgumentError(
        "a long poll (wait) needs after_version: the version the caller has (0 for none)");
  return LongPoll{*secs * 1000, n};
}

}  // namespace

std::vector<Path> DataPaths(KvV2Backend* b) {
  // ---- data/<path> ----
  auto read = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    if (auto wait = req.QueryParam("wait"); wait && !req.no_park) {
      ASSIGN_OR_RETURN(LongPoll poll, ParseLongPoll(*wait, req.QueryParam("after_version")));
      int64_t current = 0;
      {
        ReaderMutexLock l(&b->LockFor(key));
        ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
        if (meta) current = meta->current;
      }
      if (current <= poll.after_version) {
        Response r;
        r.park_ms = poll.wait_ms;  // answered again when data/<key> is written, or after the wait
        return r;
      }
    }
    ReaderMutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(VersionRead v, ReadVersion(b, req, key, d.Int("version"), "data"));
    if (v.answer) return std::move(*v.answer);
    return Response::Data(
        json::object{{"data", std::move(v.data)}, {"metadata", std::move(v.metadata)}});
  };
  auto write = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    ASSIGN_OR_RETURN(Config config, b->GetConfig(req.storage));
    if (!d.Has("data")) return absl::InvalidArgumentError("no data provided");
    const json::object data = d.Map("data");
    MutexLock l(&b->LockFor(key));
    const absl::Time now = b->Now();
    ASSIGN_OR_RETURN(auto loaded, KvV2Backend::LoadMeta(req.storage, key));
    KeyMeta meta = loaded ? std::move(*loaded) : KeyMeta::New(now);
    RETURN_IF_ERROR(CheckCas(d, config, meta));
    return Commit(b, req, key, meta, config, data, now);
  };
  auto patch = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    if (!d.Has("data")) return absl::InvalidArgumentError("no data provided");
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return absl::NotFoundError("");
    ASSIGN_OR_RETURN(Config config, b->GetConfig(req.storage));
    RETURN_IF_ERROR(CheckCas(d, config, *meta));
    auto it = meta->versions.find(meta->current);
    if (it == meta->versions.end()) return absl::NotFoundError("");
    const absl::Time now = b->Now();
    // Vault answers a deleted or destroyed latest version with its metadata (not nested).
    if (it->second.DeletedAt(now) || it->second.destroyed)
      return NotFoundWith(VersionJson(meta->current, it->second, *meta));
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(KvV2Backend::VersionKey(key, meta->current)));
    if (!raw) return absl::DataLossError("could not find version data");
    ASSIGN_OR_RETURN(json::object current, ParseStoredObject(*raw, "kv version data"));
    json::value merged = MergePatch(json::value(std::move(current)), d.Get("data"));
    return Commit(b, req, key, *meta, config, merged.as_object(), now);
  };
  auto remove = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return Response::Empty();
    auto it = meta->versions.find(meta->current);
    const absl::Time now = b->Now();
    // Nothing to do when the latest version is gone, destroyed or deleted already.
    if (it == meta->versions.end() || it->second.destroyed || it->second.DeletedAt(now))
      return Response::Empty();
    it->second.deletion = now;
    RETURN_IF_ERROR(req.storage->Put(KvV2Backend::MetaKey(key), meta->Serialize()));
    return Response::Empty();
  };
  auto exists = [](Request& req, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
    const std::string key = d.String("path");
    if (key.empty() || !ValidateKey(key).ok()) return std::optional<bool>();
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    return std::optional<bool>(meta.has_value());
  };

  // ---- subkeys/<path> ----
  auto subkeys = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    const int64_t depth = d.Int("depth");
    if (depth < 0) return absl::InvalidArgumentError("depth must be a non-negative integer");
    ReaderMutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(VersionRead v, ReadVersion(b, req, key, d.Int("version"), "subkeys"));
    if (v.answer) return std::move(*v.answer);
    RemoveValues(v.data, 1, depth);
    return Response::Data(
        json::object{{"subkeys", std::move(v.data)}, {"metadata", std::move(v.metadata)}});
  };

  // ---- delete/, undelete/, destroy/ <path> ----
  auto delete_versions = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    ASSIGN_OR_RETURN(auto versions, ParseVersions(d.Get("versions")));
    RETURN_IF_ERROR(NeedVersions(versions, "No version number provided"));
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return Response::Empty();
    const absl::Time now = b->Now();
    for (int64_t n : versions) {
      auto it = meta->versions.find(n);
      if (it == meta->versions.end() || it->second.destroyed || it->second.DeletedAt(now)) continue;
      it->second.deletion = now;
    }
    RETURN_IF_ERROR(req.storage->Put(KvV2Backend::MetaKey(key), meta->Serialize()));
    return Response::Empty();
  };
  auto undelete_versions = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    ASSIGN_OR_RETURN(auto versions, ParseVersions(d.Get("versions")));
    RETURN_IF_ERROR(NeedVersions(versions, "No version number provided"));
    ASSIGN_OR_RETURN(Config config, b->GetConfig(req.storage));
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return Response::Empty();
    const absl::Time now = b->Now();
    for (int64_t n : versions) {
      auto it = meta->versions.find(n);
      if (it == meta->versions.end() || it->second.destroyed) continue;
      // Restored; delete_version_after counts again from now.
      it->second.deletion = DeletionTime(now, config, *meta);
    }
    RETURN_IF_ERROR(req.storage->Put(KvV2Backend::MetaKey(key), meta->Serialize()));
    return Response::Empty();
  };
  auto destroy_versions = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    ASSIGN_OR_RETURN(auto versions, ParseVersions(d.Get("versions")));
    RETURN_IF_ERROR(NeedVersions(versions, "no version number provided"));
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return Response::Empty();
    // The data of each version goes, in the same batch as the record that says so.
    std::vector<storage::WriteOp> ops;
    for (int64_t n : versions) {
      auto it = meta->versions.find(n);
      if (it == meta->versions.end() || it->second.destroyed) continue;
      it->second.destroyed = true;
      ops.push_back({storage::WriteOp::Kind::kDelete, KvV2Backend::VersionKey(key, n), ""});
    }
    ops.push_back({storage::WriteOp::Kind::kPut, KvV2Backend::MetaKey(key), meta->Serialize()});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    return Response::Empty();
  };

  const auto path_field = [] {
    return Field(FieldType::kString, "Location of the secret, relative to the mount");
  };
  const auto versions_field = [](const std::string& what) {
    return Field(FieldType::kAny,
                 "The versions to " + what + ": a list of numbers, or a comma-separated string");
  };
  std::vector<Path> p;
  p.push_back(
      {.patterns = {"data/{path*}"},
       .fields = {{"path", path_field()},
                  {"version",
                   Field(FieldType::kInt, "The version to read; the latest when absent or 0")},
                  {"wait",
                   Field(FieldType::kString,
                         "Coffer: a long poll of a read, up to 5m: answered when the "
                         "secret's version passes after_version, or when the wait is over")},
                  {"after_version",
                   Field(FieldType::kInt, "Coffer: with wait, the version the caller already has")},
                  {"options",
                   Field(FieldType::kMap,
                         "Options of a write: \"cas\" (check-and-set) allows the write only if "
                         "the secret's current version is the one given; 0 allows it only if "
                         "the secret does not exist yet")},
                  {"data", Field(FieldType::kMap,
                                 "The secret: stored as the new version, returned on read; on "
                                 "PATCH, a JSON merge patch (RFC 7386) of the latest version")}},
       .operations = {{Operation::kRead,
                       {read, "Reads a version of the secret (the latest by default)"}},
                      {Operation::kUpdate, {write, "Writes the secret as a new version"}},
                      {Operation::kPatch,
                       {patch, "Writes a new version: the latest one merged with the given data"}},
                      {Operation::kDelete,
                       {remove, "Deletes the latest version (it can be undeleted)"}}},
       .exists = exists,
       .unsupported = "",
       .synopsis = "Write, Patch, Read, and Delete data in the Key-Value Store.",
       .description =
           "Each write makes a new version; a read returns the latest version, or the one "
           "named by \"version\". A delete is a soft delete of the latest version: its data "
           "stays until it is destroyed, and undelete restores it."});
  p.push_back(
      {.patterns = {"subkeys/{path*}"},
       .fields = {{"path", path_field()},
                  {"version",
                   Field(FieldType::kInt, "The version to read; the latest when absent or 0")},
                  {"depth", Field(FieldType::kInt,
                                  "The deepest nesting level to show; keys at that depth are "
                                  "leaves (null). 0, the default, shows every level")}},
       .operations = {{Operation::kRead,
                       {subkeys, "Reads the structure of a version with its values removed"}}},
       .unsupported = "",
       .synopsis = "Read the structure of a secret entry from the Key-Value store with the values "
                   "removed."});
  p.push_back(
      {.patterns = {"delete/{path*}"},
       .fields = {{"path", path_field()},
                  {"versions", versions_field("delete (they can be undeleted)")}},
       .operations = {{Operation::kUpdate, {delete_versions, "Marks the versions as deleted"}}},
       .unsupported = "",
       .synopsis = "Marks one or more versions as deleted in the KV store."});
  p.push_back(
      {.patterns = {"undelete/{path*}"},
       .fields = {{"path", path_field()}, {"versions", versions_field("undelete")}},
       .operations = {{Operation::kUpdate, {undelete_versions, "Restores deleted versions"}}},
       .unsupported = "",
       .synopsis = "Undeletes one or more versions from the KV store."});
  p.push_back({.patterns = {"destroy/{path*}"},
               .fields = {{"path", path_field()},
                          {"versions", versions_field("destroy: their data is removed for good")}},
               .operations = {{Operation::kUpdate,
                               {destroy_versions, "Removes the data of the versions for good"}}},
               .unsupported = "",
               .synopsis = "Permanently removes one or more versions in the KV store"});
  return p;
}

}  // namespace coffer::engines::kv::v2
