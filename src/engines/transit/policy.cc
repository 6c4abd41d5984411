#include "engines/transit/policy.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <array>
#include <charconv>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "crypto/keys.h"
#include "crypto/pem.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace json = boost::json;
using crypto::SecretBytes;

namespace {

struct TypeInfo {
  KeyType type;
  std::string_view name;
};
constexpr std::array<TypeInfo, 11> kTypes = {{
    {KeyType::kAes128Gcm96, "aes128-gcm96"},
    {KeyType::kAes256Gcm96, "aes256-gcm96"},
    {KeyType::kChaCha20Poly1305, "chacha20-poly1305"},
    {KeyType::kEcdsaP256, "ecdsa-p256"},
    {KeyType::kEcdsaP384, "ecdsa-p384"},
    {KeyType::kEcdsaP521, "ecdsa-p521"},
    {KeyType::kEd25519, "ed25519"},
    {KeyType::kRsa2048, "rsa-2048"},
    {KeyType::kRsa3072, "rsa-3072"},
    {KeyType::kRsa4096, "rsa-4096"},
    {KeyType::kHmac, "hmac"},
}};

bool IsRsa(KeyType t) {
  return t == KeyType::kRsa2048 || t == KeyType::kRsa3072 || t == KeyType::kRsa4096;
}
bool IsEcdsa(KeyType t) {
  return t == KeyType::kEcdsaP256 || t == KeyType::kEcdsaP384 || t == KeyType::kEcdsaP521;
}

crypto::Aead AeadOf(KeyType t) {
  switch (t) {
    case KeyType::kAes128Gcm96:
      return crypto::Aead::kAes128Gcm;
    case KeyType::kChaCha20Poly1305:
      return crypto::Aead::kChaCha20Poly1305;
    default:
      return crypto::Aead::kAes256Gcm;
  }
}

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string ToUrl(std::string s) {
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

std::optional<std::string> FromUrl(std::string_view s) {
  std::string t(s);
  for (char& c : t) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  return Base64Decode(t);
}

// OpenSSL's name for one of Vault's hash algorithm names.
const char* MdName(std::string_view algorithm) {
  if (algorithm == "sha2-224") return "SHA2-224";
  if (algorithm == "sha2-256") return "SHA2-256";
  if (algorithm == "sha2-384") return "SHA2-384";
  if (algorithm == "sha2-512") return "SHA2-512";
  if (algorithm == "sha3-224") return "SHA3-224";
  if (algorithm == "sha3-256") return "SHA3-256";
  if (algorithm == "sha3-384") return "SHA3-384";
  if (algorithm == "sha3-512") return "SHA3-512";
  return nullptr;
}

const EVP_MD* Md(std::string_view algorithm) {
  const char* n = MdName(algorithm);
  return n == nullptr ? nullptr : EVP_get_digestbyname(n);
}

std::string B64(const SecretBytes& s) { return Base64Encode(s.view()); }

absl::StatusOr<std::shared_ptr<EVP_PKEY>> Generate(KeyType t) {
  crypto::KeySpec spec;
  switch (t) {
    case KeyType::kEcdsaP256:
      spec = {crypto::KeyType::kEc, 256};
      break;
    case KeyType::kEcdsaP384:
      spec = {crypto::KeyType::kEc, 384};
      break;
    case KeyType::kEcdsaP521:
      spec = {crypto::KeyType::kEc, 521};
      break;
    case KeyType::kEd25519:
      spec = {crypto::KeyType::kEd25519, 0};
      break;
    case KeyType::kRsa2048:
      spec = {crypto::KeyType::kRsa, 2048};
      break;
    case KeyType::kRsa3072:
      spec = {crypto::KeyType::kRsa, 3072};
      break;
    case KeyType::kRsa4096:
      spec = {crypto::KeyType::kRsa, 4096};
      break;
    default:
      return absl::InternalError("not an asymmetric key type");
  }
  ASSIGN_OR_RETURN(crypto::PKey k, crypto::GenerateKey(spec));
  return std::shared_ptr<EVP_PKEY>(k.release(), EVP_PKEY_free);
}

// Ed25519's 64-byte private key as Vault keeps it (seed || public key).
absl::StatusOr<SecretBytes> Ed25519Raw(EVP_PKEY* k) {
  SecretBytes out(64);
  size_t n = 32;
  if (EVP_PKEY_get_raw_private_key(k, out.data(), &n) != 1 || n != 32)
    return crypto::OpenSslStatus("EVP_PKEY_get_raw_private_key");
  n = 32;
  if (EVP_PKEY_get_raw_public_key(k, out.data() + 32, &n) != 1 || n != 32)
    return crypto::OpenSslStatus("EVP_PKEY_get_raw_public_key");
  return out;
}

std::string SpkiPem(EVP_PKEY* k) {
  std::string der = crypto::PublicKeyDer(k);
  return crypto::PemFromDer(der, "PUBLIC KEY");
}

// DER ECDSA-Sig-Value <-> r || s of the curve's size (JWS).
absl::StatusOr<std::string> DerToRaw(std::string_view der, size_t half) {
  const unsigned char* p = U(der);
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig) return crypto::OpenSslStatus("d2i_ECDSA_SIG");
  std::string out(2 * half, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), o, static_cast<int>(half)) < 0 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), o + half, static_cast<int>(half)) < 0)
    return crypto::OpenSslStatus("BN_bn2binpad");
  return out;
}

std::optional<std::string> RawToDer(std::string_view raw, size_t half) {
  if (raw.size() != 2 * half) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(U(raw), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(U(raw) + half, static_cast<int>(half), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(sig.get(), &der);
  if (n <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

size_t EcHalf(KeyType t) {
  return t == KeyType::kEcdsaP256 ? 32 : t == KeyType::kEcdsaP384 ? 48 : 66;
}

// Vault's salt_length: "auto", "hash", or an integer >= -1 (Go: 0 = auto, -1 = hash length).
absl::StatusOr<int> SaltLength(std::string_view s, bool sign) {
  int autolen = sign ? RSA_PSS_SALTLEN_MAX : RSA_PSS_SALTLEN_AUTO;
  if (s.empty() || s == "auto") return autolen;
  if (s == "hash") return RSA_PSS_SALTLEN_DIGEST;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < -1)
    return absl::InvalidArgumentError(Cat("invalid salt_length \"", s, "\""));
  if (v == 0) return autolen;
  if (v == -1) return RSA_PSS_SALTLEN_DIGEST;
  return v;
}

using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

// OpenSSL 3.0's HKDF takes at most 1024 bytes of info (the context).
constexpr size_t kMaxContext = 1024;

// What an ECDSA or RSA signature covers: the input's digest (or the input itself when prehashed,
// or for RSA PKCS#1 v1.5 with hash_algorithm "none"), and the digest's algorithm (null for none).
// Signing also checks a prehashed input's length; verifying lets a wrong one simply not verify.
absl::Status SigningDigest(KeyType type, const SignOptions& o, std::string_view input, bool sign,
                           std::string* digest, const EVP_MD** md) {
  *md = nullptr;
  if (o.hash_algorithm == "none") {
    if (!IsRsa(type) || o.signature_algorithm != "pkcs1v15")
      return absl::InvalidArgumentError(
          "hash_algorithm \"none\" is only valid with RSA pkcs1v15 signatures");
    *digest = std::string(input);
    return absl::OkStatus();
  }
  *md = Md(o.hash_algorithm);
  if (*md == nullptr)
    return absl::InvalidArgumentError(Cat("unsupported hash algorithm \"", o.hash_algorithm, "\""));
  if (o.prehashed) {
    if (sign && input.size() != static_cast<size_t>(EVP_MD_get_size(*md)))
      return absl::InvalidArgumentError(
          "prehashed input is not the size of the hash algorithm's output");
    *digest = std::string(input);
    return absl::OkStatus();
  }
  auto d = Digest(o.hash_algorithm, input);
  if (!d) return absl::InternalError("digest failed");
  *digest = std::move(*d);
  return absl::OkStatus();
}

// The digest algorithm and, for RSA, the padding (PSS with its salt length, or PKCS#1 v1.5).
absl::Status SetSignatureParams(EVP_PKEY_CTX* ctx, KeyType type, const SignOptions& o,
                                const EVP_MD* md, bool sign) {
  if (md != nullptr && EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
    return crypto::OpenSslStatus("EVP_PKEY_CTX_set_signature_md");
  if (!IsRsa(type)) return absl::OkStatus();
  std::string alg = o.signature_algorithm.empty() ? "pss" : o.signature_algorithm;
  if (alg == "pkcs1v15") {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
      return crypto::OpenSslStatus("EVP_PKEY_CTX_set_rsa_padding");
    return absl::OkStatus();
  }
  if (alg != "pss")
    return absl::InvalidArgumentError(Cat("unsupported rsa signature algorithm \"", alg, "\""));
  ASSIGN_OR_RETURN(int salt, SaltLength(o.salt_length, sign));
  if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) != 1) {
    if (!sign) return crypto::OpenSslStatus("RSA PSS setup");
    ERR_clear_error();
    return absl::InvalidArgumentError(
        Cat("invalid salt_length \"", o.salt_length, "\" for this key"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view KeyTypeName(KeyType t) {
  for (const auto& i : kTypes)
    if (i.type == t) return i.name;
  return "unknown";
}

absl::StatusOr<KeyType> ParseKeyType(std::string_view s) {
  for (const auto& i : kTypes)
    if (i.name == s) return i.type;
  std::string known;
  for (const auto& i : kTypes) known += Cat(known.empty() ? "" : ", ", i.name);
  return absl::InvalidArgumentError(Cat("unknown key type \"", s, "\"; known: ", known));
}

bool IsSymmetric(KeyType t) {
  return t == KeyType::kAes128Gcm96 || t == KeyType::kAes256Gcm96 ||
         t == KeyType::kChaCha20Poly1305;
}
bool SupportsEncryption(KeyType t) { return IsSymmetric(t) || IsRsa(t); }
bool SupportsSigning(KeyType t) { return IsEcdsa(t) || IsRsa(t) || t == KeyType::kEd25519; }
bool SupportsDerivation(KeyType t) { return IsSymmetric(t) || t == KeyType::kEd25519; }

KeyVersion KeyVersion::Clone() const {
  KeyVersion v;
  v.key = key.Clone();
  v.hmac_key = hmac_key.Clone();
  v.pkey = pkey;
  v.time = time;
  v.creation_time = creation_time;
  return v;
}

absl::StatusOr<Versioned> ParseVersioned(std::string_view s, std::string_view what,
                                         bool url_encoding) {
  constexpr std::string_view kPrefix = "vault:v";
  if (s.substr(0, kPrefix.size()) != kPrefix)
    return absl::InvalidArgumentError(Cat("invalid ", what, ": no prefix"));
  std::string_view rest = s.substr(kPrefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 9)
    return absl::InvalidArgumentError(Cat("invalid ", what, ": wrong number of fields"));
  Versioned out;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + colon, out.version);
  if (ec != std::errc() || p != rest.data() + colon || out.version <= 0)
    return absl::InvalidArgumentError(
        Cat("invalid ", what, ": version number could not be decoded"));
  std::string_view body = rest.substr(colon + 1);
  auto bytes = url_encoding ? FromUrl(body) : Base64Decode(body);
  if (!bytes) return absl::InvalidArgumentError(Cat("invalid ", what, ": could not decode base64"));
  out.bytes = std::move(*bytes);
  return out;
}

std::string FormatVersioned(int version, std::string_view bytes, bool url_encoding) {
  std::string b = Base64Encode(bytes);
  return Cat("vault:v", version, ":", url_encoding ? ToUrl(std::move(b)) : b);
}

std::optional<std::string> Digest(std::string_view algorithm, std::string_view input) {
  const EVP_MD* md = Md(algorithm);
  if (md == nullptr) return std::nullopt;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(input.data(), input.size(), out, &n, md, nullptr) != 1) return std::nullopt;
  return std::string(reinterpret_cast<char*>(out), n);
}

// ---- Life cycle -------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Policy>> Policy::Create(std::string name, KeyType type,
                                                       int64_t now) {
  auto p = std::make_unique<Policy>();
  p->name = std::move(name);
  p->type = type;
  RETURN_IF_ERROR(p->Rotate(now));
  return p;
}

absl::Status Policy::Rotate(int64_t now) {
  KeyVersion v;
  ASSIGN_OR_RETURN(v.hmac_key, SecretBytes::Random(32));
  if (IsSymmetric(type)) {
    ASSIGN_OR_RETURN(v.key, SecretBytes::Random(crypto::AeadKeySize(AeadOf(type))));
  } else if (type == KeyType::kHmac) {
    ASSIGN_OR_RETURN(v.key, SecretBytes::Random(32));
  } else {
    ASSIGN_OR_RETURN(v.pkey, Generate(type));
  }
  v.time = now;
  v.creation_time =
      absl::FormatTime(absl::RFC3339_full, absl::FromUnixSeconds(now), absl::UTCTimeZone());
  if (latest_version >= std::numeric_limits<int>::max() - 1)
    return absl::FailedPreconditionError("the key has reached its maximum number of versions");
  ++latest_version;
  versions[latest_version] = std::move(v);
  if (min_decryption_version == 0) min_decryption_version = 1;
  return absl::OkStatus();
}

std::unique_ptr<Policy> Policy::Clone() const {
  auto p = std::make_unique<Policy>();
  p->name = name;
  p->type = type;
  p->derived = derived;
  p->convergent = convergent;
  p->convergent_version = convergent_version;
  p->exportable = exportable;
  p->allow_plaintext_backup = allow_plaintext_backup;
  p->deletion_allowed = deletion_allowed;
  p->min_decryption_version = min_decryption_version;
  p->min_encryption_version = min_encryption_version;
  p->min_available_version = min_available_version;
  p->latest_version = latest_version;
  p->auto_rotate_period = auto_rotate_period;
  for (const auto& [n, v] : versions) p->versions.emplace(n, v.Clone());
  return p;
}

absl::StatusOr<std::string> Policy::Serialize() const {
  json::object keys;
  for (const auto& [n, v] : versions) {
    json::object k{
        {"hmac_key", B64(v.hmac_key)}, {"time", v.time}, {"creation_time", v.creation_time}};
    if (!v.key.empty()) k["key"] = B64(v.key);
    if (v.pkey) {
      ASSIGN_OR_RETURN(SecretBytes pem, crypto::PrivateKeyPem(v.pkey.get(), "pkcs8"));
      k["private_key"] = std::string(pem.view());
    }
    keys[std::to_string(n)] = std::move(k);
  }
  json::object o{{"name", name},
                 {"type", KeyTypeName(type)},
                 {"derived", derived},
                 {"kdf", derived ? "hkdf_sha256" : ""},
                 {"convergent_encryption", convergent},
                 {"convergent_version", convergent_version},
                 {"exportable", exportable},
                 {"allow_plaintext_backup", allow_plaintext_backup},
                 {"deletion_allowed", deletion_allowed},
                 {"min_decryption_version", min_decryption_version},
                 {"min_encryption_version", min_encryption_version},
                 {"min_available_version", min_available_version},
                 {"latest_version", latest_version},
                 {"auto_rotate_period", auto_rotate_period},
                 {"keys", std::move(keys)}};
  return json::serialize(o);
}

absl::StatusOr<std::unique_ptr<Policy>> Policy::Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return absl::DataLossError("stored transit key is not JSON");
  const json::object& o = v.as_object();
  auto p = std::make_unique<Policy>();
  try {
    p->name = json::value_to<std::string>(o.at("name"));
    ASSIGN_OR_RETURN(p->type, ParseKeyType(o.at("type").as_string()));
    p->derived = o.at("derived").as_bool();
    p->convergent = o.at("convergent_encryption").as_bool();
    p->convergent_version = static_cast<int>(o.at("convergent_version").to_number<int64_t>());
    p->exportable = o.at("exportable").as_bool();
    p->allow_plaintext_backup = o.at("allow_plaintext_backup").as_bool();
    p->deletion_allowed = o.at("deletion_allowed").as_bool();
    p->min_decryption_version =
        static_cast<int>(o.at("min_decryption_version").to_number<int64_t>());
    p->min_encryption_version =
        static_cast<int>(o.at("min_encryption_version").to_number<int64_t>());
    p->min_available_version = static_cast<int>(o.at("min_available_version").to_number<int64_t>());
    p->latest_version = static_cast<int>(o.at("latest_version").to_number<int64_t>());
    p->auto_rotate_period = o.at("auto_rotate_period").to_number<int64_t>();
    for (const auto& [n, kv] : o.at("keys").as_object()) {
      const json::object& k = kv.as_object();
      KeyVersion ver;
      auto hk = Base64Decode(k.at("hmac_key").as_string());
      if (!hk) return absl::DataLossError("stored transit key: bad hmac_key");
      ver.hmac_key = SecretBytes(*hk);
      OPENSSL_cleanse(hk->data(), hk->size());
      if (const auto* kk = k.if_contains("key")) {
        auto raw = Base64Decode(kk->as_string());
        if (!raw) return absl::DataLossError("stored transit key: bad key");
        ver.key = SecretBytes(*raw);
        OPENSSL_cleanse(raw->data(), raw->size());
      }
      if (const auto* pk = k.if_contains("private_key")) {
        ASSIGN_OR_RETURN(crypto::PKey key, crypto::ParsePrivateKeyPem(pk->as_string()));
        ver.pkey = std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
      }
      ver.time = k.at("time").to_number<int64_t>();
      ver.creation_time = json::value_to<std::string>(k.at("creation_time"));
      int num = 0;
      auto [ptr, e] = std::from_chars(n.data(), n.data() + n.size(), num);
      if (e != std::errc() || num <= 0)
        return absl::DataLossError("stored transit key: bad version");
      p->versions.emplace(num, std::move(ver));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(Cat("stored transit key is malformed: ", e.what()));
  }
  RETURN_IF_ERROR(p->Validate());
  return p;
}

namespace {

// Whether an EC key is on the curve its type names: the bit size alone would let a secp256k1 or
// brainpoolP256r1 key pass as an ecdsa-p256 one.
bool OnCurveOf(EVP_PKEY* k, KeyType type) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(k, name, sizeof name, &len) != 1) return false;
  const std::string_view want = EcHalf(type) == 32   ? "prime256v1"
                                : EcHalf(type) == 48 ? "secp384r1"
                                                     : "secp521r1";
  return std::string_view(name, len) == want;
}

}  // namespace

absl::Status Policy::Validate() const {
  auto bad = [](std::string_view why) {
    return absl::DataLossError(Cat("transit key is inconsistent: ", why));
  };
  if (name.empty() || name.find('/') != std::string::npos) return bad("name");
  if (latest_version < 1 || min_available_version < 0 || min_available_version > latest_version)
    return bad("versions");
  if (min_decryption_version < 1 || min_decryption_version > latest_version ||
      min_encryption_version < 0 || min_encryption_version > latest_version)
    return bad("minimum versions");
  if (convergent && (!derived || convergent_version != 3)) return bad("convergent encryption");
  if (derived && !SupportsDerivation(type)) return bad("derivation");
  if (auto_rotate_period < 0) return bad("auto_rotate_period");
  for (int v = std::max(1, min_available_version); v <= latest_version; ++v)
    if (!versions.contains(v)) return bad(Cat("version ", v, " is missing"));
  for (const auto& [n, v] : versions) {
    if (n > latest_version || v.hmac_key.size() != 32 || v.time < 0) return bad(Cat("version ", n));
    if (IsSymmetric(type) || type == KeyType::kHmac) {
      size_t want = type == KeyType::kHmac ? 32 : crypto::AeadKeySize(AeadOf(type));
      if (v.key.size() != want || v.pkey) return bad(Cat("version ", n, " key size"));
      continue;
    }
    if (!v.pkey || !v.key.empty()) return bad(Cat("version ", n, " has no private key"));
    int id = EVP_PKEY_get_base_id(v.pkey.get());
    bool ok = (IsRsa(type) && id == EVP_PKEY_RSA &&
               EVP_PKEY_get_bits(v.pkey.get()) == (type == KeyType::kRsa2048   ? 2048
                                                   : type == KeyType::kRsa3072 ? 3072
                                                                               : 4096)) ||
              (IsEcdsa(type) && id == EVP_PKEY_EC && OnCurveOf(v.pkey.get(), type)) ||
              (type == KeyType::kEd25519 && id == EVP_PKEY_ED25519);
    if (!ok) return bad(Cat("version ", n, " private key is not a ", KeyTypeName(type), " key"));
  }
  return absl::OkStatus();
}

boost::json::object Policy::Describe() const {
  json::object keys;
  for (const auto& [n, v] : versions) {
    if (IsSymmetric(type) || type == KeyType::kHmac) {
      keys[std::to_string(n)] = v.time;
      continue;
    }
    std::string kname = type == KeyType::kEd25519     ? "ed25519"
                        : IsRsa(type)                 ? std::string(KeyTypeName(type))
                        : type == KeyType::kEcdsaP256 ? "P-256"
                        : type == KeyType::kEcdsaP384 ? "P-384"
                                                      : "P-521";
    keys[std::to_string(n)] = json::object{{"creation_time", v.creation_time},
                                           {"name", kname},
                                           {"public_key", derived ? "" : PublicKey(n)}};
  }
  json::object o{{"name", name},
                 {"type", KeyTypeName(type)},
                 {"keys", std::move(keys)},
                 {"derived", derived},
                 {"exportable", exportable},
                 {"allow_plaintext_backup", allow_plaintext_backup},
                 {"deletion_allowed", deletion_allowed},
                 {"latest_version", latest_version},
                 {"min_available_version", min_available_version},
                 {"min_decryption_version", min_decryption_version},
                 {"min_encryption_version", min_encryption_version},
                 {"auto_rotate_period", auto_rotate_period},
                 {"imported_key", false},
                 {"supports_encryption", SupportsEncryption(type)},
                 {"supports_decryption", SupportsEncryption(type)},
                 {"supports_derivation", SupportsDerivation(type)},
                 {"supports_signing", SupportsSigning(type)}};
  if (derived) {
    o["kdf"] = "hkdf_sha256";
    o["convergent_encryption"] = convergent;
    if (convergent) o["convergent_encryption_version"] = convergent_version;
  }
  return o;
}

const KeyVersion* Policy::Version(int v) const {
  auto it = versions.find(v);
  return it == versions.end() ? nullptr : &it->second;
}

absl::StatusOr<int> Policy::EncryptionVersion(int requested) const {
  int v = requested == 0 ? latest_version : requested;
  if (v > latest_version || v <= 0)
    return absl::InvalidArgumentError(
        Cat("key version ", v, " does not exist (latest is ", latest_version, ")"));
  if (min_encryption_version > 0 && v < min_encryption_version)
    return absl::InvalidArgumentError(Cat("requested version ", v,
                                          " is less than the minimum encryption key version ",
                                          min_encryption_version));
  if (Version(v) == nullptr)
    return absl::InvalidArgumentError(Cat("key version ", v, " is not available (trimmed)"));
  return v;
}

// ---- Symmetric --------------------------------------------------------------------------------

absl::Status Policy::SymmetricKeys(int version, std::string_view context, SecretBytes* enc,
                                   SecretBytes* hmac) const {
  const KeyVersion* kv = Version(version);
  if (kv == nullptr)
    return absl::InvalidArgumentError(Cat("key version ", version, " is not available (trimmed)"));
  if (!derived) {
    *enc = kv->key.Clone();
    return absl::OkStatus();
  }
  if (context.empty())
    return absl::InvalidArgumentError(
        "missing 'context' for key derivation; the key was created using a derived key, which "
        "means additional, per-request information must be included in order to perform "
        "operations with the key");
  if (context.size() > kMaxContext)
    return absl::InvalidArgumentError(Cat("context is too long (at most ", kMaxContext, " bytes)"));
  size_t enc_bytes = crypto::AeadKeySize(AeadOf(type));
  size_t hmac_bytes = convergent && convergent_version >= 3 ? 32 : 0;
  ASSIGN_OR_RETURN(SecretBytes all,
                   crypto::HkdfSha256(kv->key.view(), context, enc_bytes + hmac_bytes));
  *enc = SecretBytes(all.view().substr(0, enc_bytes));
  if (hmac_bytes > 0) *hmac = SecretBytes(all.view().substr(enc_bytes));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Policy::Encrypt(std::string_view plaintext, std::string_view context,
                                            std::string_view nonce, std::string_view aad,
                                            int version) const {
  if (!SupportsEncryption(type))
    return absl::InvalidArgumentError(
        Cat("key type ", KeyTypeName(type), " does not support encryption"));
  ASSIGN_OR_RETURN(int v, EncryptionVersion(version));
  if (!derived) context = {};  // ignored, as Vault does, for keys that are not derived
  if (IsRsa(type)) {
    if (!nonce.empty() || !aad.empty())
      return absl::InvalidArgumentError("nonce and associated_data are not used with RSA keys");
    const KeyVersion* kv = Version(v);
    if (kv == nullptr || !kv->pkey)
      return absl::InvalidArgumentError(Cat("key version ", v, " is not available"));
    PKeyCtx ctx(EVP_PKEY_CTX_new(kv->pkey.get(), nullptr), EVP_PKEY_CTX_free);
    size_t n = 0;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1 ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &n, U(plaintext), plaintext.size()) != 1)
      return crypto::OpenSslStatus("RSA-OAEP setup");
    std::string out(n, '\0');
    if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, U(plaintext),
                         plaintext.size()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          "plaintext is too long for an RSA-OAEP encryption with this key");
    }
    out.resize(n);
    return FormatVersioned(v, out);
  }
  SecretBytes enc, hmac;
  RETURN_IF_ERROR(SymmetricKeys(v, context, &enc, &hmac));
  std::string chosen;
  if (convergent) {
    if (!nonce.empty()) return absl::InvalidArgumentError("nonce provided when not allowed");
    // The nonce depends on the plaintext only: one plaintext under two associated data would
    // reuse a GCM nonce with two tags, which gives away the authentication key.
    if (!aad.empty())
      return absl::InvalidArgumentError(
          "associated_data cannot be used with convergent encryption (the nonce would repeat)");
    if (hmac.size() != 32)
      return absl::FailedPreconditionError("the key's convergent nonce key is missing");
    std::string mac = crypto::HmacSha256(hmac.view(), plaintext);
    chosen = mac.substr(0, crypto::kAeadNonceSize);
  } else {
    if (!nonce.empty())
      return absl::InvalidArgumentError(
          "a nonce may only be given with convergent encryption version 1 keys");
    ASSIGN_OR_RETURN(chosen, crypto::RandomBytes(crypto::kAeadNonceSize));
  }
  std::string sealed;
  sealed.reserve(plaintext.size() + 28);
  RETURN_IF_ERROR(crypto::AeadSeal(AeadOf(type), enc.view(), chosen, plaintext, aad, &sealed));
  return FormatVersioned(v, sealed);
}

absl::StatusOr<std::string> Policy::Decrypt(std::string_view ciphertext, std::string_view context,
                                            std::string_view nonce, std::string_view aad,
                                            int* version) const {
  if (!SupportsEncryption(type))
    return absl::InvalidArgumentError(
        Cat("key type ", KeyTypeName(type), " does not support decryption"));
  ASSIGN_OR_RETURN(Versioned c, ParseVersioned(ciphertext));
  if (c.version > latest_version)
    return absl::InvalidArgumentError("invalid ciphertext: version is too new");
  if (c.version < min_decryption_version)
    return absl::InvalidArgumentError(
        "ciphertext or signature version is disallowed by policy (too old)");
  if (version != nullptr) *version = c.version;
  if (!derived) context = {};  // ignored, as Vault does, for keys that are not derived
  if (IsRsa(type)) {
    const KeyVersion* kv = Version(c.version);
    if (kv == nullptr || !kv->pkey)
      return absl::InvalidArgumentError("key version is not available (trimmed)");
    PKeyCtx ctx(EVP_PKEY_CTX_new(kv->pkey.get(), nullptr), EVP_PKEY_CTX_free);
    size_t n = 0;
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1 ||
        EVP_PKEY_decrypt(ctx.get(), nullptr, &n, U(c.bytes), c.bytes.size()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid ciphertext: unable to decrypt");
    }
    std::string out(n, '\0');
    if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, U(c.bytes),
                         c.bytes.size()) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError("invalid ciphertext: unable to decrypt");
    }
    out.resize(n);
    return out;
  }
  (void)nonce;  // the nonce is inside the ciphertext (convergent version 3 and random nonces)
  SecretBytes enc, hmac;
  RETURN_IF_ERROR(SymmetricKeys(c.version, context, &enc, &hmac));
  return crypto::AeadOpen(AeadOf(type), enc.view(), c.bytes, aad);
}

// ---- HMAC -------------------------------------------------------------------------------------

namespace {

// HMAC of `input` with the version's HMAC key (the key itself for hmac keys); raw bytes.
absl::StatusOr<std::string> MacWith(const KeyVersion& kv, KeyType type, std::string_view input,
                                    std::string_view algorithm) {
  const EVP_MD* md = Md(algorithm);
  if (md == nullptr)
    return absl::InvalidArgumentError(Cat("unsupported algorithm \"", algorithm, "\""));
  const SecretBytes& key = type == KeyType::kHmac ? kv.key : kv.hmac_key;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), U(input), input.size(), out, &n) ==
      nullptr)
    return crypto::OpenSslStatus("HMAC");
  return std::string(reinterpret_cast<char*>(out), n);
}

}  // namespace

absl::StatusOr<std::string> Policy::Hmac(std::string_view input, std::string_view algorithm,
                                         int version) const {
  int v = version == 0 ? latest_version : version;
  if (v > latest_version || v <= 0 || v < min_encryption_version || v < min_available_version)
    return absl::InvalidArgumentError(Cat("invalid key version ", v));
  const KeyVersion* kv = Version(v);
  if (kv == nullptr) return absl::InvalidArgumentError(Cat("key version ", v, " is not available"));
  ASSIGN_OR_RETURN(std::string mac, MacWith(*kv, type, input, algorithm));
  return FormatVersioned(v, mac);
}

absl::StatusOr<bool> Policy::VerifyHmac(std::string_view input, std::string_view algorithm,
                                        std::string_view hmac) const {
  ASSIGN_OR_RETURN(Versioned h, ParseVersioned(hmac, "hmac"));
  if (h.version > latest_version)
    return absl::InvalidArgumentError("invalid hmac: version is too new");
  // Verification follows min_decryption_version only (min_encryption_version is for new MACs).
  if (h.version < min_decryption_version)
    return absl::InvalidArgumentError(
        "ciphertext or signature version is disallowed by policy (too old)");
  const KeyVersion* kv = Version(h.version);
  if (kv == nullptr)
    return absl::InvalidArgumentError(Cat("key version ", h.version, " is not available"));
  ASSIGN_OR_RETURN(std::string mine, MacWith(*kv, type, input, algorithm));
  return crypto::ConstantTimeEquals(mine, h.bytes);
}

// ---- Signatures -------------------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<EVP_PKEY>> Policy::SigningKey(int version,
                                                             std::string_view context) const {
  const KeyVersion* kv = Version(version);
  if (kv == nullptr)
    return absl::InvalidArgumentError(Cat("key version ", version, " is not available"));
  if (!kv->pkey) return absl::InvalidArgumentError("the key version has no private key");
  if (!derived) return kv->pkey;
  if (context.empty())
    return absl::InvalidArgumentError("missing 'context' for key derivation of a derived key");
  if (context.size() > kMaxContext)
    return absl::InvalidArgumentError(Cat("context is too long (at most ", kMaxContext, " bytes)"));
  if (!kv->pkey) return absl::InvalidArgumentError("the key version has no private key");
  ASSIGN_OR_RETURN(SecretBytes raw, Ed25519Raw(kv->pkey.get()));
  ASSIGN_OR_RETURN(SecretBytes seed, crypto::HkdfSha256(raw.view(), context, 32));
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (k == nullptr) return crypto::OpenSslStatus("EVP_PKEY_new_raw_private_key");
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

absl::StatusOr<std::string> Policy::Sign(std::string_view input, const SignOptions& o) const {
  if (!SupportsSigning(type))
    return absl::InvalidArgumentError(
        Cat("key type ", KeyTypeName(type), " does not support signing"));
  ASSIGN_OR_RETURN(int v, EncryptionVersion(o.key_version));
  ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key, SigningKey(v, o.context));
  bool jws = o.marshaling_algorithm == "jws";
  if (o.marshaling_algorithm != "asn1" && !jws)
    return absl::InvalidArgumentError(
        Cat("unsupported marshaling_algorithm \"", o.marshaling_algorithm, "\""));
  if (jws && !IsEcdsa(type) && !IsRsa(type) && type != KeyType::kEd25519)
    return absl::InvalidArgumentError("jws marshaling is not supported for this key type");
  std::string sig;
  if (type == KeyType::kEd25519) {
    if (o.prehashed)
      return absl::InvalidArgumentError("prehashed input is not supported with ed25519 keys");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t n = 64;
    sig.resize(n);
    if (!md || EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, U(input),
                       input.size()) != 1)
      return crypto::OpenSslStatus("Ed25519 sign");
    sig.resize(n);
    return FormatVersioned(v, sig, jws);
  }
  std::string digest;
  const EVP_MD* md = nullptr;
  RETURN_IF_ERROR(SigningDigest(type, o, input, /*sign=*/true, &digest, &md));
  PKeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1)
    return crypto::OpenSslStatus("EVP_PKEY_sign_init");
  RETURN_IF_ERROR(SetSignatureParams(ctx.get(), type, o, md, /*sign=*/true));
  size_t n = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &n, U(digest), digest.size()) != 1)
    return crypto::OpenSslStatus("EVP_PKEY_sign");
  sig.resize(n);
  if (EVP_PKEY_sign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, U(digest),
                    digest.size()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "signing failed (input or salt length too large for the key)");
  }
  sig.resize(n);
  if (jws && IsEcdsa(type)) {
    ASSIGN_OR_RETURN(sig, DerToRaw(sig, EcHalf(type)));
  }
  return FormatVersioned(v, sig, jws);
}

absl::StatusOr<bool> Policy::Verify(std::string_view input, std::string_view signature,
                                    const SignOptions& o) const {
  if (!SupportsSigning(type))
    return absl::InvalidArgumentError(
        Cat("key type ", KeyTypeName(type), " does not support verification"));
  bool jws = o.marshaling_algorithm == "jws";
  if (o.marshaling_algorithm != "asn1" && !jws)
    return absl::InvalidArgumentError(
        Cat("unsupported marshaling_algorithm \"", o.marshaling_algorithm, "\""));
  ASSIGN_OR_RETURN(Versioned s, ParseVersioned(signature, "signature", jws));
  if (s.version > latest_version)
    return absl::InvalidArgumentError("invalid signature: version is too new");
  if (s.version < min_decryption_version)
    return absl::InvalidArgumentError(
        "ciphertext or signature version is disallowed by policy (too old)");
  ASSIGN_OR_RETURN(std::shared_ptr<EVP_PKEY> key, SigningKey(s.version, o.context));
  if (type == KeyType::kEd25519) {
    if (o.prehashed)
      return absl::InvalidArgumentError("prehashed input is not supported with ed25519 keys");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!md || EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1)
      return crypto::OpenSslStatus("Ed25519 verify");
    int r = EVP_DigestVerify(md.get(), U(s.bytes), s.bytes.size(), U(input), input.size());
    ERR_clear_error();
    return r == 1;
  }
  std::string digest;
  const EVP_MD* md = nullptr;
  RETURN_IF_ERROR(SigningDigest(type, o, input, /*sign=*/false, &digest, &md));
  std::string sig = s.bytes;
  if (jws && IsEcdsa(type)) {
    auto der = RawToDer(sig, EcHalf(type));
    if (!der) return false;
    sig = std::move(*der);
  }
  PKeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1)
    return crypto::OpenSslStatus("EVP_PKEY_verify_init");
  RETURN_IF_ERROR(SetSignatureParams(ctx.get(), type, o, md, /*sign=*/false));
  int r = EVP_PKEY_verify(ctx.get(), U(sig), sig.size(), U(digest), digest.size());
  ERR_clear_error();
  return r == 1;
}

// ---- Export -----------------------------------------------------------------------------------

std::string Policy::PublicKey(int version) const {
  const KeyVersion* kv = Version(version);
  // A derived key's base public key is half of the derivation's input: never shown.
  if (kv == nullptr || !kv->pkey || derived) return "";
  if (type == KeyType::kEd25519) {
    unsigned char pub[32];
    size_t n = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(kv->pkey.get(), pub, &n) != 1) return "";
    return Base64Encode(std::string_view(reinterpret_cast<char*>(pub), n));
  }
  return SpkiPem(kv->pkey.get());
}

absl::StatusOr<std::string> Policy::Export(std::string_view kind, int version) const {
  const KeyVersion* kv = Version(version);
  if (kv == nullptr) return absl::NotFoundError("");
  if (kind == "hmac-key")
    return Base64Encode(type == KeyType::kHmac ? kv->key.view() : kv->hmac_key.view());
  if (kind == "public-key") {
    if (derived)
      return absl::InvalidArgumentError(
          "a derived key has a public key per context: none to export");
    if (!kv->pkey)
      return absl::InvalidArgumentError("the key has no public part (symmetric key type)");
    return PublicKey(version);
  }
  if (kind == "encryption-key") {
    if (!SupportsEncryption(type))
      return absl::InvalidArgumentError("encryption-key export is not supported for this key type");
    if (IsSymmetric(type)) return Base64Encode(kv->key.view());
    ASSIGN_OR_RETURN(SecretBytes pem, crypto::PrivateKeyPem(kv->pkey.get(), "der"));
    return std::string(pem.view());
  }
  if (kind == "signing-key") {
    if (!SupportsSigning(type))
      return absl::InvalidArgumentError("signing-key export is not supported for this key type");
    if (!kv->pkey) return absl::InvalidArgumentError("the key version has no private key");
    if (type == KeyType::kEd25519) {
      ASSIGN_OR_RETURN(SecretBytes raw, Ed25519Raw(kv->pkey.get()));
      return Base64Encode(raw.view());
    }
    ASSIGN_OR_RETURN(SecretBytes pem, crypto::PrivateKeyPem(kv->pkey.get(), "der"));
    return std::string(pem.view());
  }
  return absl::InvalidArgumentError(Cat("invalid export type \"", kind, "\""));
}

}  // namespace coffer::engines::transit
