#include "util/cidr.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "util/status.h"

namespace coffer {
namespace {

// 16 bytes (IPv4 mapped into the last 4 with family 4), returns the bit length (32 or 128).
int ParseAddr(std::string_view s, unsigned char out[16]) {
  std::string str(s);
  std::memset(out, 0, 16);
  if (inet_pton(AF_INET, str.c_str(), out + 12) == 1) return 32;
  if (inet_pton(AF_INET6, str.c_str(), out) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out, kMapped, 12) == 0) return 32;
    return 128;
  }
  return 0;
}

bool Parse(std::string_view cidr, unsigned char net[16], int* bits, int* family) {
  size_t slash = cidr.find('/');
  *family = ParseAddr(cidr.substr(0, slash), net);
  if (*family == 0) return false;
  if (slash == std::string_view::npos) {
    *bits = *family;
    return true;
  }
  std::string b(cidr.substr(slash + 1));
  if (b.empty() || b.size() > 3 || b.find_first_not_of("0123456789") != std::string::npos)
    return false;
  *bits = std::stoi(b);
  return *bits <= *family;
}

}  // namespace

absl::Status ValidateCidr(std::string_view cidr) {
  unsigned char net[16];
  int bits, family;
  if (!Parse(cidr, net, &bits, &family))
    return absl::InvalidArgumentError(
        Cat("\"", cidr, "\" is not a CIDR block such as 10.0.0.0/8 or 2001:db8::/32"));
  return absl::OkStatus();
}

bool CidrContains(std::string_view cidr, std::string_view address) {
  unsigned char net[16], addr[16];
  int bits, family;
  if (!Parse(cidr, net, &bits, &family)) return false;
  int afamily = ParseAddr(address, addr);
  if (afamily != family) return false;
  int offset = family == 32 ? 12 : 0;
  for (int i = 0; i < bits; ++i) {
    int byte = offset + i / 8, bit = 7 - i % 8;
    if (((net[byte] >> bit) & 1) != ((addr[byte] >> bit) & 1)) return false;
  }
  return true;
}

}  // namespace coffer
