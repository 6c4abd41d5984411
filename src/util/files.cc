#include "util/files.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "util/status.h"

namespace coffer::files {
namespace {

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InternalError(Cat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

absl::StatusOr<uid_t> LookupUser(const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
    return static_cast<uid_t>(std::stoul(name));
  std::vector<char> buf(16384);
  passwd pw{}, *out = nullptr;
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out) != 0 || out == nullptr)
    return absl::InvalidArgumentError(Cat("unknown user \"", name, "\""));
  return pw.pw_uid;
}

absl::StatusOr<gid_t> LookupGroup(const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit))
    return static_cast<gid_t>(std::stoul(name));
  std::vector<char> buf(16384);
  group gr{}, *out = nullptr;
  if (getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out) != 0 || out == nullptr)
    return absl::InvalidArgumentError(Cat("unknown group \"", name, "\""));
  return gr.gr_gid;
}

}  // namespace

namespace {

// 64 random bits as hex, for temporary file names.
std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  uint64_t r = 0;
  // Never blocks (early boot): without randomness the counter keeps names distinct, and O_EXCL
  // makes a guessed name harmless.
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof r)) r = 0;
  r ^= counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL;  // distinct even without randomness
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

}  // namespace

namespace {

// Creates the missing folders of `dir`, each 0755 whatever the umask (a service's UMask=0077
// would make them 0700 and shut out the daemon, run as its own user, that reads its files
// there). Folders that exist are left as they are.
absl::Status MakeParents(const std::filesystem::path& dir) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return absl::OkStatus();
  std::filesystem::path at;
  for (const auto& part : dir) {
    at /= part;
    if (::mkdir(at.c_str(), 0755) == 0) {
      // Through a descriptor that is not a link: a folder swapped for a symlink meanwhile
      // must not have the link's target made 0755.
      const int fd = ::open(at.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return Errno("open", at.string());
      const int rc = ::fchmod(fd, 0755);
      ::close(fd);
      if (rc != 0) return Errno("chmod", at.string());
    } else if (errno != EEXIST) {
      return Errno("create", at.string());
    } else if (!std::filesystem::is_directory(at, ec)) {
      return absl::FailedPreconditionError(
          Cat("cannot create ", dir.string(), ": ", at.string(), " is not a folder"));
    }
  }
  return absl::OkStatus();
}

// A file written under a temporary name in its folder, fsynced and closed, not renamed yet.
struct Staged {
  std::string path;
  std::string tmp;
  std::filesystem::path dir;
};

absl::StatusOr<Staged> Stage(const std::string& path, std::string_view data,
                             const WriteOptions& o) {
  std::filesystem::path p(path);
  Staged out{path, "", p.has_parent_path() ? p.parent_path() : std::filesystem::path(".")};
  if (o.make_parents) RETURN_IF_ERROR(MakeParents(out.dir));
  auto uid = static_cast<uid_t>(-1);
  auto gid = static_cast<gid_t>(-1);
  if (!o.owner.empty()) {
    ASSIGN_OR_RETURN(uid, LookupUser(o.owner));
  }
  if (!o.group.empty()) {
    ASSIGN_OR_RETURN(gid, LookupGroup(o.group));
  }
  // A fresh name made here (O_EXCL): a file someone else created beforehand, possibly holding it
  // open to read what we write, is never reused, and two writers of one path never share one.
  std::string& tmp = out.tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 8; ++attempt) {
    tmp = Cat(path, ".coffer-tmp-", ::getpid(), "-", RandomSuffix());
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, o.mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return Errno("create", tmp);
  auto fail = [&](std::string_view what) {
    absl::Status st = Errno(what, tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  };
  if (::fchmod(fd, o.mode) != 0) return fail("chmod");
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
      ::fchown(fd, uid, gid) != 0)
    return fail("chown");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;  // no progress: say so rather than a stale errno
    if (n <= 0) return fail("write");
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    absl::Status st = Errno("close", tmp);  // before unlink can change errno
    ::unlink(tmp.c_str());
    return st;
  }
  return out;
}

void SyncFolder(const std::filesystem::path& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

absl::Status WriteAtomic(const std::string& path, std::string_view data, const WriteOptions& o) {
  ASSIGN_OR_RETURN(Staged f, Stage(path, data, o));
  if (::rename(f.tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = Errno("rename onto", path);
    ::unlink(f.tmp.c_str());
    return st;
  }
  SyncFolder(f.dir);
  return absl::OkStatus();
}

namespace {

// Copies of a set's files left by a run that died between keeping them and the end (a kept
// copy of a private key must not stay): removed before the next write of the same path.
void RemoveLeftCopies(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".coffer-old-";
  std::error_code ec;
  const std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : ".";
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().starts_with(prefix)) ::unlink(e.path().c_str());
}

}  // namespace

absl::Status WriteAtomicTogether(const std::vector<FileWrite>& writes) {
  for (size_t i = 0; i < writes.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (writes[i].path == writes[j].path)
        return absl::InvalidArgumentError(
            Cat("one file, ", writes[i].path, ", is named twice in a set written together"));
  std::vector<Staged> staged;
  staged.reserve(writes.size());
  auto drop_staged = [&](size_t from) {
    for (size_t i = from; i < staged.size(); ++i) ::unlink(staged[i].tmp.c_str());
  };
  for (const FileWrite& w : writes) {
    auto f = Stage(w.path, w.data, w.options);
    if (!f.ok()) {
      drop_staged(0);
      return f.status();
    }
    staged.push_back(std::move(*f));
  }
  // The files as they were, as hard links, so that a failed rename can put back those already
  // replaced. Best effort: where a link cannot be made (a file system without them, a
  // protected_hardlinks refusal) the write goes on without one, as a single WriteAtomic would.
  std::vector<std::string> backups(staged.size());
  std::vector<bool> existed(staged.size(), true);
  for (size_t i = 0; i < staged.size(); ++i) {
    RemoveLeftCopies(staged[i].path);
    for (int attempt = 0; attempt < 8; ++attempt) {
      const std::string b = Cat(staged[i].path, ".coffer-old-", ::getpid(), "-", RandomSuffix());
      if (::link(staged[i].path.c_str(), b.c_str()) == 0) {
        backups[i] = b;
        break;
      }
      if (errno == ENOENT) existed[i] = false;
      if (errno != EEXIST) break;
    }
  }
  for (size_t i = 0; i < staged.size(); ++i) {
    if (::rename(staged[i].tmp.c_str(), staged[i].path.c_str()) == 0) continue;
    absl::Status st = Errno("rename onto", staged[i].path);
    drop_staged(i);
    std::string unrestored;
    for (size_t j = 0; j < i; ++j) {  // back as they were
      const bool ok = !existed[j] ? ::unlink(staged[j].path.c_str()) == 0
                      : !backups[j].empty()
                          ? ::rename(backups[j].c_str(), staged[j].path.c_str()) == 0
                          : false;
      if (!ok) unrestored += Cat(unrestored.empty() ? "" : ", ", staged[j].path);
    }
    for (size_t j = i; j < staged.size(); ++j)
      if (!backups[j].empty()) ::unlink(backups[j].c_str());
    for (const Staged& f : staged) SyncFolder(f.dir);
    if (!unrestored.empty())
      return absl::InternalError(Cat(std::string(st.message()),
                                     "; and these already replaced could not be put ",
                                     "back, they hold the new contents: ", unrestored));
    return st;
  }
  for (const std::string& b : backups)
    if (!b.empty()) ::unlink(b.c_str());
  for (const Staged& f : staged) SyncFolder(f.dir);
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReadUpTo(int fd, void* data, size_t len, const std::string& path) {
  size_t got = 0;
  while (got < len) {
    const ssize_t n = ::read(fd, static_cast<char*>(data) + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

absl::StatusOr<std::optional<std::string>> ReadIfExists(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Errno("open", path);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    auto n = ReadUpTo(fd, buf, sizeof buf, path);
    if (!n.ok()) {
      ::close(fd);
      return n.status();
    }
    out.append(buf, *n);
    if (*n < sizeof buf) break;
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

absl::StatusOr<std::optional<RegularFile>> RegularFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<RegularFile>();
    return Errno("open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    absl::Status err = Errno("stat", path);
    ::close(fd);
    return err;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(Cat(path, " is not a regular file"));
  }
  return std::optional<RegularFile>(RegularFile(fd, static_cast<size_t>(st.st_size), path));
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Wipe(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("open", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    std::vector<char> zeros(static_cast<size_t>(st.st_size), 0);
    ssize_t n = ::pwrite(fd, zeros.data(), zeros.size(), 0);
    (void)n;
    ::fsync(fd);
  }
  ::close(fd);
  if (::unlink(path.c_str()) != 0) return Errno("remove", path);
  return absl::OkStatus();
}

absl::StatusOr<mode_t> ParseMode(std::string_view text) {
  if (text.size() < 3 || text.size() > 4)
    return absl::InvalidArgumentError(Cat("file mode \"", text, "\" must be octal, like 0640"));
  mode_t m = 0;
  for (char c : text) {
    if (c < '0' || c > '7')
      return absl::InvalidArgumentError(Cat("file mode \"", text, "\" must be octal, like 0640"));
    m = m * 8 + static_cast<mode_t>(c - '0');
  }
  if (m > 07777) return absl::InvalidArgumentError(Cat("file mode \"", text, "\" is out of range"));
  return m;
}

}  // namespace coffer::files
