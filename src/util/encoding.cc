#include "util/encoding.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace coffer {
namespace {
constexpr char kHex[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<int16_t, 256> MakeB64Table() {
  std::array<int16_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<int16_t>(i);
  return t;
}
constexpr auto kB64Table = MakeB64Table();
}  // namespace

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  size_t o = 0;
  for (unsigned char c : bytes) {
    out[o++] = kHex[c >> 4];
    out[o++] = kHex[c & 15];
  }
  return out;
}

std::optional<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexVal(hex[i]), lo = HexVal(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  // Written into a buffer of the final size, three bytes to four characters per step (the
  // signing path encodes every certificate twice: the record and the PEM).
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  char* o = out.data();
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3, o += 4) {
    const uint32_t v = uint32_t{p[i]} << 16 | uint32_t{p[i + 1]} << 8 | p[i + 2];
    o[0] = kB64[v >> 18];
    o[1] = kB64[v >> 12 & 63];
    o[2] = kB64[v >> 6 & 63];
    o[3] = kB64[v & 63];
  }
  const size_t rem = bytes.size() - i;
  if (rem > 0) {
    const uint32_t v = uint32_t{p[i]} << 16 | (rem == 2 ? uint32_t{p[i + 1]} << 8 : 0);
    o[0] = kB64[v >> 18];
    o[1] = kB64[v >> 12 & 63];
    o[2] = rem == 2 ? kB64[v >> 6 & 63] : '=';
    o[3] = '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view b64) {
  while (!b64.empty() && b64.back() == '=') b64.remove_suffix(1);
  if (b64.size() % 4 == 1) return std::nullopt;
  std::string out(b64.size() / 4 * 3 + (b64.size() % 4 == 0 ? 0 : b64.size() % 4 - 1), '\0');
  char* o = out.data();
  // Refused input may be a secret (a key in a kubeconfig): what was decoded is wiped first.
  auto refuse = [&out]() -> std::optional<std::string> {
    explicit_bzero(out.data(), out.size());
    return std::nullopt;
  };
  const auto* p = reinterpret_cast<const unsigned char*>(b64.data());
  size_t i = 0;
  // Four characters to three bytes per step; any character outside the alphabet makes a
  // lookup negative, which the OR of the four keeps.
  for (; i + 4 <= b64.size(); i += 4, o += 3) {
    const int a = kB64Table[p[i]], b = kB64Table[p[i + 1]], c = kB64Table[p[i + 2]],
              d = kB64Table[p[i + 3]];
    if ((a | b | c | d) < 0) return refuse();
    const auto v = static_cast<uint32_t>(a << 18 | b << 12 | c << 6 | d);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>(v >> 8 & 0xff);
    o[2] = static_cast<char>(v & 0xff);
  }
  const size_t rem = b64.size() - i;  // 0, 2 or 3
  if (rem > 0) {
    const int a = kB64Table[p[i]], b = kB64Table[p[i + 1]], c = rem == 3 ? kB64Table[p[i + 2]] : 0;
    if ((a | b | c) < 0) return refuse();
    const auto v = static_cast<uint32_t>(a << 18 | b << 12 | c << 6);
    // Leftover bits must be zero for a canonical encoding.
    if ((rem == 2 && (v & 0xffff) != 0) || (rem == 3 && (v & 0xff) != 0)) return refuse();
    o[0] = static_cast<char>(v >> 16);
    if (rem == 3) o[1] = static_cast<char>(v >> 8 & 0xff);
  }
  return out;
}

}  // namespace coffer
