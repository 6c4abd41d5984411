#include "storage/sqlite_storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::storage {
using ::coffer::Cat;
namespace {

absl::Status SqlError(sqlite3* db, std::string_view what) {
  return absl::UnavailableError(Cat("sqlite ", what, ": ", db ? sqlite3_errmsg(db) : "?"));
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    return absl::UnavailableError(Cat("sqlite: ", sql, ": ", msg));
  }
  return absl::OkStatus();
}

void BindBlob(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string ColumnBlob(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

}  // namespace

struct SqliteStorage::ReadConn {
  sqlite3* db = nullptr;
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* range = nullptr;
  ~ReadConn() {
    sqlite3_finalize(get);
    sqlite3_finalize(range);
    sqlite3_close_v2(db);
  }
};

// Borrows a read connection from the pool and returns it on destruction.
class SqliteStorage::ReadLease {
 public:
  ReadLease(SqliteStorage* s, std::unique_ptr<ReadConn> c) : s_(s), c_(std::move(c)) {}
  ~ReadLease() {
    if (!c_) return;
    MutexLock l(&s_->pool_mu_);
    s_->pool_.push_back(std::move(c_));
  }
  ReadConn* operator->() { return c_.get(); }

 private:
  SqliteStorage* s_;
  std::unique_ptr<ReadConn> c_;
};

SqliteStorage::SqliteStorage(std::string path) : path_(std::move(path)) {}

absl::StatusOr<std::unique_ptr<SqliteStorage>> SqliteStorage::Open(const std::string& path) {
  std::unique_ptr<SqliteStorage> s(new SqliteStorage(path));
  auto st = s->Init();
  if (!st.ok()) return st;
  return s;
}

absl::Status SqliteStorage::Init() {
  // Create the file ourselves so it is 0600 from the start; SQLite gives -wal/-shm the same mode.
  lock_fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0)
    return absl::FailedPreconditionError(
        Cat("cannot open storage file ", path_, ": ", strerror(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) {
    exclusive_ = true;
  } else if (errno == EWOULDBLOCK) {
    return absl::FailedPreconditionError(
        Cat("storage file ", path_,
            " is in use by another process (another coffer server?): one server per database "
            "file; stop the other one or give this one its own path"));
  } else {
    // A file system without flock (some network and FUSE mounts): serve as before, without the
    // guard and without the read cache that relies on it.
    log::Warn(
        "the storage file cannot be locked: nothing stops a second server on it, and the "
        "read cache is off",
        {{"path", path_}, {"error", strerror(errno)}});
  }
  if (sqlite3_open_v2(path_.c_str(), &wdb_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    return SqlError(wdb_, "open");
  sqlite3_busy_timeout(wdb_, 10000);
  // temp_store=MEMORY: a group commit's statement and savepoint journals stay in memory. Over
  // 64 KiB SQLite otherwise spills them to a file it creates and unlinks in /var/tmp, on the
  // writer's path (19 such files per 5 s of signing with 64 clients), and pages of the store
  // would be written outside its directory.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                          "PRAGMA foreign_keys=OFF", "PRAGMA temp_store=MEMORY",
                          "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT "
                          "NULL) WITHOUT ROWID"}) {
    auto st = Exec(wdb_, sql);
    if (!st.ok()) return st;
  }
  if (sqlite3_prepare_v2(wdb_, "INSERT OR REPLACE INTO kv(key, value) VALUES(?1, ?2)", -1,
                         &put_stmt_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(wdb_, "DELETE FROM kv WHERE key = ?1", -1, &del_stmt_, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(wdb_, "DELETE FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2)", -1,
                         &delpfx_stmt_, nullptr) != SQLITE_OK)
    return SqlError(wdb_, "prepare");
  static constexpr const char* kControlSql[kControls] = {
      "BEGIN IMMEDIATE", "SAVEPOINT b", "ROLLBACK TO b", "RELEASE b", "COMMIT", "ROLLBACK"};
  for (int i = 0; i < kControls; ++i)
    if (sqlite3_prepare_v2(wdb_, kControlSql[i], -1, &control_[i], nullptr) != SQLITE_OK)
      return SqlError(wdb_, "prepare");
  writer_ = std::thread([this] { WriterLoop(); });
  return absl::OkStatus();
}

SqliteStorage::~SqliteStorage() {
  {
    MutexLock l(&qmu_);
    stopping_ = true;
  }
  qcv_.notify_all();
  if (writer_.joinable()) writer_.join();
  sqlite3_finalize(put_stmt_);
  sqlite3_finalize(del_stmt_);
  sqlite3_finalize(delpfx_stmt_);
  for (sqlite3_stmt* c : control_) sqlite3_finalize(c);
  {
    MutexLock l(&pool_mu_);
    pool_.clear();
  }
  sqlite3_close_v2(wdb_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

uint64_t SqliteStorage::commits() const { return commits_.load(); }

absl::StatusOr<std::unique_ptr<SqliteStorage::ReadConn>> SqliteStorage::NewReadConn() {
  auto c = std::make_unique<ReadConn>();
  if (sqlite3_open_v2(path_.c_str(), &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK)
    return SqlError(c->db, "open (read)");
  sqlite3_busy_timeout(c->db, 10000);
  if (sqlite3_prepare_v2(c->db, "SELECT value FROM kv WHERE key = ?1", -1, &c->get, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(c->db,
                         "SELECT key FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) "
                         "ORDER BY key LIMIT 256",
                         -1, &c->range, nullptr) != SQLITE_OK)
    return SqlError(c->db, "prepare (read)");
  return c;
}

absl::StatusOr<std::unique_ptr<SqliteStorage::ReadConn>> SqliteStorage::TakeReadConn() {
  {
    MutexLock l(&pool_mu_);
    if (!pool_.empty()) {
      std::unique_ptr<ReadConn> conn = std::move(pool_.back());
      pool_.pop_back();
      return conn;
    }
  }
  return NewReadConn();
}

absl::StatusOr<std::optional<std::string>> SqliteStorage::Get(std::string_view key) {
  ASSIGN_OR_RETURN(auto conn, TakeReadConn());
  ReadLease lease(this, std::move(conn));
  sqlite3_stmt* s = lease->get;
  sqlite3_reset(s);
  BindBlob(s, 1, key);
  int rc = sqlite3_step(s);
  std::optional<std::string> out;
  if (rc == SQLITE_ROW) {
    out = ColumnBlob(s, 0);
  } else if (rc != SQLITE_DONE) {
    auto st = SqlError(lease->db, "get");
    sqlite3_reset(s);
    return st;
  }
  sqlite3_reset(s);
  return out;
}

absl::StatusOr<std::vector<std::string>> SqliteStorage::List(std::string_view prefix,
                                                             std::string_view after, size_t limit) {
  ASSIGN_OR_RETURN(auto conn, TakeReadConn());
  ReadLease lease(this, std::move(conn));
  sqlite3_stmt* s = lease->range;
  const std::string end = PrefixEnd(prefix);
  std::string seek = std::string(prefix) + std::string(after);
  bool skip_equal = !after.empty();
  std::vector<std::string> out;
  // The whole listing is one read transaction so pages are consistent.
  RETURN_IF_ERROR(Exec(lease->db, "BEGIN"));
  absl::Status status;
  bool more = true;
  while (more && (limit == 0 || out.size() < limit)) {
    sqlite3_reset(s);
    BindBlob(s, 1, seek);
    if (end.empty())
      sqlite3_bind_null(s, 2);
    else
      BindBlob(s, 2, end);
    int rows = 0;
    bool reseek = false;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      ++rows;
      std::string key = ColumnBlob(s, 0);
      if (skip_equal && key == seek) continue;
      std::string_view rest = std::string_view(key).substr(prefix.size());
      size_t slash = rest.find('/');
      if (slash == std::string_view::npos) {
        out.emplace_back(rest);
        seek = key;
        skip_equal = true;
        if (limit != 0 && out.size() >= limit) break;
      } else {
        std::string dir(rest.substr(0, slash + 1));
        if (after.empty() || dir > after) out.push_back(dir);
        seek = PrefixEnd(std::string(prefix) + dir);
        skip_equal = false;
        reseek = true;
        break;
      }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      status = SqlError(lease->db, "list");
      break;
    }
    if (!reseek && rc == SQLITE_DONE && rows < 256) more = false;
    if (seek.empty()) more = false;
  }
  sqlite3_reset(s);
  // Ends a read-only transaction: nothing to lose if it fails, and the connection stays usable.
  (void)Exec(lease->db, "COMMIT");
  if (!status.ok()) return status;
  return out;
}

absl::Status SqliteStorage::Put(std::string_view key, std::string_view value) {
  std::vector<WriteOp> ops;
  ops.push_back({WriteOp::Kind::kPut, std::string(key), std::string(value)});
  return Write(std::move(ops));
}

absl::Status SqliteStorage::Delete(std::string_view key) {
  std::vector<WriteOp> ops;
  ops.push_back({WriteOp::Kind::kDelete, std::string(key), {}});
  return Write(std::move(ops));
}

absl::Status SqliteStorage::Write(std::vector<WriteOp> ops) {
  Pending p;
  p.ops = std::move(ops);
  return Submit(std::move(p));
}

absl::Status SqliteStorage::DeletePrefix(std::string_view prefix) {
  if (prefix.empty()) return absl::InvalidArgumentError("refusing to delete every key");
  Pending p;
  p.delete_prefix = std::string(prefix);
  return Submit(std::move(p));
}

absl::Status SqliteStorage::Submit(Pending p) {
  auto fut = p.done.get_future();
  {
    MutexLock l(&qmu_);
    if (stopping_) return absl::UnavailableError("storage is closing");
    queue_.push_back(std::move(p));
  }
  qcv_.notify_one();
  return fut.get();
}

void SqliteStorage::WriteAsync(std::vector<WriteOp> ops, WriteDone done) {
  WriteDone refused;  // answered outside the lock
  {
    MutexLock l(&qmu_);
    if (stopping_) {
      refused = std::move(done);
    } else {
      Pending p;
      p.ops = std::move(ops);
      p.callback = std::move(done);
      queue_.push_back(std::move(p));
    }
  }
  if (refused) return refused(absl::UnavailableError("storage is closing"));
  qcv_.notify_one();
}

absl::Status SqliteStorage::ApplyLocked(Pending& p) {
  if (!p.delete_prefix.empty()) {
    sqlite3_reset(delpfx_stmt_);
    BindBlob(delpfx_stmt_, 1, p.delete_prefix);
    std::string end = PrefixEnd(p.delete_prefix);
    if (end.empty())
      sqlite3_bind_null(delpfx_stmt_, 2);
    else
      BindBlob(delpfx_stmt_, 2, end);
    if (sqlite3_step(delpfx_stmt_) != SQLITE_DONE) return SqlError(wdb_, "delete prefix");
    return absl::OkStatus();
  }
  for (const auto& op : p.ops) {
    sqlite3_stmt* s = op.kind == WriteOp::Kind::kPut ? put_stmt_ : del_stmt_;
    sqlite3_reset(s);
    BindBlob(s, 1, op.key);
    if (op.kind == WriteOp::Kind::kPut) BindBlob(s, 2, op.value);
    if (sqlite3_step(s) != SQLITE_DONE) return SqlError(wdb_, "write");
  }
  return absl::OkStatus();
}

absl::Status SqliteStorage::Run(Control c) {
  sqlite3_stmt* s = control_[c];
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE)
    return absl::UnavailableError(Cat("sqlite: ", sqlite3_sql(s), ": ", sqlite3_errmsg(wdb_)));
  return absl::OkStatus();
}

void SqliteStorage::WriterLoop() {
  for (;;) {
    std::deque<Pending> batch;
    {
      MutexLock l(&qmu_);
      while (!stopping_ && queue_.empty()) qcv_.wait(qmu_.native());
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    // One transaction for every waiting batch; each batch inside its own savepoint so that a
    // failing batch is rolled back alone and the others still commit.
    absl::Status begin = Run(kBegin);
    std::vector<absl::Status> results(batch.size());
    if (begin.ok()) {
      absl::Status fatal;  // a failure that leaves the transaction unusable
      for (size_t i = 0; i < batch.size() && fatal.ok(); ++i) {
        fatal = Run(kSavepoint);
        if (!fatal.ok()) break;
        results[i] = ApplyLocked(batch[i]);
        if (!results[i].ok()) fatal = Run(kRollbackTo);
        if (fatal.ok()) fatal = Run(kRelease);
      }
      absl::Status commit = fatal.ok() ? Run(kCommit) : fatal;
      if (!commit.ok()) {
        // Nothing of this group is durable: undo it and tell every caller.
        (void)Run(kRollback);
        for (auto& r : results) r = commit;
      } else {
        commits_.fetch_add(1);
      }
    } else {
      for (auto& r : results) r = begin;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].callback) {
        batch[i].done.set_value(results[i]);
        continue;
      }
      // A callback must not throw (storage.h); one that does must not stop this thread, which
      // every other writer waits on.
      try {
        batch[i].callback(results[i]);
      } catch (const std::exception& e) {
        log::Error("a storage write's completion failed", {{"error", e.what()}});
      }
    }
  }
}

}  // namespace coffer::storage
