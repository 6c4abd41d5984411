// ECDSA over P-256/P-384/P-521 straight on OpenSSL's EC primitives, for the signing hot path.
// OpenSSL 3's EVP layer fetches providers, decodes keys and takes shared locks on every call;
// for a request that only needs one verify and one sign, that costs more than the curve
// arithmetic. These functions keep one prepared key per curve and thread. Thread-safe.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

namespace coffer::crypto {

// NID of the named curve for a DER OID body (without tag and length): P-256, P-384, P-521;
// 0 for any other curve.
int EcCurveFromOid(std::string_view oid);

// Verifies a DER ECDSA signature over SHA-2 `digest` by the public key `point` (an SEC 1
// compressed or uncompressed point on `curve_nid`). 1 valid; 0 invalid signature; -1 when the
// point is not a valid public key on that curve.
int EcdsaVerify(int curve_nid, std::string_view point, std::string_view digest,
                std::string_view signature);

// A DER ECDSA signature of `digest` by the EC private key `key`, through the EC_KEY OpenSSL keeps
// for it (the same ECDSA code, nonce generation included, as EVP_DigestSign, without setting up
// a signing context per call: a tenth of a sign/:role request's CPU). Empty when `key` is no EC
// private key or signing fails; the caller then signs through EVP.
std::string EcdsaSign(EVP_PKEY* key, std::string_view digest);

// A new EC key pair on `curve_nid`, held as an EC_KEY inside the EVP_PKEY. OpenSSL 3 then encodes
// it (SubjectPublicKeyInfo, SEC 1 and PKCS#8 PEM) with its direct EC code instead of the
// provider encoders: issue/:role's key work drops from ~200 to ~35 us. Signing, parameter
// queries and every EVP use work as for any key. nullptr on failure (see the OpenSSL queue).
EVP_PKEY* NewEcKey(int curve_nid);

// SHA-256/384/512 of `data` for `bits`; empty for other sizes.
std::string Sha2(int bits, std::string_view data);

// SHA-1 of `data`: for key identifiers (RFC 5280 4.2.1.2), not for signatures.
std::string Sha1(std::string_view data);

}  // namespace coffer::crypto
