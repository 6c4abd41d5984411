#include "core/watch.h"

namespace coffer::core {

uint64_t WatchHub::Generation(const std::string& path) {
  MutexLock l(&mu_);
  auto it = paths_.find(path);
  return it != paths_.end() ? it->second.gen : writes_.load();
}

uint64_t WatchHub::Subscribe(const std::string& path, uint64_t gen, std::function<void()> wake) {
  {
    MutexLock l(&mu_);
    auto it = paths_.find(path);
    // Without an entry the generation was the global write count: unchanged means no write at
    // all since (a write elsewhere only costs this waiter a spurious wake and one more read).
    const bool unchanged = it != paths_.end() ? it->second.gen == gen : writes_.load() == gen;
    if (unchanged) {
      if (it == paths_.end()) {
        it = paths_.try_emplace(path).first;
        it->second.gen = gen;
        tracked_.store(paths_.size());
      }
      const uint64_t id = next_id_++;
      it->second.waiters.push_back({id, std::move(wake)});
      ids_.emplace(id, path);
      return id;
    }
  }
  wake();
  return 0;
}

bool WatchHub::Cancel(uint64_t id) {
  MutexLock l(&mu_);
  auto idit = ids_.find(id);
  if (idit == ids_.end()) return false;
  auto it = paths_.find(idit->second);
  ids_.erase(idit);
  if (it == paths_.end()) return false;
  auto& w = it->second.waiters;
  for (size_t i = 0; i < w.size(); ++i)
    if (w[i].id == id) {
      w.erase(w.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  if (w.empty()) {
    paths_.erase(it);
    tracked_.store(paths_.size());
  }
  return true;
}

void WatchHub::Notify(const std::string& path) {
  // Every write moves the global count (what a reader of an untracked path compares against);
  // only with someone waiting is the lock taken. Sequentially consistent on both atomics: the
  // writer's increment-then-load and the subscriber's store-then-load must not both miss.
  writes_.fetch_add(1);
  if (tracked_.load() == 0) return;
  std::vector<Waiter> woken;
  {
    MutexLock l(&mu_);
    auto it = paths_.find(path);
    if (it == paths_.end()) return;
    woken.swap(it->second.waiters);
    for (const auto& w : woken) ids_.erase(w.id);
    paths_.erase(it);
    tracked_.store(paths_.size());
  }
  for (auto& w : woken) w.wake();
}

void WatchHub::Clear() {
  std::unordered_map<std::string, Entry> gone;
  {
    MutexLock l(&mu_);
    gone.swap(paths_);
    ids_.clear();
    tracked_.store(0);
  }
  // The waiters' state is released here, outside the lock.
}

size_t WatchHub::Waiting() const {
  MutexLock l(&mu_);
  return ids_.size();
}

}  // namespace coffer::core
