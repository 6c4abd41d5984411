// StandbyGuardStorage: the storage an HA standby's barrier writes through. While `read_only` is
// set (the server is a standby that serves requests, docs/ha.md) every write is refused without
// reaching the store, and the refusal is noted for the calling thread: the core then hands the
// whole request to the active server, whatever the engine did with the error (an engine that
// wrapped it, or went on without its write, would otherwise answer from a request half done).
// Reads pass through. Thread-safe if the wrapped storage is.
#pragma once

#include <atomic>
#include <utility>

#include "absl/status/status.h"
#include "storage/storage.h"

namespace coffer::storage {

class StandbyGuardStorage final : public Storage {
 public:
  // Marks the writes refused on this thread while it lives (nested scopes: the innermost).
  class Scope {
   public:
    Scope() : prev_(current_) { current_ = this; }
    ~Scope() { current_ = prev_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    bool write_refused() const { return refused_; }

   private:
    friend class StandbyGuardStorage;
    Scope* prev_;
    bool refused_ = false;
  };

  // Whether a write was refused on this thread within its innermost Scope.
  static bool RefusedInScope() { return current_ && current_->refused_; }

  // `under` must outlive this.
  explicit StandbyGuardStorage(Storage* under) : under_(under) {}
  void SetReadOnly(bool v) { read_only_.store(v); }
  bool read_only() const { return read_only_.load(); }

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    return under_->Get(key);
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    if (read_only_.load()) return Refuse();
    return under_->Put(key, value);
  }
  absl::Status Delete(std::string_view key) override {
    if (read_only_.load()) return Refuse();
    return under_->Delete(key);
  }
  absl::Status Write(std::vector<WriteOp> ops) override {
    if (read_only_.load()) return Refuse();
    return under_->Write(std::move(ops));
  }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return under_->List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    if (read_only_.load()) return Refuse();
    return under_->DeletePrefix(prefix);
  }
  std::string_view Type() const override { return under_->Type(); }
  void WriteAsync(std::vector<WriteOp> ops, WriteDone done) override {
    if (read_only_.load()) return done(Refuse());  // on the calling thread: noted in its Scope
    under_->WriteAsync(std::move(ops), std::move(done));
  }
  bool WritesAsync() const override { return under_->WritesAsync(); }

 private:
  static absl::Status Refuse() {
    if (current_) current_->refused_ = true;
    return absl::FailedPreconditionError(
        "this server is an HA standby: writes are made by the active server");
  }
  static inline thread_local Scope* current_ = nullptr;
  Storage* const under_;
  std::atomic<bool> read_only_{false};
};

}  // namespace coffer::storage
