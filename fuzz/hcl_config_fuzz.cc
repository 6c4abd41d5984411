// Fuzzes the HCL/JSON parser and the server configuration built on it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/hcl.h"
#include "config/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)coffer::hcl::Parse(text);
  (void)coffer::config::ParseServerConfig(text, "fuzz.hcl");
  return 0;
}
