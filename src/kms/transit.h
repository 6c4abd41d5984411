// What the KMS plugin needs from Coffer's Transit engine (Vault's Transit API): encrypt and
// decrypt with one named key, and that key's latest version. `Transit` is the boundary the
// plugin's gRPC service is written against (tests give it a fake); `HttpTransit` speaks HTTP to
// a Coffer (or Vault) server.
//
// Errors keep absl's codes as http::Api maps them: kUnavailable (cannot connect, sealed,
// standby, 5xx), kPermissionDenied (403), kInvalidArgument (400: a malformed ciphertext, a
// ciphertext of another key), kNotFound (404), with the server's own message.
//
// Plaintext passes through here in std::string buffers (and the JSON bodies built from them)
// that are not wiped after use; it is never logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json.hpp"
#include "http/client.h"
#include "kms/token_source.h"

namespace coffer::kms {

struct EncryptResult {
  std::string ciphertext;  // "vault:v<N>:<base64>"
  int64_t version = 0;     // N: the key version that encrypted it
};

class Transit {
 public:
  virtual ~Transit() = default;
  // `timeout` bounds the whole call (the gRPC caller's deadline).
  virtual absl::StatusOr<EncryptResult> Encrypt(std::string_view plaintext,
                                                std::chrono::milliseconds timeout) = 0;
  virtual absl::StatusOr<std::string> Decrypt(std::string_view ciphertext,
                                              std::chrono::milliseconds timeout) = 0;
  // The key's latest_version (the version Encrypt uses now).
  virtual absl::StatusOr<int64_t> LatestVersion(std::chrono::milliseconds timeout) = 0;
};

// N from a Transit ciphertext "vault:v<N>:..."; kInvalidArgument for anything else.
absl::StatusOr<int64_t> CiphertextVersion(std::string_view ciphertext);

struct HttpTransitOptions {
  http::ClientOptions client;  // address, CA, TLS; token and timeout are set per call
  std::string mount = "transit";
  std::string key;
};

// Calls POST <mount>/encrypt/<key>, POST <mount>/decrypt/<key> and GET <mount>/keys/<key> with
// the token from a TokenSource; when Coffer answers 403 and the source has a new token (a fresh
// login), the call is made once more with it. Thread-safe: calls are independent (one
// connection each); the TokenSource must outlive this object.
class HttpTransit final : public Transit {
 public:
  HttpTransit(HttpTransitOptions o, TokenSource* tokens);

  absl::StatusOr<EncryptResult> Encrypt(std::string_view plaintext,
                                        std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::string> Decrypt(std::string_view ciphertext,
                                      std::chrono::milliseconds timeout) override;
  absl::StatusOr<int64_t> LatestVersion(std::chrono::milliseconds timeout) override;

 private:
  // One API call with the current token, retried once after a 403 that got a new token.
  absl::StatusOr<boost::json::object> Call(std::string_view method, std::string_view path,
                                           const boost::json::object* body,
                                           std::chrono::milliseconds timeout);

  const HttpTransitOptions o_;
  TokenSource* tokens_;
};

}  // namespace coffer::kms
