// Internals of the kv version 2 engine shared by its path files (kv_v2.cc: the backend, config
// and the upgrade from version 1; kv_v2_paths_data.cc: data, subkeys, delete, undelete,
// destroy; kv_v2_paths_metadata.cc: metadata). Not part of any public interface; the storage
// layout is described in kv_v2.h.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "core/backend.h"
#include "core/framework/framework.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::engines::kv::v2 {

namespace json = boost::json;

inline constexpr char kConfigKey[] = "config";
inline constexpr char kMetadataPrefix[] = "metadata/";
inline constexpr char kVersionsPrefix[] = "versions/";
// The format marker. Its value is not a JSON object, so a version 1 secret that happens to be
// called "kv-v2-format" (every v1 value is a non-empty JSON object) is never taken for it.
inline constexpr char kFormatKey[] = "kv-v2-format";
inline constexpr char kFormatValue[] = "2";
inline constexpr int64_t kDefaultMaxVersions = 10;
// Vault's limits on custom_metadata.
inline constexpr size_t kMaxCustomMetadataKeys = 64;
inline constexpr size_t kMaxCustomMetadataKeyLength = 128;
inline constexpr size_t kMaxCustomMetadataValueLength = 512;

// The mount's settings (the config path).
struct Config {
  int64_t max_versions = 0;  // 0: kDefaultMaxVersions
  bool cas_required = false;
  // Seconds. 0: not set; negative: delete_version_after is disabled on every key of the mount.
  int64_t delete_version_after = 0;

  std::string Serialize() const;
  static absl::StatusOr<Config> Parse(std::string_view raw);
};

// The state of one version kept.
struct VersionMeta {
  absl::Time created;
  std::optional<absl::Time> deletion;  // soft-deleted from then on
  bool destroyed = false;

  // Whether the version reads as deleted at `now`: its deletion time has come.
  bool DeletedAt(absl::Time now) const { return deletion && *deletion <= now; }
};

// The metadata record of one secret (metadata/<path>).
struct KeyMeta {
  absl::Time created;
  absl::Time updated;
  int64_t current = 0;  // the latest version; 0 before the first write
  int64_t oldest = 0;   // versions below it were removed by max_versions
  int64_t max_versions = 0;
  bool cas_required = false;
  int64_t delete_version_after = 0;  // seconds; 0: the mount's
  std::map<std::string, std::string> custom;
  std::map<int64_t, VersionMeta> versions;

  static KeyMeta New(absl::Time now);
  std::string Serialize() const;
  static absl::StatusOr<KeyMeta> Parse(std::string_view raw);

  // Adds `v` as version current+1 and moves the window of versions kept: the larger of the
  // key's and the mount's max_versions (10 when both are 0). Returns the versions dropped
  // from the record, whose data the caller deletes in the same batch.
  std::vector<int64_t> AddVersion(const VersionMeta& v, int64_t mount_max_versions);
};

// ---- formatting, as Vault prints these values ----
// RFC 3339 in UTC with as many fractional digits as needed, up to nanoseconds (Go's
// RFC3339Nano): "2018-03-22T02:24:06.945319214Z".
std::string Rfc3339(absl::Time t);
std::string Rfc3339(const std::optional<absl::Time>& t);  // "" when unset
// Go's time.Duration.String() for whole seconds: "0s", "45s", "1m30s", "1h0m0s", "-1s".
std::string GoDuration(int64_t seconds);
// custom_metadata as Vault returns it: null when there is none.
json::value CustomJson(const std::map<std::string, std::string>& custom);
// The metadata of one version: created_time, custom_metadata, deletion_time, destroyed,
// version (a data read's "metadata", a write's response).
json::object VersionJson(int64_t version, const VersionMeta& v, const KeyMeta& meta);
// When a version created (or undeleted) at `from` is deleted by delete_version_after: the
// smaller of the key's and the mount's non-zero settings; none when both are 0 or the mount
// disabled it.
std::optional<absl::Time> DeletionTime(absl::Time from, const Config& config, const KeyMeta& meta);

// ---- parsing ----
// A stored JSON object (a version's data, a record); DataLoss naming `what` when it is not one.
absl::StatusOr<json::object> ParseStoredObject(std::string_view raw, std::string_view what);
// The secret path's rules, the same as kv version 1's: at most 1024 bytes, no "." or ".."
// segment, no control character.
absl::Status ValidateKey(std::string_view key);
// A duration that may be negative (config's delete_version_after): seconds as a number or a
// string, or a duration string with an optional leading '-'.
absl::StatusOr<int64_t> ParseSignedDuration(std::string_view field, const json::value& v);
// custom_metadata from a request: every value a string (numbers and booleans are converted as
// Vault's weak decoding does). `skip_nulls` (PATCH): a null value is left out.
absl::StatusOr<std::map<std::string, std::string>> ParseCustomMetadata(const json::object& raw,
                                                                       bool skip_nulls);
// Vault's checks of custom_metadata (count, key and value lengths, printable characters), every
// failure reported as Vault's multierror does.
absl::Status ValidateCustomMetadata(const std::map<std::string, std::string>& custom);

// ---- the backend ----
class KvV2Backend final : public core::framework::FrameworkBackend {
 public:
  explicit KvV2Backend(core::BackendConfig config);

  // Vault's answers for the mount's root folders and paths no pattern matches (404 with a
  // warning), the secret path's rules, then the framework.
  absl::StatusOr<core::Response> Handle(core::Request& req) override;
  // Writes the format marker, upgrading version 1 data first when the view holds some.
  absl::Status Initialize() override;
  void InvalidateKey(std::string_view key) override ABSL_LOCKS_EXCLUDED(config_mu_);

  // ---- for the path files ----
  absl::Time Now() const { return config_.clock->Now(); }
  // The lock of one secret: held exclusively around every read-modify-write of its metadata
  // and versions, shared around reads that need the metadata and the version to agree.
  Mutex& LockFor(std::string_view path);
  // The mount's config (cached; InvalidateKey("config") drops it).
  absl::StatusOr<Config> GetConfig(storage::Storage* s) ABSL_LOCKS_EXCLUDED(config_mu_);
  // Reads, changes with `change` and writes the config, serialized with other config writes.
  absl::Status UpdateConfig(storage::Storage* s, const std::function<void(Config*)>& change)
      ABSL_LOCKS_EXCLUDED(config_mu_);

  static std::string MetaKey(std::string_view path) { return kMetadataPrefix + std::string(path); }
  // "versions/<hex sha256(path)>/": the folder of a secret's versions.
  static std::string VersionFolder(std::string_view path);
  static std::string VersionKey(std::string_view path, int64_t version);
  // The secret's metadata record; nullopt when there is none.
  static absl::StatusOr<std::optional<KeyMeta>> LoadMeta(storage::Storage* s,
                                                         std::string_view path);

 private:
  static std::vector<core::framework::Path> Table(KvV2Backend* b);
  absl::Status Upgrade(const std::vector<std::string>& keys);

  const core::BackendConfig config_;
  std::array<Mutex, 256> locks_;
  Mutex config_mu_;
  std::optional<Config> cached_config_ ABSL_GUARDED_BY(config_mu_);
};

// The path tables of each file.
std::vector<core::framework::Path> ConfigPaths(KvV2Backend* b);
std::vector<core::framework::Path> DataPaths(KvV2Backend* b);  // data, subkeys, (un)delete, destroy
std::vector<core::framework::Path> MetadataPaths(KvV2Backend* b);

// A field of one of the engine's tables.
core::framework::FieldSchema Field(core::framework::FieldType type, std::string description);

}  // namespace coffer::engines::kv::v2
