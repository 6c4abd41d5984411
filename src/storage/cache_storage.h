// CacheStorage: a read cache in front of a storage backend, as Vault's physical cache (its
// `cache_size` and `disable_cache` keys). It holds what the backend holds (ciphertext, under the
// barrier), so a hit saves the backend read (for SQLite a read transaction: its locks, fcntl
// calls and the B-tree walk), not the decryption.
//
// Only for a backend that this process alone writes (SQLite, memory): a write by anyone else
// would leave the cache stale. The server never puts it over etcd.
//
// Consistency: a read never fills the cache with a value older than a write that finished
// before the fill. Each shard has a generation, bumped (and the key dropped) before and after
// every write that touches it, and a count of the writes in progress on it; a read that missed
// fills only if no write was in progress on its shard when it began and its shard's generation
// did not move while it read the backend. (So a batch's keys are never seen half old from the
// cache, half new from the backend, either.) Writes do not fill (certificates written once and read
// rarely would only push out what is read). Absent keys are cached too (a lookup of what does not
// exist is common: a token or lease checked before it is made).
//
// Bounded by entries (an LRU per shard, each holding max_entries / 16, at least one) and by
// 64 MiB of keys and values (an estimate, per shard too); values over 64 KiB are not cached.
// A prefix delete (a mount disabled, a token's cubbyhole) drops only the keys under the prefix,
// found through each shard's ordered index.
// Thread-safe; a hit takes one shard mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class CacheStorage final : public Storage {
 public:
  static constexpr size_t kDefaultEntries = 131072;  // Vault's default cache_size
  static constexpr size_t kDefaultBytes = 64u << 20;
  static constexpr size_t kMaxValueBytes = 64u << 10;

  // `under` must outlive this. `max_entries` > 0.
  explicit CacheStorage(Storage* under, size_t max_entries = kDefaultEntries,
                        size_t max_bytes = kDefaultBytes);
  // The same, owning the storage under it.
  explicit CacheStorage(std::unique_ptr<Storage> owned, size_t max_entries = kDefaultEntries,
                        size_t max_bytes = kDefaultBytes)
      : CacheStorage(owned.get(), max_entries, max_bytes) {
    owned_ = std::move(owned);
  }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::Status Write(std::vector<WriteOp> ops) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return under_->List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override;
  std::string_view Type() const override { return under_->Type(); }
  void WriteAsync(std::vector<WriteOp> ops, WriteDone done) override;
  bool WritesAsync() const override { return under_->WritesAsync(); }

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  size_t entries() const;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    std::string key;
    std::optional<std::string> value;
  };
  struct Shard {
    mutable Mutex mu;
    uint64_t generation = 0;
    int writers = 0;  // writes in progress on this shard's keys
    size_t bytes = 0;
    std::list<Entry> lru;  // most recently used first
    // Keys in `lru`, ordered (prefix deletes); the views point into the list's nodes.
    std::map<std::string_view, std::list<Entry>::iterator, std::less<>> index;
  };

  Shard& ShardOf(std::string_view key);
  // A write's start and end on the shards of `keys` (all shards for a prefix): generation
  // bumped, writers counted, the keys (or the prefix's keys) dropped.
  void BeginWrite(const std::vector<std::string_view>& keys);
  void EndWrite(const std::vector<std::string_view>& keys);
  void BeginPrefix(std::string_view prefix);
  void EndPrefix(std::string_view prefix);
  void DropPrefixLocked(Shard& s, std::string_view prefix);
  void EraseLocked(Shard& s, std::list<Entry>::iterator it);
  static size_t Cost(const Entry& e);

  std::unique_ptr<Storage> owned_;
  Storage* const under_;
  const size_t max_entries_per_shard_;
  const size_t max_bytes_per_shard_;
  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> hits_{0}, misses_{0};
};

}  // namespace coffer::storage
