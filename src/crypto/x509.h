// X.509 over OpenSSL 3, all of it: include this header for the whole API, or one of the parts
// it gathers for less:
//   handles.h       RAII handles for keys, certificates, CSRs, CRLs, names; OpenSslError
//   keys.h          key policy, generation, private key (PKCS#1/SEC 1/PKCS#8) and SPKI encodings
//   pem.h           certificates to and from PEM/DER; PEM bundles
//   cert_fields.h   a certificate's serial, validity, key id, CA flag, issuer, names
//   csr.h           CSR parsing and signature checks (ECDSA fast path); building CSRs
//   cert_builder.h  signing certificates with RFC 5280 conformant extensions; key usage names
//   crl.h           signing CRLs and their encodings
// Policy (which names, which TTL) lives in the PKI engine, not here. Every function is
// thread-safe; handles are plain owned values.
#pragma once

// Kept from when this header declared everything itself, for files that reached them through it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cert_builder.h"
#include "crypto/cert_fields.h"
#include "crypto/crl.h"
#include "crypto/csr.h"
#include "crypto/handles.h"
#include "crypto/keys.h"
#include "crypto/pem.h"
