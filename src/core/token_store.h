// TokenStore: service tokens as Vault's token store keeps them.
//
// A token is "hvs." + 24 random base62 characters (>142 bits) and is never stored: entries live
// under `sys/token/id/<HMAC-SHA256(salt, token)>`, accessors under
// `sys/token/accessor/<HMAC(salt, accessor)>`, the parent/child tree under
// `sys/token/parent/<parent hash>/<child hash>`, and an expiry index under
// `sys/token/expire/<unix seconds, 20 digits>/<hash>` that the background tidy walks in order.
// The salt is random per server and kept in the barrier at `core/token-salt`.
//
// Lookups refuse an expired token at once; Tidy() removes expired tokens (and their children)
// in pages. Revoking a token revokes its children unless they are orphans (or the revocation
// asks to orphan them). A lookup cache is keyed by the salted hash and dropped on revocation.
// All methods are safe to call from several threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "boost/json/object.hpp"
#include "crypto/crypto.h"
#include "storage/storage.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::core {

// Where the cubbyhole of each token lives in the barrier ("<prefix><id_hash>/<path>"); revoking
// a token deletes its cubbyhole.
inline constexpr std::string_view kCubbyholePrefix = "sys/token/cubbyhole/";
// A revoked token leaves "<prefix><id_hash>" here, in the batch that removes it; the core's tidy
// then revokes the leases that token obtained and removes the marker (leases.cc).
inline constexpr std::string_view kRevokedTokenLeasesPrefix = "sys/expire/revoked-token/";

struct TokenEntry {
  std::string id_hash;  // never the token itself
  std::string accessor;
  std::vector<std::string> policies;
  std::string path = "auth/token/create";
  std::string display_name = "token";
  std::map<std::string, std::string> meta;
  std::string parent_hash;  // empty: an orphan
  std::string role;
  int64_t creation_time = 0;
  int64_t creation_ttl = 0;  // the TTL given at creation
  int64_t ttl = 0;           // 0: never expires (root tokens)
  int64_t expire_time = 0;   // unix seconds; 0: never
  int64_t explicit_max_ttl = 0;
  int64_t period = 0;
  int64_t num_uses = 0;  // 0: unlimited
  bool renewable = true;
  std::vector<std::string> bound_cidrs;

  bool IsRoot() const;
  boost::json::object ToStorage() const;
  static absl::StatusOr<TokenEntry> FromStorage(std::string id_hash, const boost::json::object& o);
};

struct CreatedToken {
  std::string token;  // sensitive: returned once to the caller
  TokenEntry entry;
};

class TokenStore {
 public:
  // `barrier` and `clock` must outlive the store.
  TokenStore(storage::Storage* barrier, const Clock* clock) : barrier_(barrier), clock_(clock) {}

  // Loads or creates the salt. Call after unseal.
  absl::Status Setup() ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the salt and the cache (on seal).
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);
  // Another server changed the token `sys/token/id/<id_hash>` (HA standbys): drops it.
  void Invalidate(std::string_view id_hash) ABSL_LOCKS_EXCLUDED(mu_);

  // Stores a new token described by `entry` (id_hash, accessor and creation_time are filled in;
  // expire_time from ttl). Returns the token.
  absl::StatusOr<CreatedToken> Create(TokenEntry entry) ABSL_LOCKS_EXCLUDED(mu_);
  // A root token. `id`, when not empty, is the token itself instead of a random one (the dev
  // server's -dev-root-token-id, as Vault's): printable ASCII without spaces, and not a token
  // that exists already (kInvalidArgument, kAlreadyExists).
  absl::StatusOr<std::string> CreateRootToken(std::string_view id = {}) ABSL_LOCKS_EXCLUDED(mu_);

  // nullopt for an unknown or expired token. Never logs the token.
  absl::StatusOr<std::optional<TokenEntry>> Lookup(std::string_view token) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<TokenEntry>> LookupByHash(std::string_view id_hash)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<TokenEntry>> LookupByAccessor(std::string_view accessor)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Revokes the token; its children too unless `orphan_children`, in which case they lose
  // their parent and stay valid.
  absl::Status Revoke(std::string_view id_hash, bool orphan_children = false)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_);
  // Extends the token's TTL by `increment` (0: its creation TTL), capped by explicit_max_ttl and
  // `mount_max_ttl` counted from its creation. Returns the updated entry and warnings.
  absl::StatusOr<TokenEntry> Renew(std::string_view id_hash, int64_t increment,
                                   int64_t mount_max_ttl, std::vector<std::string>* warnings)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_);
  // Counts one use of a limited-use token. Fails with kPermissionDenied once the uses are gone;
  // the use that exhausts the token succeeds and revokes it.
  absl::Status Use(const TokenEntry& entry) ABSL_LOCKS_EXCLUDED(write_mu_, mu_);

  // One page of accessors (LIST auth/token/accessors).
  absl::StatusOr<std::vector<std::string>> Accessors(std::string_view after, size_t limit)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Live tokens (not expired, not used up) by policy, for the usage gauge
  // coffer.token.count.by_policy. Walks sys/token/id/ a page at a time and reads each entry
  // (one storage read and decryption per token, the cache left alone), at most `max_tokens` of
  // them: `*complete` says whether that was all. A token counts once under each of its policies.
  absl::StatusOr<std::map<std::string, int64_t>> CountByPolicy(size_t max_tokens, bool* complete)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Revokes every token (with its children) whose path is under `prefix`, which ends in '/':
  // the path with a '/' appended must start with it, so "auth/approle/" takes the tokens of
  // auth/approle/login and "auth/approle/login/" those too, as Vault's lease IDs
  // "<path>/<id>" do. With `expiring_only`, tokens that never expire are kept: in Vault they
  // hold no lease, so sys/leases/revoke-prefix does not reach them. Walks every entry (one
  // read each): for unmounting an auth method and operators' revoke-prefix, not hot paths.
  // Returns how many matched.
  absl::StatusOr<int> RevokeUnderPath(std::string_view prefix, bool expiring_only)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_);
  // Revokes every stored token (with its children) for which `pred` holds, walking them all as
  // RevokeUnderPath does; `pred` runs with no lock of the store held. Returns how many matched.
  absl::StatusOr<int> RevokeMatching(const std::function<bool(const TokenEntry&)>& pred)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_);
  // Rewrites the path of every token under `from` (matched as RevokeUnderPath does) to start
  // with `to` instead, both ending in '/': the tokens of a moved auth method follow it, as its
  // leases do, so their renewals are capped by the mount at its new path. Returns how many.
  absl::StatusOr<int> MovePath(std::string_view from, std::string_view to)
      ABSL_LOCKS_EXCLUDED(write_mu_, mu_);
  // Revokes tokens whose expiry has passed, up to `max` of them; returns how many.
  absl::StatusOr<int> Tidy(int max = 1000) ABSL_LOCKS_EXCLUDED(write_mu_, mu_);

  std::string HashForTest(std::string_view token) { return Hash(token).value_or(""); }

 private:
  absl::StatusOr<std::string> Hash(std::string_view value) ABSL_LOCKS_EXCLUDED(mu_);
  // Create() with the token chosen by the caller.
  absl::StatusOr<CreatedToken> Store(TokenEntry entry, std::string token) ABSL_LOCKS_EXCLUDED(mu_);
  // Calls `fn` with each stored entry (corrupt ones skipped), reading sys/token/id/ a page at
  // a time and bypassing the cache, at most `max_tokens` of them; returns whether that was all.
  absl::StatusOr<bool> WalkEntries(size_t max_tokens, const std::function<void(TokenEntry&&)>& fn)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The stored entry whatever its state (expired or used up), through the cache.
  absl::StatusOr<std::optional<TokenEntry>> Load(std::string_view id_hash) ABSL_LOCKS_EXCLUDED(mu_);
  // After a write to an entry: drops it from the cache, or caches what was written.
  void Uncache(std::string_view id_hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Recache(const TokenEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Persist(const TokenEntry& e, std::vector<storage::WriteOp>* ops);
  static std::string ExpireKey(int64_t at, std::string_view hash);

  storage::Storage* const barrier_;
  const Clock* const clock_;
  // Serializes read-modify-write of entries (renew, use, revoke); guards no member itself.
  Mutex write_mu_;
  Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  std::unique_ptr<crypto::HmacSha256Key> salt_ ABSL_GUARDED_BY(mu_);  // null while sealed
  absl::flat_hash_map<std::string, TokenEntry> cache_ ABSL_GUARDED_BY(mu_);
  // Bumped whenever a cached entry is changed or dropped. Load() fills the cache only if it did
  // not move while it read storage, so an older copy never overwrites a revoke or a renewal.
  uint64_t cache_gen_ ABSL_GUARDED_BY(mu_) = 0;
};

// The fields of a token lookup (`id` only when the caller presented the token itself).
boost::json::object LookupData(const TokenEntry& e, std::string_view id, int64_t now);
// Vault's `auth` block for a new or renewed token.
boost::json::object AuthBlock(const TokenEntry& e, std::string_view token);

}  // namespace coffer::core
