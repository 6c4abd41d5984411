#include "engines/kv/kv_backend.h"

#include "boost/json.hpp"
#include "util/duration.h"
#include "util/status.h"

namespace coffer::engines::kv {
namespace json = boost::json;
namespace {

constexpr size_t kMaxKeyLength = 1024;

absl::Status ValidateKey(std::string_view p) {
  if (p.size() > kMaxKeyLength)
    return absl::InvalidArgumentError(Cat("path is longer than ", kMaxKeyLength, " characters"));
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    std::string_view seg =
        p.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (seg == "." || seg == "..")
      return absl::InvalidArgumentError("path segments \".\" and \"..\" are not allowed");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (char c : p)
    if (static_cast<unsigned char>(c) < 0x20)
      return absl::InvalidArgumentError("path must not contain control characters");
  return absl::OkStatus();
}

class KvBackend final : public core::Backend {
 public:
  absl::StatusOr<std::optional<bool>> Exists(core::Request& req) override {
    if (req.path.empty() || req.path.back() == '/' || !ValidateKey(req.path).ok())
      return std::optional<bool>();
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(req.path));
    return std::optional<bool>(raw.has_value());
  }

  absl::StatusOr<core::Response> Handle(core::Request& req) override {
    RETURN_IF_ERROR(ValidateKey(req.path));
    switch (req.op) {
      case core::Operation::kList:
        return List(req);
      case core::Operation::kRead:
        return Read(req);
      case core::Operation::kCreate:
      case core::Operation::kUpdate:
        return Write(req);
      case core::Operation::kDelete:
        return Delete(req);
      default:
        return UnsupportedOperation(
            Cat("kv version 1 does not support ", core::OperationName(req.op)));
    }
  }

 private:
  static absl::Status NeedKey(const core::Request& req) {
    if (req.path.empty() || req.path.back() == '/')
      return absl::InvalidArgumentError(
          Cat("a secret path is required after the mount \"", req.mount_point, "\""));
    return absl::OkStatus();
  }

  absl::StatusOr<core::Response> Read(core::Request& req) {
    RETURN_IF_ERROR(NeedKey(req));
    ASSIGN_OR_RETURN(auto raw, req.storage->Get(req.path));
    if (!raw) return absl::NotFoundError("");
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("stored secret is not a JSON object");
    core::Response r = core::Response::Data(std::move(v.as_object()));
    // Vault's kv v1: the lease is the "ttl" field when present, else the mount's default.
    r.lease_duration = req.mount_default_ttl;
    if (const auto* ttl = r.data->if_contains("ttl")) {
      auto d = ParseDurationSeconds(*ttl);
      if (d.ok()) r.lease_duration = *d;
    }
    return r;
  }

  absl::StatusOr<core::Response> Write(core::Request& req) {
    RETURN_IF_ERROR(NeedKey(req));
    if (req.data.empty())
      return absl::InvalidArgumentError("missing data fields: write at least one key=value pair");
    if (const auto* ttl = req.data.if_contains("ttl")) {
      auto d = ParseDurationSeconds(*ttl);
      if (!d.ok()) return absl::InvalidArgumentError(Cat("ttl: ", Msg(d.status())));
    }
    RETURN_IF_ERROR(req.storage->Put(req.path, json::serialize(req.data)));
    return core::Response::Empty();
  }

  absl::StatusOr<core::Response> Delete(core::Request& req) {
    RETURN_IF_ERROR(NeedKey(req));
    RETURN_IF_ERROR(req.storage->Delete(req.path));
    return core::Response::Empty();
  }

  absl::StatusOr<core::Response> List(core::Request& req) {
    std::string prefix = req.path;
    if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
    ASSIGN_OR_RETURN(auto keys, req.storage->List(prefix, "", 0));
    if (keys.empty()) return absl::NotFoundError("");
    json::array arr;
    for (auto& k : keys) arr.emplace_back(k);
    return core::Response::Data(json::object{{"keys", std::move(arr)}});
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  const core::MountEntry& entry = config.entry;
  if (const auto* v = entry.options.if_contains("version"); v && v->is_string()) {
    if (v->as_string() == "2")
      return absl::InvalidArgumentError(
          "kv version 2 is not supported yet: enable the mount with version 1 (the default)");
    if (v->as_string() != "1" && !v->as_string().empty())
      return absl::InvalidArgumentError(
          Cat("unknown kv version \"", std::string_view(v->as_string()), "\""));
  }
  return std::unique_ptr<core::Backend>(new KvBackend());
}

}  // namespace coffer::engines::kv
