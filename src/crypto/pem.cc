#include "crypto/pem.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "crypto/x509_internal.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::crypto {

using x509_internal::Bio;
using x509_internal::I2d;
using x509_internal::MemBio;

absl::StatusOr<Cert> ParseCertPem(std::string_view pem) {
  Bio b = MemBio(pem);
  X509* x = PEM_read_bio_X509(b.get(), nullptr, NoPassphrase, nullptr);
  if (!x) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return Shareable(x);
}

absl::StatusOr<Cert> ParseCertDer(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (!x) {
    ERR_clear_error();
    return absl::DataLossError("stored certificate is not valid DER");
  }
  return Shareable(x);
}

std::string PemFromDer(std::string_view der, std::string_view label) {
  const std::string b64 = Base64Encode(der);
  std::string out;
  out.reserve(b64.size() + b64.size() / 64 + 2 * label.size() + 40);
  out.append("-----BEGIN ").append(label).append("-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) out.append(b64, i, 64).push_back('\n');
  out.append("-----END ").append(label).append("-----");
  return out;
}

std::string CertPem(X509* c) { return PemFromDer(CertDer(c), "CERTIFICATE"); }

std::string CertDer(X509* c) { return I2d(c, i2d_X509); }

absl::StatusOr<PemBundle> ParsePemBundle(std::string_view pem) {
  PemBundle out;
  Bio b = MemBio(pem);
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(b.get(), &name, &header, &data, &len) != 1) {
      ERR_clear_error();
      break;
    }
    std::string n(name);
    std::string der(reinterpret_cast<char*>(data), static_cast<size_t>(len));
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, static_cast<size_t>(len));
    if (n == "CERTIFICATE") {
      auto c = ParseCertDer(der);
      if (!c.ok()) return absl::InvalidArgumentError("a CERTIFICATE block is not valid DER");
      out.certs.push_back(std::move(*c));
    } else if (n == "PRIVATE KEY" || n == "RSA PRIVATE KEY" || n == "EC PRIVATE KEY") {
      if (out.key) return absl::InvalidArgumentError("the bundle holds more than one private key");
      const auto* p = reinterpret_cast<const unsigned char*>(der.data());
      EVP_PKEY* k = d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size()));
      OPENSSL_cleanse(der.data(), der.size());
      if (!k) {
        ERR_clear_error();
        return absl::InvalidArgumentError(Cat("the ", n, " block is not a valid key"));
      }
      out.key.reset(k);
    } else if (n == "EC PARAMETERS") {
      continue;
    } else {
      return absl::InvalidArgumentError(Cat("unexpected PEM block \"", n, "\" in the bundle"));
    }
  }
  if (out.certs.empty() && !out.key)
    return absl::InvalidArgumentError("no PEM certificate or key found in the bundle");
  return out;
}

}  // namespace coffer::crypto
