// The PKCS#11 auto seal's wrapper: the seal key is an AES key inside an HSM (any PKCS#11 module:
// a network HSM's client library, a smart card, SoftHSM2 in tests) and never leaves it. Coffer
// loads the vendor's module with dlopen at Init(), logs in to one token with the user PIN and
// asks the token to encrypt and decrypt.
//
// Two mechanisms:
//   CKM_AES_GCM (default)  ciphertext = iv(12) || ct || tag(16); the aad (the storage path) is
//                          GCM's additional data, checked by the token.
//   CKM_AES_CBC_PAD        for tokens without GCM: ciphertext = iv(16) || ct || mac(32) where
//                          mac = HMAC-SHA256, computed and checked by the token with a second key
//                          (hmac_key_label), over be64(len(aad)) || aad || iv || ct. The MAC is
//                          checked before anything is decrypted.
//
// Keys are found by CKA_LABEL among the token's secret keys; with generate_key they are created
// in the token when missing (CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true, CKA_EXTRACTABLE
// false: the token never lets the key bytes out).
//
// Ownership: a wrapper owns one PKCS#11 session and a copy of the PIN (wiped when the wrapper
// goes). The module itself is shared: C_Initialize and C_Finalize act on the whole process, so
// every wrapper of one module (same file, whatever the path) shares one initialization, counted;
// C_Finalize runs when the last of them is finalized. The module stays loaded until the process
// exits (see pkcs11_wrapper.cc). The token's login state is shared the same way (PKCS#11 logs in
// an application, not a session): a wrapper logs out only when it is the last one logged in to
// that token, so a wrapper whose C_Login answers CKR_USER_ALREADY_LOGGED_IN works without its PIN
// having been checked by the token.
//
// A PIN the token refused is not sent again by the same wrapper (tokens lock the PIN after a few
// wrong tries, and Init() is retried with backoff): Init() keeps answering kPermissionDenied.
//
// All methods are safe to call from several threads; calls of one wrapper are serialized (one
// session, one mutex). Errors follow seal/wrapper.h; the PIN is never logged nor put in a message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "seal/wrapper.h"

namespace coffer::autoseal {

struct Pkcs11Options {
  // Path of the PKCS#11 module (required), e.g. /usr/lib/softhsm/libsofthsm2.so.
  std::string lib;
  // The token: by slot id (decimal or 0x-hex), or by token label among the slots that hold a
  // token. With both, the token in that slot must carry that label.
  std::string slot;
  std::string token_label;
  // Sensitive: the user PIN (from COFFER_HSM_PIN, read by the caller).
  crypto::SecretBytes pin;
  // CKA_LABEL of the AES key (required).
  std::string key_label;
  // CKA_LABEL of the HMAC key; required with CKM_AES_CBC_PAD, ignored with CKM_AES_GCM (Vault's
  // documented stanza sets it either way).
  std::string hmac_key_label;
  // "CKM_AES_GCM" or "CKM_AES_CBC_PAD", or their numbers ("0x1087", "0x1085").
  std::string mechanism = "CKM_AES_GCM";
  // Only "CKM_SHA256_HMAC" ("0x251") for now: the format has a 32-byte MAC.
  std::string hmac_mechanism = "CKM_SHA256_HMAC";
  // Create the key(s) in the token when no key carries the label.
  bool generate_key = false;
};

// Checks the options (kInvalidArgument naming the option); touches neither the module nor the
// token: Init() loads, logs in and finds or creates the keys.
absl::StatusOr<std::unique_ptr<seal::Wrapper>> NewPkcs11Wrapper(Pkcs11Options opts);

// For tests: what the token says about the wrapper's key (hmac: its HMAC key). `wrapper` must
// come from NewPkcs11Wrapper; Init() is run first if needed.
struct Pkcs11KeyFacts {
  bool token = false;
  bool is_private = false;
  bool sensitive = false;
  bool extractable = true;
  bool always_sensitive = false;
  bool never_extractable = false;
  uint64_t value_len = 0;
  // Whether C_GetAttributeValue handed out CKA_VALUE (the key bytes).
  bool value_readable = true;
};
absl::StatusOr<Pkcs11KeyFacts> InspectPkcs11KeyForTest(seal::Wrapper& wrapper, bool hmac = false);

}  // namespace coffer::autoseal
