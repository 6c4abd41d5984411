// ForwardingStorage: a Storage that passes each call to another one. A wrapper that changes a
// few calls (a test's counter, fault or hook) derives from it and overrides only those.
//
// WriteAsync and WritesAsync are not forwarded: they keep Storage's defaults, so an
// asynchronous write runs this object's own Write and a wrapper that changes writes sees them
// all. A wrapper that passes on its store's asynchrony overrides both.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/storage.h"

namespace coffer::storage {

class ForwardingStorage : public Storage {
 public:
  // `under` must outlive this object; it may be a member of the derived class (only its
  // address is taken here).
  explicit ForwardingStorage(Storage* under) : under_(under) {}

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override {
    return under_->Get(key);
  }
  absl::Status Put(std::string_view key, std::string_view value) override {
    return under_->Put(key, value);
  }
  absl::Status Delete(std::string_view key) override { return under_->Delete(key); }
  absl::Status Write(std::vector<WriteOp> ops) override { return under_->Write(std::move(ops)); }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override {
    return under_->List(prefix, after, limit);
  }
  absl::Status DeletePrefix(std::string_view prefix) override {
    return under_->DeletePrefix(prefix);
  }
  std::string_view Type() const override { return under_->Type(); }

 protected:
  Storage* under() const { return under_; }

 private:
  Storage* const under_;
};

}  // namespace coffer::storage
