#include "engines/transit/transit_backend.h"

#include <charconv>

#include "engines/transit/transit_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {

namespace {

constexpr char kHelp[] =
    "The transit engine encrypts, decrypts, signs, verifies and HMACs data with named, "
    "versioned keys kept in the barrier; ciphertexts are \"vault:v<version>:<base64>\".";

const core::SpecialPaths& TransitSpecialPaths() {
  static const core::SpecialPaths kSpecial{
      // Backups carry the keys: Vault stores them seal-wrapped too.
      .seal_wrap_storage = {"archive/", "policy/"},
      // RSA key generation and rotation take up to seconds. A read of a key (keys/, export/,
      // backup/) also rotates it when its auto_rotate_period is due (a key generation and a
      // durable write): never on a connection's event loop.
      .expensive = {"keys/*", "restore", "restore/*", "export/*", "backup/*"},
  };
  return kSpecial;
}

}  // namespace

FieldSchema Field(FieldType t, std::string description, json::value def) {
  FieldSchema f;
  f.type = t;
  f.description = std::move(description);
  f.default_value = std::move(def);
  return f;
}

absl::StatusOr<std::string> DecodeB64(std::string_view field, std::string_view value) {
  auto b = Base64Decode(value);
  if (!b) return absl::InvalidArgumentError(Cat("failed to base64-decode ", field));
  return std::move(*b);
}

Response BatchResponse(json::array results, bool any_ok, bool any_err, const FieldData& d) {
  Response r = Response::Data(json::object{{"batch_results", std::move(results)}});
  if (any_err) {
    if (!any_ok) {
      r.http_status = 400;
    } else if (d.Has("partial_failure_response_code")) {
      int64_t code = d.Int("partial_failure_response_code");
      if (code >= 200 && code < 600) r.http_status = static_cast<int>(code);
    }
  }
  return r;
}

absl::StatusOr<std::vector<json::object>> BatchItems(const Request& r, const FieldData& d,
                                                     std::initializer_list<std::string_view> keys,
                                                     bool* batch) {
  std::vector<json::object> out;
  const json::value& raw = d.Get("batch_input");
  *batch = !raw.is_null();
  if (*batch) {
    if (!raw.is_array()) return absl::InvalidArgumentError("batch_input must be an array");
    const json::array& a = raw.as_array();
    if (a.empty()) return absl::InvalidArgumentError("missing batch input to process");
    out.reserve(a.size());
    for (const auto& item : a) {
      if (!item.is_object())
        return absl::InvalidArgumentError("each batch_input item must be an object");
      out.push_back(item.as_object());
    }
    return out;
  }
  json::object one;
  for (std::string_view k : keys)
    if (d.Has(k)) one[k] = d.Get(k);
  out.push_back(std::move(one));
  return out;
}

absl::StatusOr<std::string> ItemString(const json::object& item, std::string_view key) {
  const json::value* v = item.if_contains(key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) return absl::InvalidArgumentError(Cat("'", key, "' must be a string"));
  return std::string(v->as_string());
}

absl::StatusOr<std::string> ItemBase64(const json::object& item, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, ItemString(item, key));
  if (s.empty()) return s;
  return DecodeB64(key, s);
}

absl::StatusOr<int> VersionField(const FieldData& d, std::string_view key) {
  const int64_t v = d.Int(key);
  if (v < 0 || v > INT32_MAX)
    return absl::InvalidArgumentError(Cat("'", key, "' must be a non-negative integer"));
  return static_cast<int>(v);
}

absl::StatusOr<int> ItemInt(const json::object& item, std::string_view key) {
  const json::value* v = item.if_contains(key);
  if (v == nullptr || v->is_null()) return 0;
  if (v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= INT32_MAX)
    return static_cast<int>(v->as_int64());
  if (v->is_uint64() && v->as_uint64() <= INT32_MAX) return static_cast<int>(v->as_uint64());
  if (v->is_double() && v->as_double() >= 0 && v->as_double() <= INT32_MAX &&
      v->as_double() == static_cast<double>(static_cast<int>(v->as_double())))
    return static_cast<int>(v->as_double());  // 2.0, as the same field at the top level
  if (v->is_string()) {
    std::string_view s = v->as_string();
    int out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size() && out >= 0) return out;
  }
  return absl::InvalidArgumentError(Cat("'", key, "' must be a non-negative integer"));
}

absl::StatusOr<Response> RunItems(
    const Request& r, const FieldData& d, std::initializer_list<std::string_view> keys,
    const std::function<absl::StatusOr<json::object>(const json::object&)>& one) {
  bool batch = false;
  ASSIGN_OR_RETURN(std::vector<json::object> items, BatchItems(r, d, keys, &batch));
  if (!batch) {
    ASSIGN_OR_RETURN(json::object out, one(items[0]));
    return Response::Data(std::move(out));
  }
  json::array results;
  results.reserve(items.size());
  bool any_ok = false;
  bool any_err = false;
  for (const auto& item : items) {
    auto out = one(item);
    json::object res;
    if (out.ok()) {
      res = std::move(*out);
      any_ok = true;
    } else {
      if (!absl::IsInvalidArgument(out.status()) && !absl::IsNotFound(out.status()) &&
          !absl::IsFailedPrecondition(out.status()))
        return out.status();
      res["error"] = Msg(out.status());
      any_err = true;
    }
    if (const auto* ref = item.if_contains("reference")) res["reference"] = *ref;
    results.push_back(std::move(res));
  }
  return BatchResponse(std::move(results), any_ok, any_err, d);
}

TransitBackend::TransitBackend(const core::BackendConfig& cfg)
    : FrameworkBackend(kHelp, Paths(this), TransitSpecialPaths()),
      storage_(cfg.storage),
      clock_(cfg.clock) {}

std::vector<Path> TransitBackend::Paths(TransitBackend* self) {
  std::vector<Path> p;
  KeyPaths(self, p);
  CryptoPaths(self, p);
  SignPaths(self, p);
  UtilPaths(self, p);
  return p;
}

void TransitBackend::InvalidateKey(std::string_view key) {
  if (key.substr(0, kPolicyPrefix.size()) != kPolicyPrefix) return;
  MutexLock l(&mu_);
  ++generation_;
  cache_.erase(std::string(key.substr(kPolicyPrefix.size())));
}

void TransitBackend::Cleanup() {
  MutexLock l(&mu_);
  ++generation_;
  cache_.clear();
}

absl::StatusOr<std::shared_ptr<const Policy>> TransitBackend::Load(const std::string& name) {
  uint64_t generation = 0;
  {
    ReaderMutexLock l(&mu_);
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    generation = generation_;
  }
  ASSIGN_OR_RETURN(auto raw, storage_->Get(Cat(kPolicyPrefix, name)));
  if (!raw) return std::shared_ptr<const Policy>();
  ASSIGN_OR_RETURN(std::unique_ptr<Policy> p, Policy::Parse(*raw));
  std::shared_ptr<const Policy> shared(std::move(p));
  MutexLock l(&mu_);
  // A change since the read (a store, a delete, an invalidation) wins: what was read may be
  // older, so it is only cached when nothing changed meanwhile.
  if (generation != generation_) {
    auto it = cache_.find(name);
    return it != cache_.end() ? it->second : shared;
  }
  auto [it, inserted] = cache_.emplace(name, shared);
  return it->second;
}

absl::StatusOr<std::shared_ptr<const Policy>> TransitBackend::Get(const std::string& name) {
  ASSIGN_OR_RETURN(auto p, Load(name));
  if (!p || p->auto_rotate_period <= 0) return p;
  auto newest = p->versions.find(p->latest_version);
  int64_t born = newest == p->versions.end() ? 0 : newest->second.time;
  if (Now() - born < p->auto_rotate_period) return p;
  // Due: rotate once (another request may have done it meanwhile).
  MutexLock w(&write_mu_);
  ASSIGN_OR_RETURN(p, Load(name));
  if (!p) return p;
  newest = p->versions.find(p->latest_version);
  born = newest == p->versions.end() ? 0 : newest->second.time;
  if (p->auto_rotate_period <= 0 || Now() - born < p->auto_rotate_period) return p;
  auto next = p->Clone();
  RETURN_IF_ERROR(next->Rotate(Now()));
  RETURN_IF_ERROR(Store(std::move(next)));
  return Load(name);
}

absl::Status TransitBackend::Store(std::unique_ptr<Policy> p) {
  std::string name = p->name;
  ASSIGN_OR_RETURN(std::string text, p->Serialize());
  RETURN_IF_ERROR(storage_->Put(Cat(kPolicyPrefix, name), text));
  std::shared_ptr<const Policy> shared(std::move(p));
  MutexLock l(&mu_);
  ++generation_;
  cache_[name] = std::move(shared);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Policy>> TransitBackend::GetOrCreate(const std::string& name,
                                                                          bool create,
                                                                          const FieldData& d) {
  ASSIGN_OR_RETURN(auto p, Get(name));
  if (p) return p;
  if (!create) return absl::InvalidArgumentError("encryption key not found");
  KeyType type = KeyType::kAes256Gcm96;
  if (d.Has("type")) {
    ASSIGN_OR_RETURN(type, ParseKeyType(d.String("type")));
  }
  if (!SupportsEncryption(type) || !IsSymmetric(type))
    return absl::InvalidArgumentError(
        Cat("key type ", KeyTypeName(type), " cannot be created by encrypt; create it at keys/"));
  MutexLock w(&write_mu_);
  ASSIGN_OR_RETURN(p, Load(name));
  if (p) return p;
  ASSIGN_OR_RETURN(std::unique_ptr<Policy> np, Policy::Create(name, type, Now()));
  // A context on the first encryption makes a derived key, as Vault's upsert does.
  bool has_context = d.Has("context") && !d.String("context").empty();
  const json::value& batch = d.Get("batch_input");
  if (batch.is_array() && !batch.as_array().empty() && batch.as_array()[0].is_object()) {
    const auto* c = batch.as_array()[0].as_object().if_contains("context");
    has_context = c != nullptr && c->is_string() && !c->as_string().empty();
  }
  np->derived = has_context;
  if (d.Has("convergent_encryption") && d.Bool("convergent_encryption")) {
    if (!has_context)
      return absl::InvalidArgumentError(
          "convergent encryption requires derivation to be enabled, so context is required");
    np->convergent = true;
    np->convergent_version = 3;
  }
  RETURN_IF_ERROR(Store(std::move(np)));
  return Load(name);
}

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config) {
  return std::unique_ptr<core::Backend>(new TransitBackend(config));
}

}  // namespace coffer::engines::transit
