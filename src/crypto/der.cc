#include "crypto/der.h"

namespace coffer::crypto::der {

std::optional<Tlv> Next(std::string_view& in) {
  if (in.size() < 2) return std::nullopt;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  Tlv t;
  t.tag = p[0];
  if ((t.tag & 0x1f) == 0x1f) return std::nullopt;  // high tag numbers: none in our structures
  size_t header = 2;
  size_t len = p[1];
  if (len & 0x80) {
    const size_t n = len & 0x7f;
    if (n == 0 || n > 3 || in.size() < 2 + n) return std::nullopt;  // indefinite or > 16 MiB
    len = 0;
    for (size_t i = 0; i < n; ++i) len = (len << 8) | p[2 + i];
    // Shortest form only: long form for < 128, or a leading zero byte, is not DER.
    if (len < 0x80 || p[2] == 0) return std::nullopt;
    header += n;
  }
  if (in.size() - header < len) return std::nullopt;
  t.contents = in.substr(header, len);
  t.whole = in.substr(0, header + len);
  in.remove_prefix(header + len);
  return t;
}

std::optional<Tlv> Expect(std::string_view& in, uint8_t tag) {
  auto t = Next(in);
  if (!t || t->tag != tag) return std::nullopt;
  return t;
}

}  // namespace coffer::crypto::der
