#include "core/watch.h"

namespace coffer::core {

size_t WatchHub::Bucket(const std::string& path) {
  return std::hash<std::string>{}(path) % kBuckets;
}

uint64_t WatchHub::Generation(const std::string& path) {
  MutexLock l(&mu_);
  auto it = paths_.find(path);
  return it != paths_.end() ? it->second.gen : writes_[Bucket(path)].load();
}

uint64_t WatchHub::Subscribe(const std::string& path, uint64_t gen, std::function<void()> wake) {
  // Counted as waiting before the write count is looked at, as Notify counts its write before it
  // looks for waiters (both sequentially consistent): of a write and a subscription that race,
  // one always sees the other.
  tracked_.fetch_add(1);
  {
    MutexLock l(&mu_);
    auto it = paths_.find(path);
    // Without an entry the generation was the path's bucket's write count: unchanged means no
    // write to any path of the bucket since (another path's write costs a spurious wake).
    const bool unchanged =
        it != paths_.end() ? it->second.gen == gen : writes_[Bucket(path)].load() == gen;
    if (unchanged) {
      if (it == paths_.end()) {
        it = paths_.try_emplace(path).first;
        it->second.gen = gen;
      }
      const uint64_t id = next_id_++;
      it->second.waiters.push_back({id, std::move(wake)});
      ids_.emplace(id, path);
      return id;
    }
  }
  tracked_.fetch_sub(1);
  wake();
  return 0;
}

bool WatchHub::Cancel(uint64_t id) {
  MutexLock l(&mu_);
  auto idit = ids_.find(id);
  if (idit == ids_.end()) return false;
  auto it = paths_.find(idit->second);
  ids_.erase(idit);
  tracked_.fetch_sub(1);
  if (it == paths_.end()) return true;
  auto& w = it->second.waiters;
  for (size_t i = 0; i < w.size(); ++i)
    if (w[i].id == id) {
      w.erase(w.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  if (w.empty()) paths_.erase(it);
  return true;
}

void WatchHub::Notify(const std::string& path) {
  writes_[Bucket(path)].fetch_add(1);
  if (tracked_.load() == 0) return;  // nobody waits anywhere: no lock
  std::vector<Waiter> woken;
  {
    MutexLock l(&mu_);
    auto it = paths_.find(path);
    if (it == paths_.end()) return;
    woken.swap(it->second.waiters);
    for (const auto& w : woken) ids_.erase(w.id);
    paths_.erase(it);
    tracked_.fetch_sub(woken.size());
  }
  for (auto& w : woken) w.wake();
}

void WatchHub::WakeAll() {
  std::vector<Waiter> woken;
  {
    MutexLock l(&mu_);
    for (auto& [path, e] : paths_) {
      writes_[Bucket(path)].fetch_add(1);
      for (auto& w : e.waiters) woken.push_back(std::move(w));
    }
    paths_.clear();
    ids_.clear();
    tracked_.fetch_sub(woken.size());
  }
  for (auto& w : woken) w.wake();
}

void WatchHub::Clear() {
  std::unordered_map<std::string, Entry> gone;
  {
    MutexLock l(&mu_);
    gone.swap(paths_);
    tracked_.fetch_sub(ids_.size());
    ids_.clear();
  }
  // The waiters' state is released here, outside the lock.
}

size_t WatchHub::Waiting() const {
  MutexLock l(&mu_);
  return ids_.size();
}

}  // namespace coffer::core
