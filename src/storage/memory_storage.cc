#include "storage/memory_storage.h"

namespace coffer::storage {

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

absl::StatusOr<std::optional<std::string>> MemoryStorage::Get(std::string_view key) {
  ReaderMutexLock l(&mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

absl::Status MemoryStorage::Put(std::string_view key, std::string_view value) {
  MutexLock l(&mu_);
  data_.insert_or_assign(std::string(key), std::string(value));
  return absl::OkStatus();
}

absl::Status MemoryStorage::Delete(std::string_view key) {
  MutexLock l(&mu_);
  auto it = data_.find(key);
  if (it != data_.end()) data_.erase(it);
  return absl::OkStatus();
}

absl::Status MemoryStorage::Write(std::vector<WriteOp> ops) {
  MutexLock l(&mu_);
  for (auto& op : ops) {
    if (op.kind == WriteOp::Kind::kPut) {
      data_.insert_or_assign(std::move(op.key), std::move(op.value));
    } else {
      auto it = data_.find(op.key);
      if (it != data_.end()) data_.erase(it);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> MemoryStorage::List(std::string_view prefix,
                                                             std::string_view after, size_t limit) {
  ReaderMutexLock l(&mu_);
  std::vector<std::string> out;
  std::string seek = std::string(prefix) + std::string(after);
  auto it = after.empty() ? data_.lower_bound(seek) : data_.upper_bound(seek);
  while (it != data_.end() && (limit == 0 || out.size() < limit)) {
    std::string_view key = it->first;
    if (key.substr(0, prefix.size()) != prefix) break;
    std::string_view rest = key.substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      out.emplace_back(rest);
      ++it;
    } else {
      std::string dir(rest.substr(0, slash + 1));
      if (after.empty() || dir > after) out.push_back(dir);
      // Skip the whole sub-folder with one seek.
      it = data_.lower_bound(PrefixEnd(std::string(prefix) + dir));
    }
  }
  return out;
}

absl::Status MemoryStorage::DeletePrefix(std::string_view prefix) {
  MutexLock l(&mu_);
  auto begin = data_.lower_bound(prefix);
  std::string end = PrefixEnd(prefix);
  auto last = end.empty() ? data_.end() : data_.lower_bound(end);
  data_.erase(begin, last);
  return absl::OkStatus();
}

}  // namespace coffer::storage
