// The Transit engine's backend class, shared by its paths_*.cc files.
//
// Keys are kept in storage at "policy/<name>" (JSON, encrypted by the barrier) and cached as
// immutable Policy snapshots: an operation takes a shared_ptr to the current snapshot and works
// without locks; a change (create, rotate, config, trim, restore, delete) builds a new snapshot
// under write_mu_, stores it, then swaps it into the cache. Another node's change reaches the
// cache through InvalidateKey.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "boost/json.hpp"
#include "core/framework/framework.h"
#include "engines/transit/policy.h"
#include "util/mutex.h"

namespace coffer::engines::transit {

namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;
using core::framework::Path;

inline constexpr std::string_view kPolicyPrefix = "policy/";

class TransitBackend final : public core::framework::FrameworkBackend {
 public:
  explicit TransitBackend(const core::BackendConfig& cfg);

  void InvalidateKey(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_);
  // On an HA standby: the cryptographic operations with existing keys (encrypt on a key that
  // does not exist creates it: a write, sent to the active server).
  bool ServesOnStandby(std::string_view path, core::Operation op) const override {
    if (core::Backend::ServesOnStandby(path, op)) return true;
    if (op != core::Operation::kUpdate && op != core::Operation::kCreate) return false;
    for (std::string_view p : {"encrypt/", "decrypt/", "rewrap/", "datakey/", "hmac/", "sign/",
                               "verify/", "random", "hash"})
      if (path.starts_with(p)) return true;
    return false;
  }
  void Cleanup() override ABSL_LOCKS_EXCLUDED(mu_);

  // The key `name`, or null when there is none. Rotates it first when its auto_rotate_period
  // has passed since its newest version.
  absl::StatusOr<std::shared_ptr<const Policy>> Get(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  // Stores `p` and makes it the current snapshot. Caller holds write_mu_.
  absl::Status Store(std::unique_ptr<Policy> p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The key for an encrypt-like operation: created as `type` when missing and `create` is set
  // (Vault's upsert on encrypt/ with "create" capability).
  absl::StatusOr<std::shared_ptr<const Policy>> GetOrCreate(const std::string& name, bool create,
                                                            const FieldData& d)
      ABSL_LOCKS_EXCLUDED(mu_, write_mu_);
  // The key as stored (cached), without the auto-rotation check; for changes under write_mu_.
  absl::StatusOr<std::shared_ptr<const Policy>> Load(const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Now() const { return clock_->NowUnix(); }

  storage::Storage* storage() const { return storage_; }
  Mutex write_mu_;  // serializes changes to keys

 private:
  static std::vector<Path> Paths(TransitBackend* self);
  static void KeyPaths(TransitBackend* self, std::vector<Path>& p);
  static void CryptoPaths(TransitBackend* self, std::vector<Path>& p);
  static void SignPaths(TransitBackend* self, std::vector<Path>& p);
  static void UtilPaths(TransitBackend* self, std::vector<Path>& p);

  storage::Storage* storage_;
  const Clock* clock_;
  Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Policy>> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every change to cache_
};

// Helpers shared by the path files.
FieldSchema Field(FieldType t, std::string description, json::value def = nullptr);
// base64 field -> bytes; InvalidArgument naming the field.
absl::StatusOr<std::string> DecodeB64(std::string_view field, std::string_view value);
// A batch's answer: 200, or 400 when every item failed (Vault's batch rule), with the
// results either way.
Response BatchResponse(json::array results, bool any_ok, bool any_err, const FieldData& d);
// A batch item's fields: a string ("" when absent), a base64 string decoded ("" when absent),
// a non-negative int (0 when absent); InvalidArgument naming the field for another type.
absl::StatusOr<std::string> ItemString(const json::object& item, std::string_view key);
absl::StatusOr<std::string> ItemBase64(const json::object& item, std::string_view key);
absl::StatusOr<int> ItemInt(const json::object& item, std::string_view key);
// A top-level key version: 0 to 2^31-1, InvalidArgument naming the field otherwise (never cut to
// another version).
absl::StatusOr<int> VersionField(const core::framework::FieldData& d, std::string_view key);
// Runs `one` over the request's items (batch_input, or one item of the top-level `keys`): a
// single item's error is the response's; in a batch a user error (invalid argument, not
// found, failed precondition) goes in the item's slot and any other error fails the request,
// as in Vault. Items' "reference" is echoed.
absl::StatusOr<Response> RunItems(
    const Request& r, const FieldData& d, std::initializer_list<std::string_view> keys,
    const std::function<absl::StatusOr<json::object>(const json::object&)>& one);
// The batch items of `d` ("batch_input"), or one item built from the top-level fields.
absl::StatusOr<std::vector<json::object>> BatchItems(const Request& r, const FieldData& d,
                                                     std::initializer_list<std::string_view> keys,
                                                     bool* batch);

}  // namespace coffer::engines::transit
