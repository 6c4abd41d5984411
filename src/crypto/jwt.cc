#include "crypto/jwt.h"

#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cmath>
#include <memory>

#include "boost/json.hpp"
#include "crypto/keys.h"
#include "util/encoding.h"
#include "util/json_parse.h"
#include "util/status.h"

namespace coffer::crypto {
namespace json = boost::json;

namespace {

// A header or a claims set is a small flat object; these bound what a hostile token costs.
JsonLimits PartLimits() {
  JsonLimits l;
  l.max_depth = 16;
  l.max_string_bytes = size_t{16} * 1024;
  l.max_object_entries = 256;
  l.max_array_elements = 256;
  l.max_tokens = 4096;
  return l;
}

// base64url without padding (RFC 7515 2): '=' and the standard alphabet's '+' '/' are refused.
std::optional<std::string> Base64UrlDecode(std::string_view in) {
  std::string std_alphabet(in);
  for (char& c : std_alphabet) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  return Base64Decode(std_alphabet);
}

struct Alg {
  std::string_view name;
  const EVP_MD* (*md)();
  bool ec;
  int ec_bits;  // EC only: the curve size the algorithm requires
};

constexpr std::array<Alg, 6> kAlgs{{{"RS256", EVP_sha256, false, 0},
                                    {"RS384", EVP_sha384, false, 0},
                                    {"RS512", EVP_sha512, false, 0},
                                    {"ES256", EVP_sha256, true, 256},
                                    {"ES384", EVP_sha384, true, 384},
                                    {"ES512", EVP_sha512, true, 521}}};

const Alg* FindAlg(std::string_view name) {
  for (const auto& a : kAlgs)
    if (a.name == name) return &a;
  return nullptr;
}

absl::StatusOr<json::object> DecodePart(std::string_view part, std::string_view what) {
  auto bytes = Base64UrlDecode(part);
  if (!bytes) return absl::InvalidArgumentError(Cat("JWT ", what, " is not valid base64url"));
  auto v = ParseUntrustedJson(*bytes, PartLimits());
  if (!v.ok())
    return absl::InvalidArgumentError(Cat("JWT ", what, " is not valid JSON: ", Msg(v.status())));
  if (!v->is_object())
    return absl::InvalidArgumentError(Cat("JWT ", what, " is not a JSON object"));
  return std::move(v->as_object());
}

// A NumericDate (RFC 7519 2): seconds, possibly fractional. nullopt when absent.
absl::StatusOr<std::optional<int64_t>> NumericDate(const json::object& claims, std::string_view k) {
  const json::value* v = claims.if_contains(k);
  if (!v || v->is_null()) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
  if (v->is_uint64())
    return std::optional<int64_t>(
        v->as_uint64() > uint64_t{INT64_MAX} ? INT64_MAX : static_cast<int64_t>(v->as_uint64()));
  if (v->is_double() && std::isfinite(v->as_double())) {
    const double d = std::floor(v->as_double());
    if (d >= 9.2e18) return std::optional<int64_t>(INT64_MAX);
    if (d <= -9.2e18) return std::optional<int64_t>(INT64_MIN);
    return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return absl::InvalidArgumentError(Cat("JWT claim \"", k, "\" must be a number of seconds"));
}

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// RFC 7518 3.4: an ES signature is r and s, each as long as the curve's order, concatenated.
absl::StatusOr<std::string> EcdsaRawToDer(std::string_view raw, int bits) {
  const size_t n = (static_cast<size_t>(bits) + 7) / 8;
  if (raw.size() != 2 * n)
    return absl::PermissionDeniedError(Cat("JWT signature has ", raw.size(), " bytes; an ECDSA P-",
                                           bits, " signature has ", 2 * n));
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<BIGNUM, BnFree> r(BN_bin2bn(p, static_cast<int>(n), nullptr));
  std::unique_ptr<BIGNUM, BnFree> s(BN_bin2bn(p + n, static_cast<int>(n), nullptr));
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return absl::InternalError(Cat("ECDSA signature: ", OpenSslError()));
  // ECDSA_SIG_set0 took ownership of both numbers.
  (void)r.release();
  (void)s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return absl::InternalError(Cat("ECDSA signature: ", OpenSslError()));
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

absl::StatusOr<Jwt> ParseJwt(std::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("JWT is empty");
  if (token.size() > kMaxJwtBytes)
    return absl::InvalidArgumentError(
        Cat("JWT is ", token.size(), " bytes; at most ", kMaxJwtBytes, " are accepted"));
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return absl::InvalidArgumentError(
        "compact JWS format must have three parts: header.payload.signature");
  Jwt out;
  ASSIGN_OR_RETURN(out.header, DecodePart(token.substr(0, first), "header"));
  const json::value* alg = out.header.if_contains("alg");
  if (!alg || !alg->is_string() || alg->as_string().empty())
    return absl::InvalidArgumentError("JWT header has no \"alg\"");
  out.alg = std::string(alg->as_string());
  if (!FindAlg(out.alg))
    return absl::InvalidArgumentError(
        Cat("JWT signing algorithm \"", out.alg.substr(0, 32),
            "\" is not accepted: use RS256, RS384, RS512, ES256, ES384 or ES512"));
  // A JWE, or a JWS whose header says its payload is not base64url (RFC 7797), is not a JWT.
  if (out.header.contains("enc") || out.header.contains("b64") || out.header.contains("crit"))
    return absl::InvalidArgumentError("JWT header holds parameters that are not supported");
  ASSIGN_OR_RETURN(out.claims, DecodePart(token.substr(first + 1, second - first - 1), "claims"));
  auto sig = Base64UrlDecode(token.substr(second + 1));
  if (!sig) return absl::InvalidArgumentError("JWT signature is not valid base64url");
  if (sig->empty()) return absl::InvalidArgumentError("JWT has no signature");
  out.signature = std::move(*sig);
  out.signing_input = std::string(token.substr(0, second));
  return out;
}

absl::Status VerifyJwt(const Jwt& jwt, EVP_PKEY* key) {
  const Alg* alg = FindAlg(jwt.alg);
  if (!alg) return absl::PermissionDeniedError(Cat("JWT algorithm \"", jwt.alg, "\" is refused"));
  ASSIGN_OR_RETURN(KeySpec spec, DescribeKey(key));
  std::string der;
  std::string_view signature = jwt.signature;
  if (alg->ec) {
    if (spec.type != KeyType::kEc || spec.bits != alg->ec_bits)
      return absl::PermissionDeniedError(Cat("JWT algorithm ", alg->name, " does not fit the key (",
                                             KeyTypeName(spec.type), " ", spec.bits, ")"));
    ASSIGN_OR_RETURN(der, EcdsaRawToDer(jwt.signature, alg->ec_bits));
    signature = der;
  } else if (spec.type != KeyType::kRsa) {
    return absl::PermissionDeniedError(
        Cat("JWT algorithm ", alg->name, " does not fit the key (", KeyTypeName(spec.type), ")"));
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, alg->md(), nullptr, key) != 1)
    return absl::InternalError(Cat("JWT verification: ", OpenSslError()));
  if (!alg->ec && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    return absl::InternalError(Cat("JWT verification: ", OpenSslError()));
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(jwt.signing_input.data()), jwt.signing_input.size());
  if (ok != 1) {
    OpenSslError();  // clears the queue
    return absl::PermissionDeniedError("JWT signature does not verify");
  }
  return absl::OkStatus();
}

absl::StatusOr<PKey> ParsePublicKeyPem(std::string_view pem) {
  if (pem.size() > size_t{64} * 1024) return absl::InvalidArgumentError("PEM key is too long");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return absl::InternalError("out of memory");
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos)
    return absl::InvalidArgumentError("a private key was given where a public key is expected");
  PKey key;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  } else {
    // SubjectPublicKeyInfo ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY"): OpenSSL's decoders
    // read either.
    EVP_PKEY* raw = nullptr;
    std::unique_ptr<OSSL_DECODER_CTX, decltype(&OSSL_DECODER_CTX_free)> dctx(
        OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY, nullptr,
                                      nullptr),
        OSSL_DECODER_CTX_free);
    if (dctx && OSSL_DECODER_from_bio(dctx.get(), bio.get()) == 1) key.reset(raw);
  }
  if (!key) {
    OpenSslError();
    return absl::InvalidArgumentError(
        "data does not contain any valid RSA or ECDSA public keys: give a PEM \"PUBLIC KEY\", "
        "\"RSA PUBLIC KEY\" or \"CERTIFICATE\"");
  }
  ASSIGN_OR_RETURN(KeySpec spec, DescribeKey(key.get()));
  if (spec.type == KeyType::kEd25519)
    return absl::InvalidArgumentError("Ed25519 keys are not accepted: use an RSA or ECDSA key");
  return key;
}

absl::Status CheckJwtTimes(const json::object& claims, int64_t now, int64_t leeway) {
  ASSIGN_OR_RETURN(auto exp, NumericDate(claims, "exp"));
  ASSIGN_OR_RETURN(auto nbf, NumericDate(claims, "nbf"));
  ASSIGN_OR_RETURN(auto iat, NumericDate(claims, "iat"));
  // Compared without overflow: a hostile claim may be INT64_MIN or INT64_MAX.
  if (exp && now - leeway >= *exp) return absl::PermissionDeniedError("token is expired");
  if (nbf && now + leeway < *nbf) return absl::PermissionDeniedError("token is not valid yet");
  if (iat && now + leeway < *iat) return absl::PermissionDeniedError("token used before issued");
  return absl::OkStatus();
}

bool JwtHasAudience(const json::object& claims, std::string_view audience) {
  const json::value* aud = claims.if_contains("aud");
  if (!aud) return false;
  if (aud->is_string()) return aud->as_string() == audience;
  if (aud->is_array())
    for (const auto& a : aud->as_array())
      if (a.is_string() && a.as_string() == audience) return true;
  return false;
}

}  // namespace coffer::crypto
