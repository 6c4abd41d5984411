// SqliteStorage: the embedded default backend. One SQLite file in WAL mode with
// synchronous=FULL, so a write is on disk (fsynced) before Put/Write returns.
//
// Group commit: every write is queued to one writer thread, which applies all batches that are
// waiting in a single transaction and one fsync, then wakes their callers. Concurrent writers
// therefore share the cost of the fsync instead of weakening durability. Each batch is atomic.
// Reads use a pool of read-only connections (WAL lets them run beside the writer).
//
// All methods are safe to call from several threads. The file is created with mode 0600.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <thread>

#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class SqliteStorage final : public Storage {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStorage>> Open(const std::string& path);
  ~SqliteStorage() override;

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override
      ABSL_LOCKS_EXCLUDED(pool_mu_);
  absl::Status Put(std::string_view key, std::string_view value) override ABSL_LOCKS_EXCLUDED(qmu_);
  absl::Status Delete(std::string_view key) override ABSL_LOCKS_EXCLUDED(qmu_);
  absl::Status Write(std::vector<WriteOp> ops) override ABSL_LOCKS_EXCLUDED(qmu_);
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override
      ABSL_LOCKS_EXCLUDED(pool_mu_);
  absl::Status DeletePrefix(std::string_view prefix) override ABSL_LOCKS_EXCLUDED(qmu_);
  std::string_view Type() const override { return "sqlite"; }
  // Queued to the next group commit; `done` runs on the writer thread after that commit (or
  // the batch's failure), like Write's answer.
  void WriteAsync(std::vector<WriteOp> ops, WriteDone done) override ABSL_LOCKS_EXCLUDED(qmu_);
  bool WritesAsync() const override { return true; }

  // Number of transactions committed so far (lets tests and benchmarks see batching).
  uint64_t commits() const;
  // Whether this process holds the file's lock, i.e. is its one writer (false only where the
  // file system has no flock). The read cache is used only then.
  bool exclusive() const { return exclusive_; }

 private:
  struct ReadConn;
  struct Pending {
    std::vector<WriteOp> ops;
    std::string delete_prefix;        // non-empty: a DeletePrefix request instead of ops
    std::promise<absl::Status> done;  // the waiting caller's answer (Submit)...
    WriteDone callback;               // ...or, when set, the answer of a WriteAsync
  };
  class ReadLease;

  explicit SqliteStorage(std::string path);
  absl::Status Init();
  // Queues `p` and waits for the writer thread to apply it.
  absl::Status Submit(Pending p) ABSL_LOCKS_EXCLUDED(qmu_);
  void WriterLoop() ABSL_LOCKS_EXCLUDED(qmu_);
  absl::Status ApplyLocked(Pending& p);
  absl::StatusOr<std::unique_ptr<ReadConn>> NewReadConn();
  // An idle read connection from the pool, or a new one (given back by a ReadLease).
  absl::StatusOr<std::unique_ptr<ReadConn>> TakeReadConn() ABSL_LOCKS_EXCLUDED(pool_mu_);

  const std::string path_;
  // The database file, open for the life of this object with an exclusive flock: one server per
  // database file (a second one is refused at start). Its writes are then the only ones, which
  // the read cache over it (cache_storage.h) relies on. flock and SQLite's own fcntl locks do not
  // interact.
  int lock_fd_ = -1;
  bool exclusive_ = false;  // the flock is held (a file system without flock: false, warned)
  sqlite3* wdb_ = nullptr;  // owned by the writer thread after Init
  sqlite3_stmt* put_stmt_ = nullptr;
  sqlite3_stmt* del_stmt_ = nullptr;
  sqlite3_stmt* delpfx_stmt_ = nullptr;
  // The writer's transaction control, prepared once (parsing them per batch was measurable).
  enum Control { kBegin, kSavepoint, kRollbackTo, kRelease, kCommit, kRollback, kControls };
  sqlite3_stmt* control_[kControls] = {};
  absl::Status Run(Control c);

  Mutex qmu_;
  // Waits on qmu_.native(): condition_variable_any, as Mutex is no std::mutex.
  std::condition_variable_any qcv_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(qmu_);
  bool stopping_ ABSL_GUARDED_BY(qmu_) = false;
  std::thread writer_;
  std::atomic<uint64_t> commits_{0};

  Mutex pool_mu_;
  std::vector<std::unique_ptr<ReadConn>> pool_ ABSL_GUARDED_BY(pool_mu_);
};

}  // namespace coffer::storage
