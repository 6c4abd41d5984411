#include "engines/kv/kv_backend.h"

#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "engines/kv/kv_v2.h"
#include "engines/kv/kv_v2_internal.h"
#include "util/status.h"

namespace coffer::engines::kv {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::ConvertField;
using core::framework::FieldData;
using core::framework::FieldType;

namespace {

// The detail of a 405; the operation's name follows.
constexpr std::string_view kUnsupported = "kv version 1 does not support ";

// The rules of a secret's path are version 2's (one set for both versions).
using v2::ValidateKey;

// A read, write or delete names a secret; only a list takes the mount itself or a folder.
absl::Status NeedKey(const Request& req, const std::string& key) {
  if (key.empty() || key.back() == '/')
    return absl::InvalidArgumentError(
        Cat("a secret path is required after the mount \"", req.mount_point, "\""));
  return absl::OkStatus();
}

// Vault's kv v1: "ttl" is an ordinary key of the secret that also sets the lease on reads.
absl::StatusOr<int64_t> TtlOf(const json::value& v) {
  ASSIGN_OR_RETURN(json::value d, ConvertField("ttl", FieldType::kDuration, v));
  return d.as_int64();
}

absl::StatusOr<Response> Read(Request& req, const FieldData& d) {
  const std::string key = d.String("path");
  RETURN_IF_ERROR(NeedKey(req, key));
  ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
  if (!raw) return absl::NotFoundError("");
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("stored secret is not a JSON object");
  Response r = Response::Data(std::move(v.as_object()));
  // The lease is the "ttl" key when it holds a duration, else the mount's default.
  r.lease_duration = req.mount_default_ttl;
  if (const auto* ttl = r.data->if_contains("ttl")) {
    auto secs = TtlOf(*ttl);
    if (secs.ok()) r.lease_duration = *secs;
  }
  return r;
}

// The body is the secret: every key is kept as given (req.data, not the declared fields).
absl::StatusOr<Response> Write(Request& req, const FieldData& d) {
  const std::string key = d.String("path");
  RETURN_IF_ERROR(NeedKey(req, key));
  if (req.data.empty())
    return absl::InvalidArgumentError("missing data fields: write at least one key=value pair");
  if (const auto* ttl = req.data.if_contains("ttl")) RETURN_IF_ERROR(TtlOf(*ttl).status());
  RETURN_IF_ERROR(req.storage->Put(key, json::serialize(req.data)));
  return Response::Empty();
}

absl::StatusOr<Response> Delete(Request& req, const FieldData& d) {
  const std::string key = d.String("path");
  RETURN_IF_ERROR(NeedKey(req, key));
  RETURN_IF_ERROR(req.storage->Delete(key));
  return Response::Empty();
}

absl::StatusOr<Response> List(Request& req, const FieldData& d) {
  std::string prefix = d.String("path");
  if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
  ASSIGN_OR_RETURN(auto keys, req.storage->List(prefix, "", 0));
  if (keys.empty()) return absl::NotFoundError("");
  json::array arr;
  for (auto& k : keys) arr.emplace_back(k);
  return Response::Data(json::object{{"keys", std::move(arr)}});
}

std::vector<core::framework::Path> Paths() {
  std::vector<core::framework::Path> p;
  p.push_back(
      {.patterns = {"{path*}"},
       .fields = {{"path",
                   {FieldType::kString,
                    "Location of the secret, relative to the mount; a folder (ending in \"/\") "
                    "or the mount itself for LIST"}}},
       .operations = {{Operation::kRead, {Read, "Reads the secret at the path"}},
                      {Operation::kUpdate,
                       {Write,
                        "Creates or replaces the secret at the path: every key of the body is "
                        "stored; a key called \"ttl\" (a duration) sets the lease of reads"}},
                      {Operation::kDelete, {Delete, "Deletes the secret at the path"}},
                      {Operation::kList, {List, "Lists the secrets and folders under the path"}}},
       .exists = [](Request& req, const FieldData& d) -> absl::StatusOr<std::optional<bool>> {
         const std::string key = d.String("path");
         if (key.empty() || key.back() == '/' || !ValidateKey(key).ok())
           return std::optional<bool>();
         ASSIGN_OR_RETURN(auto raw, req.storage->Get(key));
         return std::optional<bool>(raw.has_value());
       },
       .unsupported = Cat(kUnsupported, "{op}"),
       .synopsis = "Pass-through secret storage: reads and writes arbitrary JSON objects",
       .description =
           "Any JSON object can be written to any path inside the mount and is read back as it "
           "was written. A key called \"ttl\" holding a duration (\"30m\", 1800) is stored with "
           "the other keys and becomes the lease duration of reads: a hint to the reader to come "
           "back before it passes. Nothing is revoked when it does.",
       .any_field = true});
  return p;
}

class KvBackend final : public core::framework::FrameworkBackend {
 public:
  KvBackend()
      : FrameworkBackend(
            "The kv backend (version 1) reads and writes arbitrary secrets, encrypted by the "
            "barrier before they reach storage. Leases can be set per secret with a \"ttl\" key.",
            Paths()) {}

  absl::StatusOr<Response> Handle(Request& req) override {
    // The key's rules hold for the whole mount: a bad key is refused whatever the operation.
    RETURN_IF_ERROR(ValidateKey(req.path));
    // The framework serves HEAD as a read; kv version 1 has never answered it.
    if (req.op == Operation::kHead)
      return UnsupportedOperation(Cat(kUnsupported, core::OperationName(req.op)));
    return FrameworkBackend::Handle(req);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  // The core stores options.version as a string: absent, "" or "1" is version 1, as in Vault.
  const core::MountEntry& entry = config.entry;
  if (const auto* v = entry.options.if_contains("version"); v && v->is_string()) {
    if (v->as_string() == "2") return NewVersion2(config);
    if (v->as_string() != "1" && !v->as_string().empty())
      return absl::InvalidArgumentError(
          Cat("unknown kv version \"", std::string_view(v->as_string()), "\""));
  }
  return std::unique_ptr<core::Backend>(new KvBackend());
}

}  // namespace coffer::engines::kv
