// Wrapper: what an auto seal asks of the thing that holds its key (Vault's "KMS wrapper"): wrap
// and unwrap a few bytes (the root key, the recovery key). The key itself never reaches Coffer:
// it lives in another server's Transit engine (autoseal/transit_wrapper) or in an HSM
// (autoseal/pkcs11_wrapper).
//
// Errors say what an operator can fix:
//   kUnavailable        the service or token cannot be reached now (retried with backoff);
//   kPermissionDenied   credentials refused (token, PIN);
//   kNotFound           the key does not exist (key_name, key_label);
//   kInvalidArgument    the ciphertext was not made by this key, or was altered;
//   kFailedPrecondition anything else the configuration must change for.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"

namespace coffer::seal {

class Wrapper {
 public:
  virtual ~Wrapper() = default;
  // The seal stanza's type: "transit", "pkcs11".
  virtual std::string_view Type() const = 0;
  // Connects, logs in and finds (or, where configured, creates) the key. Called before the first
  // use and again after a failure; cheap once it succeeded.
  virtual absl::Status Init() = 0;
  // Encrypts `plaintext` bound to `aad` (the storage path the result is kept at). The result is
  // opaque to Coffer and stored as returned; key_id names the key (version) that made it.
  struct Sealed {
    std::string ciphertext;
    std::string key_id;
  };
  virtual absl::StatusOr<Sealed> Encrypt(std::string_view plaintext, std::string_view aad) = 0;
  virtual absl::StatusOr<crypto::SecretBytes> Decrypt(std::string_view ciphertext,
                                                      std::string_view aad) = 0;
  // Called when the server stops (token renewal threads, HSM sessions).
  virtual void Finalize() {}
};

}  // namespace coffer::seal
