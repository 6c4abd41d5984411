// Fuzzes the Transit engine's parsers of untrusted bytes: "vault:v<N>:<base64>" ciphertexts,
// signatures and HMACs (ParseVersioned, both encodings), decryption of whatever parses under a
// real key of each AEAD type and RSA, and Policy::Parse, which restore/ runs on a caller's
// backup. Checks that a parsed value formats back to a string that parses to the same value,
// that nothing the fuzzer makes up decrypts (it would need the key), and that nothing crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engines/transit/policy.h"

namespace {

using coffer::engines::transit::KeyType;
using coffer::engines::transit::Policy;

void Check(bool ok) {
  if (!ok) abort();
}

const std::vector<std::unique_ptr<Policy>>& Keys() {
  static const auto* keys = [] {
    auto* v = new std::vector<std::unique_ptr<Policy>>();
    for (KeyType t : {KeyType::kAes256Gcm96, KeyType::kAes128Gcm96, KeyType::kChaCha20Poly1305,
                      KeyType::kRsa2048}) {
      auto p = Policy::Create("fuzz", t, 0);
      Check(p.ok());
      v->push_back(std::move(*p));
    }
    return v;
  }();
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (bool url : {false, true}) {
    auto parsed = coffer::engines::transit::ParseVersioned(text, "ciphertext", url);
    if (!parsed.ok()) continue;
    Check(parsed->version > 0);
    auto again = coffer::engines::transit::ParseVersioned(
        coffer::engines::transit::FormatVersioned(parsed->version, parsed->bytes, url),
        "ciphertext", url);
    Check(again.ok() && again->version == parsed->version && again->bytes == parsed->bytes);
  }
  for (const auto& k : Keys()) {
    auto plain = k->Decrypt(text, "", "", "");
    Check(!plain.ok());
  }
  // A backup that parses is usable: every operation answers (an error at most), none crashes.
  auto restored = Policy::Parse(text);
  if (restored.ok()) {
    const Policy& p = **restored;
    Check(p.Serialize().ok());
    (void)p.Describe();
    for (int v = 0; v <= p.latest_version + 1; ++v) {
      (void)p.Encrypt("x", "ctx", "", "", v);
      (void)p.Hmac("x", "sha2-256", v);
      coffer::engines::transit::SignOptions o;
      o.key_version = v;
      o.context = "ctx";
      (void)p.Sign("x", o);
      for (const char* kind : {"encryption-key", "signing-key", "hmac-key", "public-key"})
        (void)p.Export(kind, v);
    }
    (void)p.Decrypt("vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "ctx", "", "");
  }
  return 0;
}
