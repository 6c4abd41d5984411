// Fuzzes the ACL policy parser (HCL and JSON) and the ACL built from what it accepts.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/acl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto p = coffer::core::ParsePolicy("fuzz", text);
  if (!p.ok()) return 0;
  (void)coffer::core::FormatPolicy(*p);
  auto acl = coffer::core::Acl::Build({std::make_shared<coffer::core::Policy>(std::move(*p))});
  for (std::string_view path : {"secret/a", "secret/a/b/", "sys/mounts", "", "a/b/c/d/e", "+/x"}) {
    (void)acl->Capabilities(path, false);
    (void)acl->Capabilities(path, true);
  }
  return 0;
}
