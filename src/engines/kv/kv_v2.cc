// kv version 2: the backend (how requests reach the path table, the per-secret locks, the
// cached config), the config path, and the upgrade of version 1 data in Initialize().
#include "engines/kv/kv_v2.h"

#include <functional>
#include <set>
#include <utility>

#include "crypto/crypto.h"
#include "engines/kv/kv_v2_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::kv::v2 {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;
using core::framework::Path;

namespace {

constexpr char kHelp[] =
    "The kv backend (version 2) is a versioned key/value store: every write of a secret makes "
    "a new version, a number of versions is kept per secret, and versions can be read, deleted, "
    "undeleted and destroyed. Secrets are encrypted by the barrier before they reach storage.";

// Vault's paths with no secret after them; only a LIST may name them (as a folder).
bool IsRootFolder(std::string_view p) {
  return p == "data" || p == "metadata" || p == "delete" || p == "undelete" || p == "destroy";
}

Response NotFoundWithWarning(std::string warning) {
  Response r;
  r.http_status = 404;
  r.warnings.push_back(std::move(warning));
  return r;
}

// Vault's answer to a path no pattern matches: which `vault kv` subcommand to use instead.
Response InvalidPath(Operation op) {
  std::string_view sub;
  switch (op) {
    case Operation::kCreate:
    case Operation::kUpdate:
      sub = "put";
      break;
    case Operation::kPatch:
      sub = "patch";
      break;
    case Operation::kList:
      sub = "list";
      break;
    case Operation::kDelete:
      sub = "delete";
      break;
    default:
      sub = "get";
  }
  return NotFoundWithWarning(
      Cat("Invalid path for a versioned K/V secrets engine. See the API docs for the "
          "appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ",
          sub, "' for this operation."));
}

core::SpecialPaths V2SpecialPaths() {
  // Vault's versioned kv declares no root or unauthenticated paths; it seal-wraps the data of
  // the versions.
  return core::SpecialPaths{.seal_wrap_storage = {"versions/*"}};
}

// Every key of the view, recursively (the version 1 secrets).
absl::StatusOr<std::vector<std::string>> ListAll(storage::Storage* s) {
  std::vector<std::string> keys;
  std::vector<std::string> folders{""};
  while (!folders.empty()) {
    const std::string prefix = std::move(folders.back());
    folders.pop_back();
    ASSIGN_OR_RETURN(auto names, s->List(prefix, "", 0));
    for (auto& n : names) {
      if (!n.empty() && n.back() == '/')
        folders.push_back(prefix + n);
      else
        keys.push_back(prefix + n);
    }
  }
  return keys;
}

}  // namespace

FieldSchema Field(FieldType type, std::string description) {
  FieldSchema f;
  f.type = type;
  f.description = std::move(description);
  return f;
}

// ---- config ----

std::vector<Path> ConfigPaths(KvV2Backend* b) {
  auto read = [b](Request& req, const FieldData&) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Config c, b->GetConfig(req.storage));
    return Response::Data(json::object{{"cas_required", c.cas_required},
                                       {"delete_version_after", GoDuration(c.delete_version_after)},
                                       {"max_versions", c.max_versions}});
  };
  auto write = [b](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    const bool has_max = d.Has("max_versions"), has_cas = d.Has("cas_required"),
               has_dva = d.Has("delete_version_after");
    if (!has_max && !has_cas && !has_dva) return Response::Empty();
    if (has_max && d.Int("max_versions") < 0)
      return absl::InvalidArgumentError("max_versions must not be negative");
    int64_t dva = 0;
    if (has_dva) {
      ASSIGN_OR_RETURN(dva,
                       ParseSignedDuration("delete_version_after", d.Get("delete_version_after")));
    }
    RETURN_IF_ERROR(b->UpdateConfig(req.storage, [&](Config* c) {
      if (has_max) c->max_versions = d.Int("max_versions");
      if (has_cas) c->cas_required = d.Bool("cas_required");
      // A negative duration disables delete_version_after on every key ("-1s"); 0 clears it.
      if (has_dva) c->delete_version_after = dva < 0 ? -1 : dva;
    }));
    return Response::Empty();
  };
  std::vector<Path> p;
  p.push_back(
      {.patterns = {"config"},
       .fields = {{"max_versions",
                   Field(FieldType::kInt,
                         "The number of versions to keep for each key; 0 (the default) keeps 10")},
                  {"cas_required",
                   Field(FieldType::kBool,
                         "If true, every write to the mount must give the cas option")},
                  {"delete_version_after",
                   Field(FieldType::kAny,
                         "How long after it is written a version is deleted (a duration such as "
                         "\"1h\", or seconds); a negative duration disables it on every key, 0 "
                         "clears the setting")}},
       .operations = {{Operation::kRead, {read, "Reads the mount's settings"}},
                      {Operation::kUpdate,
                       {write, "Sets the mount's settings, applied to every key of the mount"}}},
       .unsupported = "",
       .synopsis = "Configures the settings of the versioned key/value store",
       .description = "max_versions, cas_required and delete_version_after for every key of the "
                      "mount; a key's own metadata can raise max_versions and shorten "
                      "delete_version_after."});
  return p;
}

// ---- the backend ----

KvV2Backend::KvV2Backend(core::BackendConfig config)
    : FrameworkBackend(kHelp, Table(this), V2SpecialPaths()), config_(std::move(config)) {}

std::vector<Path> KvV2Backend::Table(KvV2Backend* b) {
  std::vector<Path> t = ConfigPaths(b);
  for (auto* part : {&DataPaths, &MetadataPaths})
    for (auto& p : (*part)(b)) t.push_back(std::move(p));
  return t;
}

absl::StatusOr<Response> KvV2Backend::Handle(Request& req) {
  // Vault has no HEAD on kv; the framework would serve it as a read.
  if (req.op == Operation::kHead) return UnsupportedOperation();
  const std::string& p = req.path;
  if (req.op != Operation::kList) {
    if (IsRootFolder(p))
      return NotFoundWithWarning(
          "Non-listing operations on the root of a K/V v2 mount are not supported.");
    if (p == "subkeys") return InvalidPath(req.op);
  }
  std::vector<std::pair<std::string, std::string>> captures;
  if (!Match(p, &captures, req.op == Operation::kList)) return InvalidPath(req.op);
  for (const auto& [name, value] : captures) {
    if (name != "path") continue;
    // data/ names a secret: never empty, never a folder.
    if ((p == "data" || p.starts_with("data/")) && (value.empty() || value.back() == '/'))
      return InvalidPath(req.op);
    RETURN_IF_ERROR(ValidateKey(value));
  }
  return FrameworkBackend::Handle(req);
}

Mutex& KvV2Backend::LockFor(std::string_view path) {
  return locks_[std::hash<std::string_view>{}(path) % locks_.size()];
}

absl::StatusOr<Config> KvV2Backend::GetConfig(storage::Storage* s) {
  {
    ReaderMutexLock l(&config_mu_);
    if (cached_config_) return *cached_config_;
  }
  MutexLock l(&config_mu_);
  if (cached_config_) return *cached_config_;
  ASSIGN_OR_RETURN(auto raw, s->Get(kConfigKey));
  Config c;
  if (raw) {
    ASSIGN_OR_RETURN(c, Config::Parse(*raw));
  }
  cached_config_ = c;
  return c;
}

absl::Status KvV2Backend::UpdateConfig(storage::Storage* s,
                                       const std::function<void(Config*)>& change) {
  MutexLock l(&config_mu_);
  ASSIGN_OR_RETURN(auto raw, s->Get(kConfigKey));
  Config c;
  if (raw) {
    ASSIGN_OR_RETURN(c, Config::Parse(*raw));
  }
  change(&c);
  // The cache is dropped first: if the write fails, the next read loads what storage holds.
  cached_config_.reset();
  RETURN_IF_ERROR(s->Put(kConfigKey, c.Serialize()));
  cached_config_ = c;
  return absl::OkStatus();
}

void KvV2Backend::InvalidateKey(std::string_view key) {
  if (key != kConfigKey) return;  // nothing else is cached
  MutexLock l(&config_mu_);
  cached_config_.reset();
}

std::string KvV2Backend::VersionFolder(std::string_view path) {
  return Cat(kVersionsPrefix, HexEncode(crypto::Sha256(path)), "/");
}

std::string KvV2Backend::VersionKey(std::string_view path, int64_t version) {
  return Cat(VersionFolder(path), version);
}

absl::StatusOr<std::optional<KeyMeta>> KvV2Backend::LoadMeta(storage::Storage* s,
                                                             std::string_view path) {
  ASSIGN_OR_RETURN(auto raw, s->Get(MetaKey(path)));
  if (!raw) return std::optional<KeyMeta>();
  ASSIGN_OR_RETURN(KeyMeta m, KeyMeta::Parse(*raw));
  return std::optional<KeyMeta>(std::move(m));
}

// ---- upgrade from version 1 ----

absl::Status KvV2Backend::Initialize() {
  storage::Storage* s = config_.storage;
  ASSIGN_OR_RETURN(auto marker, s->Get(kFormatKey));
  if (marker && *marker == kFormatValue) return absl::OkStatus();
  // No marker: the view is empty (a new mount) or holds version 1 secrets. The core runs no
  // request on the mount while this runs.
  ASSIGN_OR_RETURN(auto keys, ListAll(s));
  return Upgrade(keys);
}

absl::Status KvV2Backend::Upgrade(const std::vector<std::string>& keys) {
  storage::Storage* s = config_.storage;
  const absl::Time now = Now();
  std::vector<storage::WriteOp> puts;
  std::set<std::string, std::less<>> written;
  auto put = [&](std::string key, std::string value) {
    written.insert(key);
    puts.push_back({storage::WriteOp::Kind::kPut, std::move(key), std::move(value)});
  };
  for (const auto& key : keys) {
    ASSIGN_OR_RETURN(auto raw, s->Get(key));
    if (!raw) continue;
    auto data = ParseStoredObject(*raw, "kv version 1 secret");
    if (!data.ok())
      return absl::DataLossError(Cat("cannot upgrade the kv mount at \"", config_.entry.path,
                                     "\" to version 2: the version 1 secret \"", key,
                                     "\" is not a JSON object"));
    KeyMeta meta = KeyMeta::New(now);
    meta.AddVersion(VersionMeta{.created = now}, 0);
    put(VersionKey(key, 1), json::serialize(*data));
    put(MetaKey(key), meta.Serialize());
  }
  put(kFormatKey, kFormatValue);
  // One batch: every version 1 key deleted, then the version 2 records put. A key that is
  // both (a v1 secret literally called "metadata/x" or "kv-v2-format") is only put: applied in
  // order the result is the same, and some stores refuse a key twice in one transaction.
  std::vector<storage::WriteOp> ops;
  ops.reserve(keys.size() + puts.size());
  for (const auto& key : keys)
    if (!written.contains(key)) ops.push_back({storage::WriteOp::Kind::kDelete, key, ""});
  for (auto& op : puts) ops.push_back(std::move(op));
  RETURN_IF_ERROR(s->Write(std::move(ops)));
  if (!keys.empty())
    config_.LogInfo(Cat("upgraded ", keys.size(), " kv version 1 secrets to version 2"));
  return absl::OkStatus();
}

}  // namespace coffer::engines::kv::v2

namespace coffer::engines::kv {

absl::StatusOr<std::unique_ptr<core::Backend>> NewVersion2(const core::BackendConfig& config) {
  if (!config.storage || !config.clock)
    return absl::InternalError("kv version 2 needs the mount's storage view and a clock");
  return std::unique_ptr<core::Backend>(new v2::KvV2Backend(config));
}

}  // namespace coffer::engines::kv
