// Owning handles for the OpenSSL objects of X.509 work (keys, certificates, CSRs, CRLs, names,
// SubjectPublicKeyInfos): each is a std::unique_ptr that calls the object's free function, so
// whoever holds the handle owns the object. OpenSslError turns OpenSSL's error queue into text
// for a Status message. Thread-safe: OpenSSL's error queue is per thread; a handle is an
// ordinary owned value, used by one thread at a time unless its holder adds a lock.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace coffer::crypto {

// The passphrase callback every PEM read passes: it refuses, so an encrypted PEM (or a PEM block
// with a "Proc-Type: 4,ENCRYPTED" header, which a certificate can carry too) is an error. With
// no callback OpenSSL falls back to prompting on the server's terminal, or reading its stdin,
// and the request's thread blocks there.
inline int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

struct PKeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct X509CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
struct X509NameFree {
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
};
struct X509PubkeyFree {
  void operator()(X509_PUBKEY* p) const { X509_PUBKEY_free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, PKeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Csr = std::unique_ptr<X509_REQ, X509ReqFree>;
using Crl = std::unique_ptr<X509_CRL, X509CrlFree>;
using Name = std::unique_ptr<X509_NAME, X509NameFree>;
using Spki = std::unique_ptr<X509_PUBKEY, X509PubkeyFree>;

// Takes `x` for a Cert that threads may share: OpenSSL decodes a certificate's extensions
// lazily, on first use, and in 3.0 a thread reading them (X509_get0_subject_key_id, as every
// leaf signature does for its issuer) can race with another one filling that cache (found by
// ThreadSanitizer). Filling it here, while `x` is still this thread's alone, ends that.
Cert Shareable(X509* x);

// The last OpenSSL error as text, for messages; clears the queue.
std::string OpenSslError();
// InternalError "<what>: <OpenSSL's error queue>", the queue cleared.
absl::Status OpenSslStatus(std::string_view what);

}  // namespace coffer::crypto
