// PKI secrets engine (mount type "pki"): Vault's PKI API — CAs and several issuers per mount,
// roles, issue/sign/sign-verbatim, revocation with per-issuer CRLs, certificate listing and
// tidy. Certificates follow RFC 5280 (see crypto/x509.h). A declared path table on the backend
// framework (core/framework/framework.h), with the lifecycle hooks: Initialize loads the
// issuers and configuration, InvalidateKey drops what a changed storage key affects, Cleanup
// stops a running tidy. Safe to call from several threads.
#pragma once

#include "core/backend.h"
#include "util/clock.h"

namespace coffer::engines::pki {

absl::StatusOr<std::unique_ptr<core::Backend>> Factory(const core::BackendConfig& config);

}  // namespace coffer::engines::pki
