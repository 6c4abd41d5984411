// JSON Web Tokens in the JWS compact serialization (RFC 7515, RFC 7519): parsing untrusted
// tokens, checking their signature with a configured public key, and the registered time and
// audience claims. Only asymmetric algorithms are accepted (RS256/384/512, ES256/384/512):
// "none", the HMAC family and anything else are refused when the token is parsed, so no code
// path can take a token whose signature was never checked against a public key for one that
// was. A token is bounded (kMaxJwtBytes) and its header and claims go through
// ParseUntrustedJson with small limits.
//
// Pure functions over owned values; every function is thread-safe.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/json/object.hpp"
#include "crypto/handles.h"

namespace coffer::crypto {

// The largest token accepted. A Kubernetes service account token is about 1 KB; 32 KiB leaves
// room for many audiences and long names while bounding the work an anonymous caller causes.
inline constexpr size_t kMaxJwtBytes = size_t{32} * 1024;

struct Jwt {
  std::string alg;             // "RS256", "ES256", ... (checked to be a supported one)
  boost::json::object header;  // the protected header
  boost::json::object claims;  // the payload, a JSON object
  std::string signing_input;   // base64url(header) "." base64url(payload), as received
  std::string signature;       // the decoded signature bytes
};

// Parses a compact JWS. InvalidArgument naming what is wrong: not three parts, bad base64url,
// header or claims not a JSON object within limits, alg missing or not a supported asymmetric
// algorithm, an empty signature. The signature is not checked here.
absl::StatusOr<Jwt> ParseJwt(std::string_view token);

// Checks the signature of `jwt` with `key`. The algorithm must fit the key: RS* for an RSA key,
// ES256 for P-256, ES384 for P-384, ES512 for P-521 (an ES signature is the raw r||s of
// RFC 7518 3.4, converted to DER for OpenSSL). PermissionDenied when it does not verify or the
// key does not fit the algorithm.
absl::Status VerifyJwt(const Jwt& jwt, EVP_PKEY* key);

// Reads a public key given as PEM: a SubjectPublicKeyInfo ("PUBLIC KEY"), a PKCS#1
// "RSA PUBLIC KEY", or a certificate whose key is taken. RSA and EC only, under Coffer's key
// policy (RSA >= 2048 bits, P-256/384/521). InvalidArgument naming the problem otherwise.
absl::StatusOr<PKey> ParsePublicKeyPem(std::string_view pem);

// The registered time claims (exp, nbf, iat), checked at `now` (unix seconds) with `leeway`
// seconds of tolerance for clock skew. Absent claims are not required. PermissionDenied
// "token is expired" / "token is not valid yet" / "token used before issued"; InvalidArgument
// when a present claim is not a number.
absl::Status CheckJwtTimes(const boost::json::object& claims, int64_t now, int64_t leeway = 0);

// Whether the "aud" claim (a string or an array of strings) holds `audience`.
bool JwtHasAudience(const boost::json::object& claims, std::string_view audience);

}  // namespace coffer::crypto
