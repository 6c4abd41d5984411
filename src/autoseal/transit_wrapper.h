// The Transit seal: another Coffer (or Vault) server's Transit key wraps the root key. Calls
// `<mount_path>/encrypt/<key_name>` and `decrypt/<key_name>` with the stored path as
// associated_data, over TLS with the configured CA and client certificate. Unless
// disable_renewal, a thread keeps the token renewed (at half its TTL) for as long as the server
// runs. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/client.h"
#include "seal/wrapper.h"

namespace coffer::autoseal {

struct TransitOptions {
  http::ClientOptions client;  // address, TLS settings and timeout
  std::string token;           // used when token_file is empty
  std::string token_file;      // re-read at each call (a rotated token is picked up)
  std::string mount_path = "transit";
  std::string key_name;
  bool disable_renewal = false;
};

std::unique_ptr<seal::Wrapper> NewTransitWrapper(TransitOptions opts);

}  // namespace coffer::autoseal
