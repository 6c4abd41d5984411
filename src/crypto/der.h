// A strict DER reader for the few structures Coffer walks by hand on hot paths (a CSR on the
// signing path), where OpenSSL 3's generic decoders cost more than the signature check itself.
// Only what DER allows is accepted: single-byte tags, definite lengths in their shortest form.
// Pure functions over caller-owned bytes; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace coffer::crypto::der {

constexpr uint8_t kInteger = 0x02;
constexpr uint8_t kBitString = 0x03;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kSet = 0x31;
constexpr uint8_t kContext0 = 0xa0;  // [0] constructed

struct Tlv {
  uint8_t tag = 0;
  std::string_view contents;  // the value bytes
  std::string_view whole;     // tag, length and value
};

// Reads the next element of `in` and advances past it. nullopt when the bytes are truncated,
// use a multi-byte tag or an indefinite or non-minimal length, or claim more than 16 MiB.
std::optional<Tlv> Next(std::string_view& in);

// Next(), and the element must have `tag`.
std::optional<Tlv> Expect(std::string_view& in, uint8_t tag);

}  // namespace coffer::crypto::der
