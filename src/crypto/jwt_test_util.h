// Test support (included by *_test.cc files only): makes keys and signs JWTs with them, so tests
// hold real tokens signed by keys they made themselves.
#pragma once

#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include <string>
#include <string_view>

#include "boost/json.hpp"
#include "crypto/handles.h"
#include "crypto/keys.h"
#include "util/encoding.h"

namespace coffer::crypto::testing {

inline std::string B64Url(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

inline PKey MakeKey(KeyType type, int bits) {
  auto k = GenerateKey(KeySpec{type, bits});
  return k.ok() ? std::move(*k) : PKey();
}

// The key's SubjectPublicKeyInfo as PEM ("PUBLIC KEY").
inline std::string PublicPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// The raw signature of `input` with `key`: PKCS#1 v1.5 for RSA, r||s for EC (RFC 7518 3.4).
inline std::string Sign(EVP_PKEY* key, const EVP_MD* md, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key);
  EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const size_t n = (static_cast<size_t>(EVP_PKEY_get_bits(key)) + 7) / 8;
  std::string raw(2 * n, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()),
               static_cast<int>(n));
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + n,
               static_cast<int>(n));
  ECDSA_SIG_free(es);
  return raw;
}

// A compact JWS of `claims` signed with `key` under `alg` ("RS256", "ES256", ...).
inline std::string MakeJwt(EVP_PKEY* key, std::string_view alg, const boost::json::object& claims,
                           const EVP_MD* md = EVP_sha256()) {
  const std::string input =
      B64Url(boost::json::serialize(boost::json::object{{"alg", alg}, {"typ", "JWT"}})) + "." +
      B64Url(boost::json::serialize(claims));
  return input + "." + B64Url(Sign(key, md, input));
}

}  // namespace coffer::crypto::testing
