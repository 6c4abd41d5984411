// File helpers for everything Coffer writes on a node (the agent, `coffer pki`, `cluster setup`):
// atomic replacement with owner and mode, wiping a secret file, reading a file whole.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::files {

struct WriteOptions {
  mode_t mode = 0644;
  std::string owner;         // user name or numeric uid; empty: leave as created
  std::string group;         // group name or numeric gid; empty: leave as created
  bool make_parents = true;  // creates missing parent folders (0755, whatever the umask)
};

// Writes `data` to `path` atomically: a temporary file in the same folder created with `mode`
// (never wider, whatever the umask), written, fsynced, chowned, renamed over `path`, and the folder
// fsynced. A reader sees the old file or the new one, never a mix; a crash leaves no partial file.
absl::Status WriteAtomic(const std::string& path, std::string_view data, const WriteOptions& o);
inline absl::Status WriteAtomic(const std::string& path, std::string_view data, mode_t mode) {
  WriteOptions o;
  o.mode = mode;
  return WriteAtomic(path, data, o);
}

// Files that must change together (a private key and its certificate): every one is written
// to a temporary file and fsynced before the first rename, then all are renamed back to back,
// so a reader sees the old pair or the new one except for the instant between two renames —
// never for the length of a write. If a write fails nothing is replaced; if a rename fails, the
// files already replaced are put back (from hard links kept until the end) and the error
// returned.
struct FileWrite {
  std::string path;
  std::string_view data;
  WriteOptions options;
};
absl::Status WriteAtomicTogether(const std::vector<FileWrite>& writes);

// The file's bytes; nullopt when it does not exist; an error when it cannot be read. Any kind of
// file: a FIFO or /dev/stdin is read to its end.
absl::StatusOr<std::optional<std::string>> ReadIfExists(const std::string& path);

// Reads `fd` from its offset until `len` bytes are in or the end of the file: the number read
// (fewer than `len` only at the end). Retries interrupted reads; an error names `path`.
absl::StatusOr<size_t> ReadUpTo(int fd, void* data, size_t len, const std::string& path);

// A regular file opened for reading, for files where something else would be a mistake or a
// trap (a key, a kubeconfig): opened with O_NONBLOCK, so a FIFO put in the file's place does not
// block the open, and refused unless fstat says it is a regular file. Closed when it goes.
class RegularFile {
 public:
  // nullopt when nothing is at `path`; an error naming the path when it cannot be opened or is
  // not a regular file (a FIFO, a folder, a device).
  static absl::StatusOr<std::optional<RegularFile>> Open(const std::string& path);

  RegularFile(RegularFile&& o) noexcept : fd_(o.fd_), size_(o.size_), path_(std::move(o.path_)) {
    o.fd_ = -1;
  }
  RegularFile& operator=(RegularFile&&) = delete;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  // Its size when it was opened.
  size_t size() const { return size_; }
  // ReadUpTo on this file.
  absl::StatusOr<size_t> Read(void* data, size_t len) { return ReadUpTo(fd_, data, len, path_); }

 private:
  RegularFile(int fd, size_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  size_t size_;
  std::string path_;
};

// Overwrites the file's bytes with zeros, fsyncs, and unlinks it (for used init tokens).
absl::Status Wipe(const std::string& path);

// "0640" -> 0640. InvalidArgument for anything but 3-4 octal digits.
absl::StatusOr<mode_t> ParseMode(std::string_view text);

}  // namespace coffer::files
