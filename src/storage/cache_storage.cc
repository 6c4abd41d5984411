#include "storage/cache_storage.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"

namespace coffer::storage {

CacheStorage::CacheStorage(Storage* under, size_t max_entries, size_t max_bytes)
    : under_(under),
      max_entries_per_shard_(std::max<size_t>(1, max_entries / kShards)),
      max_bytes_per_shard_(std::max<size_t>(kMaxValueBytes, max_bytes / kShards)) {}

CacheStorage::Shard& CacheStorage::ShardOf(std::string_view key) {
  return shards_[absl::HashOf(key) % kShards];
}

size_t CacheStorage::Cost(const Entry& e) {
  // The strings, the list node and the index node around them, roughly.
  return e.key.size() + (e.value ? e.value->size() : 0) + 160;
}

void CacheStorage::EraseLocked(Shard& s, std::list<Entry>::iterator it) {
  s.bytes -= Cost(*it);
  s.index.erase(std::string_view(it->key));
  s.lru.erase(it);
}

absl::StatusOr<std::optional<std::string>> CacheStorage::Get(std::string_view key) {
  Shard& s = ShardOf(key);
  uint64_t generation = 0;
  bool may_fill = false;
  {
    MutexLock l(&s.mu);
    if (auto it = s.index.find(key); it != s.index.end()) {
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second->value;
    }
    generation = s.generation;
    may_fill = s.writers == 0;
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  auto read = under_->Get(key);
  if (!may_fill || !read.ok() || (*read && (*read)->size() > kMaxValueBytes)) return read;
  MutexLock l(&s.mu);
  // A write to this shard began or ended while we read: what we read may be older than it.
  if (s.generation != generation || s.index.contains(key)) return read;
  s.lru.push_front(Entry{std::string(key), *read});
  s.index.emplace(std::string_view(s.lru.front().key), s.lru.begin());
  s.bytes += Cost(s.lru.front());
  while (s.lru.size() > max_entries_per_shard_ || s.bytes > max_bytes_per_shard_)
    EraseLocked(s, std::prev(s.lru.end()));
  return read;
}

void CacheStorage::BeginWrite(const std::vector<std::string_view>& keys) {
  for (std::string_view key : keys) {
    Shard& s = ShardOf(key);
    MutexLock l(&s.mu);
    ++s.generation;
    ++s.writers;
    if (auto it = s.index.find(key); it != s.index.end()) EraseLocked(s, it->second);
  }
}

void CacheStorage::EndWrite(const std::vector<std::string_view>& keys) {
  for (std::string_view key : keys) {
    Shard& s = ShardOf(key);
    MutexLock l(&s.mu);
    ++s.generation;
    --s.writers;
    if (auto it = s.index.find(key); it != s.index.end()) EraseLocked(s, it->second);
  }
}

void CacheStorage::DropPrefixLocked(Shard& s, std::string_view prefix) {
  auto it = s.index.lower_bound(prefix);
  while (it != s.index.end() && it->first.substr(0, prefix.size()) == prefix) {
    auto node = it->second;
    ++it;  // EraseLocked removes the current index entry
    EraseLocked(s, node);
  }
}

void CacheStorage::BeginPrefix(std::string_view prefix) {
  for (Shard& s : shards_) {
    MutexLock l(&s.mu);
    ++s.generation;
    ++s.writers;
    DropPrefixLocked(s, prefix);
  }
}

void CacheStorage::EndPrefix(std::string_view prefix) {
  for (Shard& s : shards_) {
    MutexLock l(&s.mu);
    ++s.generation;
    --s.writers;
    DropPrefixLocked(s, prefix);
  }
}

// Every write drops its keys before and after it reaches the backend (whatever its outcome: a
// failed write may still have landed), and keeps reads that overlap it from filling the cache.
absl::Status CacheStorage::Put(std::string_view key, std::string_view value) {
  BeginWrite({key});
  absl::Status st = under_->Put(key, value);
  EndWrite({key});
  return st;
}

absl::Status CacheStorage::Delete(std::string_view key) {
  BeginWrite({key});
  absl::Status st = under_->Delete(key);
  EndWrite({key});
  return st;
}

absl::Status CacheStorage::Write(std::vector<WriteOp> ops) {
  std::vector<std::string> owned;
  owned.reserve(ops.size());
  for (const WriteOp& op : ops) owned.push_back(op.key);
  const std::vector<std::string_view> keys(owned.begin(), owned.end());
  BeginWrite(keys);
  absl::Status st = under_->Write(std::move(ops));
  EndWrite(keys);
  return st;
}

// The keys stay "being written" until the write is durable: a read that misses meanwhile
// (the store may still answer the older value) fills nothing.
void CacheStorage::WriteAsync(std::vector<WriteOp> ops, WriteDone done) {
  std::vector<std::string> owned;
  owned.reserve(ops.size());
  for (const WriteOp& op : ops) owned.push_back(op.key);
  auto keys = std::make_shared<const std::vector<std::string>>(std::move(owned));
  auto ended = std::make_shared<std::atomic<bool>>(false);  // EndWrite once, whatever throws
  auto end = [this, keys, ended] {
    if (!ended->exchange(true)) EndWrite(std::vector<std::string_view>(keys->begin(), keys->end()));
  };
  BeginWrite(std::vector<std::string_view>(keys->begin(), keys->end()));
  try {
    under_->WriteAsync(std::move(ops), [end, done = std::move(done)](absl::Status st) {
      end();
      done(std::move(st));
    });
  } catch (...) {  // not started (no memory): the keys must not stay "being written"
    end();
    throw;
  }
}

absl::Status CacheStorage::DeletePrefix(std::string_view prefix) {
  BeginPrefix(prefix);
  absl::Status st = under_->DeletePrefix(prefix);
  EndPrefix(prefix);
  return st;
}

size_t CacheStorage::entries() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    MutexLock l(&s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace coffer::storage
