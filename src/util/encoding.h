// Hex, base64 and base62 encodings. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace coffer {

std::string HexEncode(std::string_view bytes);
std::optional<std::string> HexDecode(std::string_view hex);
std::string Base64Encode(std::string_view bytes);
// Accepts standard base64 with or without padding.
std::optional<std::string> Base64Decode(std::string_view b64);

}  // namespace coffer
