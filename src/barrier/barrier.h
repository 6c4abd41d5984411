// Barrier: encrypts every value on its way to physical storage with AES-256-GCM.
//
// Value layout: version(1 byte = 1) | key term (4 bytes, big-endian) | nonce (12) | ciphertext |
// tag (16). The AAD is the 5-byte header followed by the storage path, so a value copied to
// another path, or with its term changed, fails to decrypt.
//
// The keyring (all terms, the active one) lives at `core/keyring`, encrypted with the root key
// (term 0). Every other value is encrypted with the keyring's active term; older terms keep
// decrypting after a rotation. Seal() wipes every key byte.
//
// Barrier implements storage::Storage so mount views and engines can sit on top of it.
// All methods are safe to call from several threads.
#pragma once

#include <atomic>
#include <map>
#include <memory>

#include "absl/time/time.h"
#include "crypto/crypto.h"
#include "crypto/secret_bytes.h"
#include "storage/storage.h"
#include "util/mutex.h"

namespace coffer::barrier {

inline constexpr char kKeyringPath[] = "core/keyring";

struct KeyStatus {
  uint32_t term = 0;
  absl::Time install_time;
  uint64_t encryptions = 0;
};

// HMAC-SHA256(root_key, label): a key for another purpose derived from the root key.
crypto::SecretBytes DeriveFromRootKey(const crypto::SecretBytes& root_key, std::string_view label);

class Barrier final : public storage::Storage {
 public:
  explicit Barrier(storage::Storage* physical) : physical_(physical) {}

  // Creates a fresh keyring with term 1 and stores it under `root_key`; leaves the barrier
  // unsealed. Fails if a keyring already exists.
  absl::Status Initialize(const crypto::SecretBytes& root_key) ABSL_LOCKS_EXCLUDED(mu_);
  // Loads the keyring with `root_key`. A wrong key fails with kPermissionDenied.
  absl::Status Unseal(const crypto::SecretBytes& root_key) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the keyring again with the root key held since Unseal: another node rotated the key
  // (a standby calls this when storage reports core/keyring changed). Terms only ever get
  // added, so values encrypted under the old keyring keep decrypting.
  absl::Status ReloadKeyring() ABSL_LOCKS_EXCLUDED(mu_);
  // Wipes the root key and every term key from memory.
  void Seal() ABSL_LOCKS_EXCLUDED(mu_);
  bool sealed() const ABSL_LOCKS_EXCLUDED(mu_);
  // HMAC-SHA256 of the root key with `label`: a key for another purpose that every server
  // holding the root key derives alike (HA request forwarding). FailedPrecondition when sealed.
  absl::StatusOr<crypto::SecretBytes> DeriveKey(std::string_view label) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Adds a new term and makes it active; persisted before it is used.
  absl::StatusOr<KeyStatus> Rotate() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<KeyStatus> Status() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Put(std::string_view key, std::string_view value) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(std::string_view key) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Write(std::vector<storage::WriteOp> ops) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status DeletePrefix(std::string_view prefix) override ABSL_LOCKS_EXCLUDED(mu_);
  std::string_view Type() const override { return physical_->Type(); }
  // Encrypts on the calling thread, then hands the write on.
  void WriteAsync(std::vector<storage::WriteOp> ops, WriteDone done) override
      ABSL_LOCKS_EXCLUDED(mu_);
  bool WritesAsync() const override { return physical_->WritesAsync(); }

 private:
  struct Term {
    Term(crypto::SecretBytes k, absl::Time t)
        : key(std::move(k)), installed(t), aead(std::make_unique<crypto::AesGcmKey>(key)) {}
    crypto::SecretBytes key;
    absl::Time installed;
    std::unique_ptr<crypto::AesGcmKey> aead;  // the key prepared for sealing and opening
  };
  absl::StatusOr<std::string> Encrypt(std::string_view path, std::string_view plaintext)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> Decrypt(std::string_view path, std::string_view sealed)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Unseal (reload=false) or ReloadKeyring (reload=true: merge into the terms held).
  absl::Status LoadKeyring(const crypto::SecretBytes& root_key, bool reload)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status PersistKeyringLocked() ABSL_SHARED_LOCKS_REQUIRED(mu_);

  storage::Storage* const physical_;
  bool NewerTerm(std::string_view sealed) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  mutable Mutex mu_;
  // One reload on a newer term at a time (Get): the others wait and find it done.
  Mutex reload_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool sealed_ ABSL_GUARDED_BY(mu_) = true;
  crypto::SecretBytes root_key_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, Term> terms_ ABSL_GUARDED_BY(mu_);
  uint32_t active_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> encryptions_{0};
};

// A Storage that prefixes every key (a mount's view: "logical/<uuid>/"). Thread-safe if the
// underlying storage is.
class PrefixView final : public storage::Storage {
 public:
  PrefixView(storage::Storage* under, std::string prefix)
      : under_(under), prefix_(std::move(prefix)) {}
  absl::StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  absl::Status Put(std::string_view key, std::string_view value) override;
  absl::Status Delete(std::string_view key) override;
  absl::Status Write(std::vector<storage::WriteOp> ops) override;
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix,
                                                std::string_view after = {},
                                                size_t limit = 0) override;
  absl::Status DeletePrefix(std::string_view prefix) override;
  std::string_view Type() const override { return under_->Type(); }
  void WriteAsync(std::vector<storage::WriteOp> ops, WriteDone done) override;
  bool WritesAsync() const override { return under_->WritesAsync(); }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string Full(std::string_view k) const { return prefix_ + std::string(k); }
  storage::Storage* const under_;
  const std::string prefix_;
};

}  // namespace coffer::barrier
