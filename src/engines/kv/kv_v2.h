// KV secrets engine, version 2 (type "kv" with options.version "2"): Vault's versioned
// key/value API — config, data, metadata, delete, undelete, destroy and subkeys — with
// check-and-set, a per-key and per-mount number of versions to keep, and delete_version_after.
//
// Storage layout inside the mount's view (all through the barrier):
//   config                          the mount's settings (max_versions, cas_required,
//                                   delete_version_after)
//   metadata/<path>                 one JSON record per secret: its settings, custom metadata
//                                   and the state of each version kept; LIST is a storage List
//   versions/<hex sha256(path)>/<n> the data of version n of <path> (a JSON object)
//   kv-v2-format                    the format marker: this view holds version 2 data
// A write puts the version and the metadata in one atomic Storage::Write batch.
//
// Initialize() upgrades a view that holds version 1 data (a mount tuned from version 1 to 2):
// every secret becomes version 1 of the same path, in one atomic batch with the marker.
//
// Safe to call from several threads: writes to one secret are serialized by a striped lock
// keyed by its path; the mount's config is cached under its own lock.
#pragma once

#include <memory>

#include "core/backend.h"

namespace coffer::engines::kv {

absl::StatusOr<std::unique_ptr<core::Backend>> NewVersion2(const core::BackendConfig& config);

}  // namespace coffer::engines::kv
