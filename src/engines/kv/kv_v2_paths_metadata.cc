// kv version 2: metadata/<path> — read a secret's settings and versions, LIST the secrets of a
// folder, write (POST/PUT) and patch the settings and custom_metadata, delete every version and
// the record.
#include "engines/kv/kv_v2_internal.h"
#include "util/status.h"

namespace coffer::engines::kv::v2 {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;
using core::framework::Path;

namespace {

constexpr char kCasIgnored[] =
    "\"cas_required\" set to false, but is mandated by backend config. This value will be "
    "ignored.";

// A write or patch names one secret: the mount's root and folders are refused.
absl::Status NeedSecretPath(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("missing path");
  if (key.back() == '/')
    return absl::InvalidArgumentError(
        Cat("\"", key, "\" is a folder: metadata is written for a secret path"));
  return absl::OkStatus();
}

// The warning Vault gives when a key turns cas_required off on a mount that requires it.
absl::StatusOr<Response> WithCasWarning(KvV2Backend* b, Request& req, const FieldData& d) {
  Response r;
  if (d.Has("cas_required") && !d.Bool("cas_required")) {
    ASSIGN_OR_RETURN(Config config, b->GetConfig(req.storage));
    if (config.cas_required) r.warnings.emplace_back(kCasIgnored);
  }
  return r;
}

absl::Status CheckMaxVersions(const FieldData& d) {
  if (d.Has("max_versions") && d.Int("max_versions") < 0)
    return absl::InvalidArgumentError("max_versions must not be negative");
  return absl::OkStatus();
}

}  // namespace

std::vector<Path> MetadataPaths(KvV2Backend* b) {
  auto read = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return absl::NotFoundError("");
    json::object versions;
    for (const auto& [n, v] : meta->versions)
      versions[std::to_string(n)] = json::object{{"created_time", Rfc3339(v.created)},
                                                 {"deletion_time", Rfc3339(v.deletion)},
                                                 {"destroyed", v.destroyed}};
    return Response::Data(
        json::object{{"cas_required", meta->cas_required},
                     {"created_time", Rfc3339(meta->created)},
                     {"current_version", meta->current},
                     {"custom_metadata", CustomJson(meta->custom)},
                     {"delete_version_after", GoDuration(meta->delete_version_after)},
                     {"max_versions", meta->max_versions},
                     {"oldest_version", meta->oldest},
                     {"updated_time", Rfc3339(meta->updated)},
                     {"versions", std::move(versions)}});
  };
  auto list = [](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    std::string prefix = d.String("path");
    if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
    ASSIGN_OR_RETURN(auto keys, req.storage->List(KvV2Backend::MetaKey(prefix), "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    json::array arr;
    for (auto& k : keys) arr.emplace_back(k);
    return Response::Data(json::object{{"keys", std::move(arr)}});
  };
  auto write = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    RETURN_IF_ERROR(NeedSecretPath(key));
    if (!d.Has("max_versions") && !d.Has("cas_required") && !d.Has("delete_version_after") &&
        !d.Has("custom_metadata"))
      return Response::Empty();
    RETURN_IF_ERROR(CheckMaxVersions(d));
    std::map<std::string, std::string> custom;
    if (d.Has("custom_metadata")) {
      ASSIGN_OR_RETURN(custom, ParseCustomMetadata(d.Map("custom_metadata"), false));
      RETURN_IF_ERROR(ValidateCustomMetadata(custom));
    }
    ASSIGN_OR_RETURN(Response r, WithCasWarning(b, req, d));
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto loaded, KvV2Backend::LoadMeta(req.storage, key));
    KeyMeta meta = loaded ? std::move(*loaded) : KeyMeta::New(b->Now());
    if (d.Has("max_versions")) meta.max_versions = d.Int("max_versions");
    if (d.Has("cas_required")) meta.cas_required = d.Bool("cas_required");
    if (d.Has("delete_version_after"))
      meta.delete_version_after = d.Duration("delete_version_after");
    if (d.Has("custom_metadata")) meta.custom = std::move(custom);
    RETURN_IF_ERROR(req.storage->Put(KvV2Backend::MetaKey(key), meta.Serialize()));
    return r;
  };
  // A JSON merge patch of the settings: a field given replaces the stored one, null resets it;
  // custom_metadata merges key by key (null removes a key).
  auto patch = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    RETURN_IF_ERROR(NeedSecretPath(key));
    RETURN_IF_ERROR(CheckMaxVersions(d));
    auto given_null = [&](std::string_view name) {
      const json::value* v = req.data.if_contains(name);
      return v && v->is_null();
    };
    std::map<std::string, std::string> changes;
    if (d.Has("custom_metadata")) {
      ASSIGN_OR_RETURN(changes, ParseCustomMetadata(d.Map("custom_metadata"), true));
      RETURN_IF_ERROR(ValidateCustomMetadata(changes));
    }
    ASSIGN_OR_RETURN(Response r, WithCasWarning(b, req, d));
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return absl::NotFoundError("");
    if (d.Has("max_versions")) meta->max_versions = d.Int("max_versions");
    if (given_null("max_versions")) meta->max_versions = 0;
    if (d.Has("cas_required")) meta->cas_required = d.Bool("cas_required");
    if (given_null("cas_required")) meta->cas_required = false;
    if (d.Has("delete_version_after"))
      meta->delete_version_after = d.Duration("delete_version_after");
    if (given_null("delete_version_after")) meta->delete_version_after = 0;
    if (given_null("custom_metadata")) meta->custom.clear();
    if (d.Has("custom_metadata")) {
      for (const auto& [k, v] : d.Map("custom_metadata"))
        if (v.is_null()) meta->custom.erase(std::string(k));
      for (auto& [k, v] : changes) meta->custom[k] = std::move(v);
      // The merged map is held to the same limits (Vault checks the patch only).
      RETURN_IF_ERROR(ValidateCustomMetadata(meta->custom));
    }
    RETURN_IF_ERROR(req.storage->Put(KvV2Backend::MetaKey(key), meta->Serialize()));
    return r;
  };
  auto remove = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const std::string key = d.String("path");
    MutexLock l(&b->LockFor(key));
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    if (!meta) return Response::Empty();
    // Every version's data (whatever the record lists: the folder is the truth) and the
    // record, in one batch.
    const std::string folder = KvV2Backend::VersionFolder(key);
    ASSIGN_OR_RETURN(auto stored, req.storage->List(folder, "", 0));
    std::vector<storage::WriteOp> ops;
    for (const auto& name : stored)
      ops.push_back({storage::WriteOp::Kind::kDelete, folder + name, ""});
    ops.push_back({storage::WriteOp::Kind::kDelete, KvV2Backend::MetaKey(key), ""});
    RETURN_IF_ERROR(req.storage->Write(std::move(ops)));
    return Response::Empty();
  };
  auto exists = [](Request& req, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
    const std::string key = d.String("path");
    if (key.empty() || key.back() == '/' || !ValidateKey(key).ok()) return std::optional<bool>();
    ASSIGN_OR_RETURN(auto meta, KvV2Backend::LoadMeta(req.storage, key));
    return std::optional<bool>(meta.has_value());
  };

  std::vector<Path> p;
  p.push_back(
      {.patterns = {"metadata/{path*}"},
       .fields =
           {{"path", Field(FieldType::kString,
                           "Location of the secret, relative to the mount; a folder for LIST")},
            {"cas_required",
             Field(FieldType::kBool,
                   "If true, every write of the key must give the cas option; if false, the "
                   "mount's setting applies")},
            {"max_versions",
             Field(FieldType::kInt,
                   "The number of versions to keep; the larger of this and the mount's applies")},
            {"delete_version_after",
             Field(FieldType::kDuration,
                   "How long after it is written a version is deleted; the shorter of this and "
                   "the mount's applies. 0 clears it")},
            {"custom_metadata",
             Field(FieldType::kMap,
                   "User-provided key-value pairs (strings) that describe the secret, whatever "
                   "its version: at most 64 keys of up to 128 bytes, values up to 512 bytes")}},
       .operations =
           {{Operation::kRead, {read, "Reads the secret's settings and the state of its versions"}},
            {Operation::kList, {list, "Lists the secrets and folders under the path"}},
            {Operation::kUpdate,
             {write, "Writes the secret's settings (creating an empty secret if needed)"}},
            {Operation::kPatch, {patch, "Changes some of the secret's settings"}},
            {Operation::kDelete,
             {remove, "Deletes the secret: every version's data and its metadata"}}},
       .exists = exists,
       .unsupported = "",
       .synopsis = "Allows interaction with key metadata and settings in the KV store.",
       .description = "Reads the information about a key of the store, writes the key's "
                      "settings, and permanently deletes a key with all its versions."});
  return p;
}

}  // namespace coffer::engines::kv::v2
