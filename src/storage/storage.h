// Storage: the physical key/value store under the barrier. It is untrusted: it only ever sees
// ciphertext (plus the public seal configuration). Keys are '/'-separated paths.
//
// All methods are safe to call from several threads. A write that returned OK is durable
// (for persistent backends it survives kill -9 and power loss).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::storage {

struct WriteOp {
  enum class Kind { kPut, kDelete };
  Kind kind;
  std::string key;
  std::string value;  // for kPut
};

class Storage {
 public:
  virtual ~Storage() = default;

  // NotFound is not an error: it returns std::nullopt.
  virtual absl::StatusOr<std::optional<std::string>> Get(std::string_view key) = 0;
  virtual absl::Status Put(std::string_view key, std::string_view value) = 0;
  // Deleting a missing key is OK.
  virtual absl::Status Delete(std::string_view key) = 0;
  // Applies all operations atomically: all or none.
  virtual absl::Status Write(std::vector<WriteOp> ops) = 0;

  // Lists the entries directly under `prefix` as Vault does: names relative to the prefix,
  // sub-folders once with a trailing '/'. Sorted. Paged: names strictly greater than `after`,
  // at most `limit` of them (0 = no limit). Cost is proportional to the page, not the folder.
  virtual absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                        std::string_view after = {},
                                                        size_t limit = 0) = 0;

  // Deletes every key that starts with `prefix` (used when a mount is disabled).
  virtual absl::Status DeletePrefix(std::string_view prefix) = 0;

  virtual std::string_view Type() const = 0;

  // A write whose caller does not wait for it: `done` gets Write's result once the write is
  // durable (or failed), on whichever thread finished it, possibly before WriteAsync returns.
  // Until `done` runs, a read may or may not see the write; the caller answers nobody about it
  // before then. `done` must be quick (it may run on a store's only committing thread) and
  // must not throw. The default runs Write and then `done`, on the calling thread.
  using WriteDone = std::function<void(absl::Status)>;
  virtual void WriteAsync(std::vector<WriteOp> ops, WriteDone done) { done(Write(std::move(ops))); }
  // Whether WriteAsync returns before the write is durable (it then never waits on the disk or
  // the network): SQLite's group commit; wrappers pass on their store's answer.
  virtual bool WritesAsync() const { return false; }
};

// Returns the smallest string greater than every string that starts with `prefix`
// ("" if there is none, i.e. prefix is all 0xff).
std::string PrefixEnd(std::string_view prefix);

}  // namespace coffer::storage
