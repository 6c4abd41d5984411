// Fuzzes ParseJwt, the parser of the service account tokens anyone may send to a kubernetes auth
// method's login, and what the login does next with a parsed token: the time and audience
// checks and a signature check against a fixed key. Checks what the parser promises: an accepted
// token has exactly three parts, an accepted algorithm, a non-empty signature, a signing input
// that is the token's first two parts, and no signature made by nobody verifies.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/jwt.h"
#include "crypto/keys.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

EVP_PKEY* FixedKey(bool ec) {
  static coffer::crypto::PKey* keys = [] {
    static coffer::crypto::PKey k[2] = {
        *coffer::crypto::GenerateKey({coffer::crypto::KeyType::kRsa, 2048}),
        *coffer::crypto::GenerateKey({coffer::crypto::KeyType::kEc, 256})};
    return k;
  }();
  return keys[ec ? 1 : 0].get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  auto jwt = coffer::crypto::ParseJwt(token);
  if (!jwt.ok()) {
    Check(jwt.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Check(size <= coffer::crypto::kMaxJwtBytes);
  Check(jwt->alg == "RS256" || jwt->alg == "RS384" || jwt->alg == "RS512" || jwt->alg == "ES256" ||
        jwt->alg == "ES384" || jwt->alg == "ES512");
  Check(!jwt->signature.empty());
  Check(token.substr(0, jwt->signing_input.size()) == jwt->signing_input);
  Check(token.size() > jwt->signing_input.size() && token[jwt->signing_input.size()] == '.');
  size_t dots = 0;
  for (char c : token) dots += c == '.';
  Check(dots == 2);
  // What the login does with a parsed token must not crash, whatever the claims hold.
  (void)coffer::crypto::CheckJwtTimes(jwt->claims, 1800000000);
  (void)coffer::crypto::JwtHasAudience(jwt->claims, "vault");
  // The fixed keys signed nothing: no input verifies with them.
  Check(!coffer::crypto::VerifyJwt(*jwt, FixedKey(jwt->alg[0] == 'E')).ok());
  return 0;
}
