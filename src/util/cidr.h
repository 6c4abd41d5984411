// CIDR checks for bound_cidrs: "10.0.0.0/8", "2001:db8::/32", or a bare address. Pure functions.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace coffer {

absl::Status ValidateCidr(std::string_view cidr);
// False for unparsable input.
bool CidrContains(std::string_view cidr, std::string_view address);

}  // namespace coffer
