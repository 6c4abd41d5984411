// TokenStore: tokens are random ("hvs." + 24 base62 characters) and stored only as
// HMAC-SHA256(salt, token) under `sys/token/id/<hex>`, with the accessor under
// `sys/token/accessor/<hex>`. The salt is random per server and kept in the barrier at
// `core/token-salt`. Lookups go through an in-memory cache keyed by the same hash.
//
// This first version holds root tokens only; the token/ACL issue extends TokenEntry (ttl,
// num_uses, parent ...) and adds the auth/token endpoints.
// All methods are safe to call from several threads.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "storage/storage.h"

namespace coffer::core {

struct TokenEntry {
  std::string id_hash;  // never the token itself
  std::string accessor;
  std::vector<std::string> policies;
  std::string path;
  std::string display_name;
  int64_t creation_time = 0;
  int64_t ttl = 0;  // 0: never expires (root)
};

class TokenStore {
 public:
  // `barrier` must outlive the store.
  explicit TokenStore(storage::Storage* barrier) : barrier_(barrier) {}

  // Loads or creates the salt. Call after unseal.
  absl::Status Setup();
  // Forgets the salt and the cache (on seal).
  void Clear();

  // Returns the new token; only its hash is stored.
  absl::StatusOr<std::string> CreateRootToken();
  // nullopt for an unknown token. Never logs the token.
  absl::StatusOr<std::optional<TokenEntry>> Lookup(std::string_view token);

 private:
  absl::StatusOr<std::string> Hash(std::string_view value);
  storage::Storage* const barrier_;
  absl::Mutex mu_;
  std::string salt_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TokenEntry> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::core
