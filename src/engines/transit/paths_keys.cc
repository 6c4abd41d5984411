// Transit key management: keys/, keys/<name> (create, read, delete), keys/<name>/config,
// keys/<name>/rotate, keys/<name>/trim, export/<kind>/<name>[/<version>], backup/<name>,
// restore[/<name>].
#include <charconv>

#include "engines/transit/transit_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace {

constexpr int64_t kMinAutoRotate = 3600;
constexpr std::string_view kBackupFormat = "coffer-transit-backup-v1";

absl::Status CheckAutoRotate(int64_t period) {
  if (period != 0 && period < kMinAutoRotate)
    return absl::InvalidArgumentError(
        "auto rotate period must be 0 to disable or at least an hour");
  return absl::OkStatus();
}

absl::StatusOr<Response> CreateKey(TransitBackend* b, const FieldData& d) {
  std::string name = d.String("name");
  ASSIGN_OR_RETURN(KeyType type, ParseKeyType(d.String("type")));
  bool derived = d.Bool("derived");
  bool convergent = d.Bool("convergent_encryption");
  if (convergent && !derived)
    return absl::InvalidArgumentError("convergent encryption requires derivation to be enabled");
  if (derived && !SupportsDerivation(type))
    return absl::InvalidArgumentError(
        Cat("key derivation is not supported for keys of type ", KeyTypeName(type)));
  if (convergent && !IsSymmetric(type))
    return absl::InvalidArgumentError(
        Cat("convergent encryption is not supported for keys of type ", KeyTypeName(type)));
  int64_t period = d.Duration("auto_rotate_period");
  RETURN_IF_ERROR(CheckAutoRotate(period));
  if (d.Has("key_size") && d.Int("key_size") != 0 &&
      (type != KeyType::kHmac || d.Int("key_size") != 32))
    return absl::InvalidArgumentError("key_size is only accepted for hmac keys, and must be 32");
  if (d.Has("managed_key_name") || d.Has("managed_key_id"))
    return absl::InvalidArgumentError("managed keys are not supported by Coffer");

  MutexLock w(&b->write_mu_);
  ASSIGN_OR_RETURN(auto existing, b->Load(name));
  if (existing) {
    Response r = Response::Data(existing->Describe());
    r.warnings.push_back(Cat("key ", name, " already existed"));
    return r;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Policy> p, Policy::Create(name, type, b->Now()));
  p->derived = derived;
  p->convergent = convergent;
  p->convergent_version = convergent ? 3 : 0;
  p->exportable = d.Bool("exportable");
  p->allow_plaintext_backup = d.Bool("allow_plaintext_backup");
  p->auto_rotate_period = period;
  json::object described = p->Describe();
  RETURN_IF_ERROR(b->Store(std::move(p)));
  return Response::Data(std::move(described));
}

absl::StatusOr<Response> ConfigKey(TransitBackend* b, const FieldData& d) {
  std::string name = d.String("name");
  MutexLock w(&b->write_mu_);
  ASSIGN_OR_RETURN(auto cur, b->Load(name));
  if (!cur) return absl::InvalidArgumentError("no existing key named " + name + " could be found");
  auto p = cur->Clone();
  std::vector<std::string> warnings;
  if (d.Has("min_decryption_version")) {
    int64_t v = d.Int("min_decryption_version");
    if (v < 0) return absl::InvalidArgumentError("min decryption version cannot be negative");
    if (v == 0) v = 1;
    if (v > p->latest_version)
      return absl::InvalidArgumentError(Cat("cannot set min decryption version of ", v,
                                            ", latest key version is ", p->latest_version));
    if (v < p->min_available_version)
      return absl::InvalidArgumentError(
          Cat("cannot set min decryption version below the min "
              "available version ",
              p->min_available_version));
    p->min_decryption_version = static_cast<int>(v);
  }
  if (d.Has("min_encryption_version")) {
    int64_t v = d.Int("min_encryption_version");
    if (v < 0) return absl::InvalidArgumentError("min encryption version cannot be negative");
    if (v > p->latest_version)
      return absl::InvalidArgumentError(Cat("cannot set min encryption version of ", v,
                                            ", latest key version is ", p->latest_version));
    p->min_encryption_version = static_cast<int>(v);
  }
  if (p->min_encryption_version > 0 && p->min_encryption_version < p->min_decryption_version)
    return absl::InvalidArgumentError(
        "min encryption version should not be less than min decryption version");
  if (d.Has("deletion_allowed")) p->deletion_allowed = d.Bool("deletion_allowed");
  if (d.Has("exportable")) {
    if (p->exportable && !d.Bool("exportable"))
      return absl::InvalidArgumentError(
          "export cannot be disabled on a key that is already exportable");
    p->exportable = d.Bool("exportable");
  }
  if (d.Has("allow_plaintext_backup")) {
    if (p->allow_plaintext_backup && !d.Bool("allow_plaintext_backup"))
      return absl::InvalidArgumentError(
          "plaintext backup cannot be disabled on a key that already allows it");
    p->allow_plaintext_backup = d.Bool("allow_plaintext_backup");
  }
  if (d.Has("auto_rotate_period")) {
    int64_t period = d.Duration("auto_rotate_period");
    RETURN_IF_ERROR(CheckAutoRotate(period));
    p->auto_rotate_period = period;
  }
  json::object described = p->Describe();
  RETURN_IF_ERROR(b->Store(std::move(p)));
  return Response::Data(std::move(described));
}

absl::StatusOr<Response> TrimKey(TransitBackend* b, const FieldData& d) {
  std::string name = d.String("name");
  if (!d.Has("min_available_version"))
    return absl::InvalidArgumentError("missing min_available_version");
  int64_t v = d.Int("min_available_version");
  MutexLock w(&b->write_mu_);
  ASSIGN_OR_RETURN(auto cur, b->Load(name));
  if (!cur) return absl::InvalidArgumentError("invalid key name " + name);
  if (v <= 0) return absl::InvalidArgumentError("minimum available version should be positive");
  if (v < cur->min_available_version)
    return absl::InvalidArgumentError(
        Cat("minimum available version should not be less than "
            "the current one, ",
            cur->min_available_version));
  if (v > cur->min_decryption_version)
    return absl::InvalidArgumentError(
        "minimum available version cannot be greater than minimum decryption version");
  if (cur->min_encryption_version > 0 && v > cur->min_encryption_version)
    return absl::InvalidArgumentError(
        "minimum available version cannot be greater than minimum encryption version");
  auto p = cur->Clone();
  p->min_available_version = static_cast<int>(v);
  for (auto it = p->versions.begin(); it != p->versions.end();)
    it = it->first < v ? p->versions.erase(it) : std::next(it);
  json::object described = p->Describe();
  RETURN_IF_ERROR(b->Store(std::move(p)));
  return Response::Data(std::move(described));
}

absl::StatusOr<Response> ExportKey(TransitBackend* b, const FieldData& d) {
  std::string kind = d.String("type");
  std::string name = d.String("name");
  if (kind != "encryption-key" && kind != "signing-key" && kind != "hmac-key" &&
      kind != "public-key")
    return absl::InvalidArgumentError(Cat("invalid export type \"", kind,
                                          "\"; use encryption-key, signing-key, hmac-key or "
                                          "public-key"));
  ASSIGN_OR_RETURN(auto p, b->Get(name));
  if (!p) return absl::NotFoundError("");
  if (kind != "public-key" && !p->exportable)
    return absl::InvalidArgumentError("key is not exportable");
  json::object keys;
  if (d.Has("version") && d.String("version") != "latest" && !d.String("version").empty()) {
    std::string vs = d.String("version");
    int v = 0;
    auto [ptr, ec] = std::from_chars(vs.data(), vs.data() + vs.size(), v);
    if (ec != std::errc() || ptr != vs.data() + vs.size() || v <= 0)
      return absl::InvalidArgumentError(Cat("invalid key version \"", vs, "\""));
    if (v < p->min_available_version || !p->versions.contains(v))
      return absl::InvalidArgumentError(Cat("key version ", v, " is not available"));
    ASSIGN_OR_RETURN(std::string k, p->Export(kind, v));
    keys[std::to_string(v)] = k;
  } else {
    bool only_latest = d.String("version") == "latest";
    for (const auto& [v, _] : p->versions) {
      if (only_latest && v != p->latest_version) continue;
      ASSIGN_OR_RETURN(std::string k, p->Export(kind, v));
      keys[std::to_string(v)] = k;
    }
  }
  return Response::Data(
      json::object{{"name", p->name}, {"type", KeyTypeName(p->type)}, {"keys", std::move(keys)}});
}

absl::StatusOr<Response> BackupKey(TransitBackend* b, const FieldData& d) {
  ASSIGN_OR_RETURN(auto p, b->Get(d.String("name")));
  if (!p) return absl::NotFoundError("");
  // Vault answers this with a 500; hvac's tests expect it (docs/compatibility.md).
  if (!p->exportable || !p->allow_plaintext_backup)
    return absl::InternalError(
        "plaintext backup is disallowed on the policy: the key must be exportable and allow "
        "plaintext backup");
  ASSIGN_OR_RETURN(std::string text, p->Serialize());
  json::object o{{"format", kBackupFormat}, {"policy", std::move(text)}};
  return Response::Data(json::object{{"backup", Base64Encode(json::serialize(o))}});
}

absl::StatusOr<Response> RestoreKey(TransitBackend* b, const FieldData& d) {
  if (!d.Has("backup") || d.String("backup").empty())
    return absl::InvalidArgumentError("'backup' must be supplied");
  ASSIGN_OR_RETURN(std::string raw, DecodeB64("backup", d.String("backup")));
  boost::system::error_code ec;
  json::value v = json::parse(raw, ec);
  if (ec || !v.is_object() || !v.as_object().contains("policy") ||
      !v.as_object().at("policy").is_string() || !v.as_object().contains("format") ||
      !v.as_object().at("format").is_string() ||
      std::string_view(v.as_object().at("format").as_string()) != kBackupFormat)
    return absl::InvalidArgumentError("backup is not a Coffer transit key backup");
  auto parsed = Policy::Parse(v.as_object().at("policy").as_string());
  if (!parsed.ok())
    return absl::InvalidArgumentError(Cat("backup is damaged: ", Msg(parsed.status())));
  std::unique_ptr<Policy> p = std::move(*parsed);
  // A backup's period obeys the same floor as a key's config: a period of seconds would rotate
  // the key on nearly every request.
  RETURN_IF_ERROR(CheckAutoRotate(p->auto_rotate_period));
  if (d.Has("name") && !d.String("name").empty()) p->name = d.String("name");
  if (p->name.empty() || p->name.find('/') != std::string::npos)
    return absl::InvalidArgumentError("invalid key name");
  MutexLock w(&b->write_mu_);
  ASSIGN_OR_RETURN(auto existing, b->Load(p->name));
  // Vault answers this with a 500 too (hvac's tests expect it).
  if (existing && !d.Bool("force"))
    return absl::InternalError(Cat("key \"", p->name,
                                   "\" already exists; restore with force=true "
                                   "to replace it"));
  RETURN_IF_ERROR(b->Store(std::move(p)));
  return Response::Empty();
}

}  // namespace

void TransitBackend::KeyPaths(TransitBackend* self, std::vector<Path>& p) {
  p.push_back({.patterns = {"keys"},
               .operations = {{Operation::kList,
                               {[self](Request&, const FieldData&) -> absl::StatusOr<Response> {
                                 ASSIGN_OR_RETURN(auto keys, self->storage()->List(kPolicyPrefix));
                                 if (keys.empty()) return absl::NotFoundError("");
                                 json::array a;
                                 for (auto& k : keys) a.emplace_back(k);
                                 return Response::Data(json::object{{"keys", std::move(a)}});
                               }}}},
               .synopsis = "Lists the named keys"});

  p.push_back(
      {.patterns = {"keys/{name}"},
       .fields = {{"name", Field(FieldType::kString, "The key's name")},
                  {"type", Field(FieldType::kString,
                                 "aes256-gcm96 (default), aes128-gcm96, chacha20-poly1305, "
                                 "ecdsa-p256, ecdsa-p384, ecdsa-p521, ed25519, rsa-2048, "
                                 "rsa-3072, rsa-4096 or hmac",
                                 "aes256-gcm96")},
                  {"derived", Field(FieldType::kBool, "Derive a key per context (HKDF-SHA256)")},
                  {"convergent_encryption",
                   Field(FieldType::kBool, "Same plaintext and context give the same ciphertext")},
                  {"exportable", Field(FieldType::kBool, "The key may be exported")},
                  {"allow_plaintext_backup",
                   Field(FieldType::kBool, "The key may be backed up in plaintext")},
                  {"auto_rotate_period",
                   Field(FieldType::kDuration, "Rotate after this long; 0 disables, else >= 1h",
                         0)},
                  {"key_size", Field(FieldType::kInt, "HMAC key size in bytes (32)")},
                  {"context", Field(FieldType::kString, "Deprecated, ignored")},
                  {"managed_key_name", Field(FieldType::kString, "Not supported")},
                  {"managed_key_id", Field(FieldType::kString, "Not supported")}},
       .operations = {{Operation::kUpdate,
                       {[self](Request&, const FieldData& d) { return CreateKey(self, d); }}},
                      {Operation::kRead,
                       {[self](Request&, const FieldData& d) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(auto p, self->Get(d.String("name")));
                         if (!p) return absl::NotFoundError("");
                         return Response::Data(p->Describe());
                       }}},
                      {Operation::kDelete,
                       {[self](Request&, const FieldData& d) -> absl::StatusOr<Response> {
                         std::string name = d.String("name");
                         MutexLock w(&self->write_mu_);
                         ASSIGN_OR_RETURN(auto p, self->Load(name));
                         if (!p)
                           return absl::InvalidArgumentError("could not delete key; not found");
                         if (!p->deletion_allowed)
                           return absl::InvalidArgumentError(
                               "deletion is not allowed for this key; set deletion_allowed with "
                               "keys/" +
                               name + "/config first");
                         RETURN_IF_ERROR(self->storage()->Delete(Cat(kPolicyPrefix, name)));
                         self->InvalidateKey(Cat(kPolicyPrefix, name));
                         return Response::Empty();
                       }}}},
       // No existence check, as Vault's keys/ path: creating a key needs "update".
       .synopsis = "Creates, reads or deletes a named key"});

  p.push_back(
      {.patterns = {"keys/{name}/config"},
       .fields = {{"name", Field(FieldType::kString, "The key's name")},
                  {"min_decryption_version",
                   Field(FieldType::kInt, "Oldest version allowed to decrypt, verify or rewrap")},
                  {"min_encryption_version",
                   Field(FieldType::kInt, "Oldest version allowed to encrypt; 0 is the newest")},
                  {"deletion_allowed", Field(FieldType::kBool, "The key may be deleted")},
                  {"exportable", Field(FieldType::kBool, "The key may be exported (for good)")},
                  {"allow_plaintext_backup",
                   Field(FieldType::kBool, "The key may be backed up in plaintext (for good)")},
                  {"auto_rotate_period",
                   Field(FieldType::kDuration, "Rotate after this long; 0 disables, else >= 1h")}},
       .operations = {{Operation::kUpdate,
                       {[self](Request&, const FieldData& d) { return ConfigKey(self, d); }}}},
       .synopsis = "Configures a key's rules"});

  p.push_back({.patterns = {"keys/{name}/rotate"},
               .fields = {{"name", Field(FieldType::kString, "The key's name")},
                          {"managed_key_name", Field(FieldType::kString, "Not supported")},
                          {"managed_key_id", Field(FieldType::kString, "Not supported")}},
               .operations = {{Operation::kUpdate,
                               {[self](Request&, const FieldData& d) -> absl::StatusOr<Response> {
                                 std::string name = d.String("name");
                                 MutexLock w(&self->write_mu_);
                                 ASSIGN_OR_RETURN(auto cur, self->Load(name));
                                 if (!cur) return absl::InvalidArgumentError("key not found");
                                 auto next = cur->Clone();
                                 RETURN_IF_ERROR(next->Rotate(self->Now()));
                                 json::object described = next->Describe();
                                 RETURN_IF_ERROR(self->Store(std::move(next)));
                                 return Response::Data(std::move(described));
                               }}}},
               .synopsis = "Adds a new version of the key; new encryptions use it"});

  p.push_back({.patterns = {"keys/{name}/trim"},
               .fields = {{"name", Field(FieldType::kString, "The key's name")},
                          {"min_available_version",
                           Field(FieldType::kInt, "Versions below this one are deleted")}},
               .operations = {{Operation::kUpdate, {[self](Request&, const FieldData& d) {
                                 return TrimKey(self, d);
                               }}}},
               .synopsis = "Deletes the key's versions older than min_available_version"});

  p.push_back({.patterns = {"export/{type}/{name}", "export/{type}/{name}/{version}"},
               .fields = {{"type", Field(FieldType::kString,
                                         "encryption-key, signing-key, hmac-key or public-key")},
                          {"name", Field(FieldType::kString, "The key's name")},
                          {"version", Field(FieldType::kString, "A version number or \"latest\"")}},
               .operations = {{Operation::kRead, {[self](Request&, const FieldData& d) {
                                 return ExportKey(self, d);
                               }}}},
               .synopsis = "Exports an exportable key"});

  p.push_back({.patterns = {"backup/{name}"},
               .fields = {{"name", Field(FieldType::kString, "The key's name")}},
               .operations = {{Operation::kRead, {[self](Request&, const FieldData& d) {
                                 return BackupKey(self, d);
                               }}}},
               .synopsis = "A plaintext backup of the key (when allowed)"});

  p.push_back({.patterns = {"restore", "restore/{name}"},
               .fields = {{"name", Field(FieldType::kString, "The name to restore under")},
                          {"backup", Field(FieldType::kString, "What backup/<name> returned")},
                          {"force", Field(FieldType::kBool, "Replace an existing key")}},
               .operations = {{Operation::kUpdate, {[self](Request&, const FieldData& d) {
                                 return RestoreKey(self, d);
                               }}}},
               .synopsis = "Restores a key from a backup"});
}

}  // namespace coffer::engines::transit
