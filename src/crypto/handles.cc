#include "crypto/handles.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace coffer::crypto {

Cert Shareable(X509* x) {
  if (x != nullptr) {
    X509_check_purpose(x, -1, 0);  // caches the extensions; the answer does not matter
    ERR_clear_error();
  }
  return Cert(x);
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    e = ERR_get_error();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

absl::Status OpenSslStatus(std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += OpenSslError();
  return absl::InternalError(msg);
}

}  // namespace coffer::crypto
