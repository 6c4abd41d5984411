#include "autoseal/autoseal.h"

#include <openssl/crypto.h>

#include <cstdlib>

#include "autoseal/pkcs11_wrapper.h"
#include "autoseal/transit_wrapper.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::autoseal {
namespace {

std::string Option(const config::SealStanza& s, const char* key) {
  auto it = s.options.find(key);
  return it == s.options.end() ? std::string() : it->second;
}

absl::StatusOr<bool> BoolOption(const config::SealStanza& s, const char* key) {
  std::string v = Option(s, key);
  if (v.empty() || v == "false" || v == "0") return false;
  if (v == "true" || v == "1") return true;
  return absl::InvalidArgumentError(
      Cat("line ", s.line, ": seal \"", s.type, "\": ", key, " must be true or false"));
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<seal::Wrapper>> NewWrapper(const config::SealStanza& s) {
  if (s.type == "shamir") return std::unique_ptr<seal::Wrapper>();
  if (s.type == "transit") {
    TransitOptions o;
    o.client.address = Option(s, "address");
    while (!o.client.address.empty() && o.client.address.back() == '/') o.client.address.pop_back();
    o.client.ca_cert = Option(s, "tls_ca_cert");
    o.client.client_cert_file = Option(s, "tls_client_cert");
    o.client.client_key_file = Option(s, "tls_client_key");
    o.client.server_name = Option(s, "tls_server_name");
    ASSIGN_OR_RETURN(o.client.skip_verify, BoolOption(s, "tls_skip_verify"));
    o.client.timeout = std::chrono::seconds(10);
    o.client.max_response_bytes = size_t{1} << 20;
    o.token = Option(s, "token");
    o.token_file = Option(s, "token_file");
    if (o.token.empty() && o.token_file.empty()) {
      o.token = Env("VAULT_TOKEN");
      unsetenv("VAULT_TOKEN");  // not left for /proc/<pid>/environ and child processes (hooks)
    }
    // Vault Enterprise namespaces: sent as X-Vault-Namespace, as Vault's seal does (Coffer has
    // no namespaces and ignores the header).
    if (auto ns = Option(s, "namespace"); !ns.empty())
      o.client.headers.emplace_back("X-Vault-Namespace", ns);
    o.mount_path = Option(s, "mount_path");
    o.key_name = Option(s, "key_name");
    ASSIGN_OR_RETURN(o.disable_renewal, BoolOption(s, "disable_renewal"));
    if (o.client.address.rfind("http://", 0) != 0 && o.client.address.rfind("https://", 0) != 0)
      return absl::InvalidArgumentError(Cat("line ", s.line,
                                            ": seal \"transit\": address must start with "
                                            "https:// (or http://), got \"",
                                            o.client.address, "\""));
    const bool loopback = o.client.address.find("://127.") != std::string::npos ||
                          o.client.address.find("://localhost") != std::string::npos ||
                          o.client.address.find("://[::1]") != std::string::npos;
    if (o.client.address.rfind("http://", 0) == 0 && !loopback)
      log::Warn(
          "seal \"transit\" uses plain HTTP: the root key and the token cross the network "
          "unencrypted; use https://",
          {{"address", o.client.address}});
    if (o.client.skip_verify)
      log::Warn("seal \"transit\" has tls_skip_verify: anyone on the path can read the root key");
    return NewTransitWrapper(std::move(o));
  }
  if (s.type == "pkcs11") {
    Pkcs11Options o;
    o.lib = Option(s, "lib");
    o.slot = Option(s, "slot");
    o.token_label = Option(s, "token_label");
    o.key_label = Option(s, "key_label");
    o.hmac_key_label = Option(s, "hmac_key_label");
    if (auto m = Option(s, "mechanism"); !m.empty()) o.mechanism = m;
    if (auto m = Option(s, "hmac_mechanism"); !m.empty()) o.hmac_mechanism = m;
    ASSIGN_OR_RETURN(o.generate_key, BoolOption(s, "generate_key"));
    std::string pin = Env("COFFER_HSM_PIN");
    if (pin.empty()) pin = Env("VAULT_HSM_PIN");
    unsetenv("COFFER_HSM_PIN");  // read once; not left in the process environment
    unsetenv("VAULT_HSM_PIN");
    if (pin.empty())
      return absl::InvalidArgumentError(
          "seal \"pkcs11\" needs the token's user PIN in the environment: COFFER_HSM_PIN (or "
          "VAULT_HSM_PIN)");
    o.pin = crypto::SecretBytes(pin);
    OPENSSL_cleanse(pin.data(), pin.size());
    auto w = NewPkcs11Wrapper(std::move(o));
    if (!w.ok())
      return absl::Status(w.status().code(),
                          Cat("line ", s.line, ": seal \"pkcs11\": ", Msg(w.status())));
    return w;
  }
  return absl::InvalidArgumentError(Cat("unsupported seal type \"", s.type, "\""));
}

}  // namespace coffer::autoseal
