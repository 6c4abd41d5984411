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

absl::Status WriteAtomic(const std::string& path, std::string_view data, const WriteOptions& o) {
  std::filesystem::path p(path);
  std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
  if (o.make_parents) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(Cat("cannot create ", dir.string(), ": ", ec.message()));
  }
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
  std::string tmp;
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
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = Errno("rename onto", path);
    ::unlink(tmp.c_str());
    return st;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
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
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno("read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
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
