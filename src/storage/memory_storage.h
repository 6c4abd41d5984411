// MemoryStorage: an in-memory Storage for tests and `coffer server -dev`. Thread-safe.
#pragma once

#include <map>

#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::storage {

class MemoryStorage final : public Storage {
 public:
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Put(std::string_view key, std::string_view value) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Write(std::vector<WriteOp> ops) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status DeletePrefix(std::string_view prefix) override ABSL_LOCKS_EXCLUDED(mu_);
  std::string_view Type() const override { return "inmem"; }

 private:
  Mutex mu_;
  std::map<std::string, std::string, std::less<>> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::storage
