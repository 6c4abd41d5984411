// SecretBytes: move-only owner of key material. The bytes are wiped with OPENSSL_cleanse
// when the object is destroyed, moved from, or reset. Not thread-safe (plain value type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace coffer::crypto {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : bytes_(n) {}
  SecretBytes(std::string_view data) : bytes_(data.begin(), data.end()) {}  // NOLINT: copies in
  ~SecretBytes() { Wipe(); }
  SecretBytes(SecretBytes&& o) noexcept : bytes_(std::move(o.bytes_)) { o.bytes_.clear(); }
  SecretBytes& operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
      Wipe();
      bytes_ = std::move(o.bytes_);
      o.bytes_.clear();
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // Fresh random bytes from RAND_priv_bytes.
  static absl::StatusOr<SecretBytes> Random(size_t n);
  SecretBytes Clone() const { return SecretBytes(view()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  void Wipe();

 private:
  std::vector<uint8_t> bytes_;
};

// The bytes of a file holding key material (a private key, a kubeconfig with one), read
// straight into a SecretBytes: no copy is left in freed memory. nullopt when the file does not
// exist; an error naming the file when it cannot be read or is larger than `max_bytes`.
absl::StatusOr<std::optional<SecretBytes>> ReadSecretFile(const std::string& path,
                                                          size_t max_bytes = size_t{1} << 20);

}  // namespace coffer::crypto
