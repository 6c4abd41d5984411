// The auto seals' wrappers, made from the server config's `seal` blocks (docs/seals.md).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "config/server_config.h"
#include "seal/wrapper.h"

namespace coffer::autoseal {

// The wrapper a `seal "transit"` or `seal "pkcs11"` block describes (null for `seal "shamir"`).
// Reads the secrets a block does not hold from the environment: the Transit token (VAULT_TOKEN
// when neither token nor token_file is set) and the HSM PIN (COFFER_HSM_PIN or VAULT_HSM_PIN).
// Nothing is contacted yet: Wrapper::Init does that.
absl::StatusOr<std::unique_ptr<seal::Wrapper>> NewWrapper(const config::SealStanza& stanza);

}  // namespace coffer::autoseal
