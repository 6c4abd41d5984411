// The one registry of Coffer's built-in backends (OpenBao's builtinplugins): secrets engines,
// auth methods and physical storage backends, by type name. The server, the benchmarks and the
// tools all build their CoreOptions from here, so a new engine is one folder plus one line in
// builtin.cc. The registry sits above engines/ and auth/ and below http/ and cli/.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backend.h"
#include "core/core.h"
#include "storage/storage.h"

namespace coffer::registry {

enum class Kind { kSecrets, kAuth };

struct BuiltinBackend {
  std::string_view type;
  Kind kind;
  core::BackendFactory factory;
  std::string_view description;
  // Only for tests and examples: not offered by `coffer server` unless asked for.
  bool example = false;
};

// Every built-in secrets engine and auth method, in a stable order.
const std::vector<BuiltinBackend>& Backends();

// Fills opts.factories and opts.auth_factories (examples only when `with_examples`).
void AddBackends(core::CoreOptions& opts, bool with_examples = false);

// Physical storage backends by type ("sqlite", "inmem"), given the storage stanza's options.
using StorageFactory = std::function<absl::StatusOr<std::unique_ptr<storage::Storage>>(
    const std::map<std::string, std::string>& options)>;
const std::map<std::string, StorageFactory, std::less<>>& StorageBackends();
absl::StatusOr<std::unique_ptr<storage::Storage>> OpenStorage(
    std::string_view type, const std::map<std::string, std::string>& options);

}  // namespace coffer::registry
