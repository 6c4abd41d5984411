#include "registry/builtin.h"

#include <filesystem>

#include "auth/approle/approle_backend.h"
#include "auth/github/github_backend.h"
#include "auth/kubernetes/kubernetes_backend.h"
#include "auth/token/token_backend.h"
#include "engines/example/example_backend.h"
#include "engines/kv/kv_backend.h"
#include "engines/pki/pki_backend.h"
#include "engines/transit/transit_backend.h"
#include "etcd/etcd_storage.h"
#include "storage/memory_storage.h"
#include "storage/sqlite_storage.h"
#include "util/status.h"

namespace coffer::registry {

const std::vector<BuiltinBackend>& Backends() {
  static const std::vector<BuiltinBackend> kBackends = {
      {"kv", Kind::kSecrets, engines::kv::Factory, "key/value secrets, version 1"},
      {"generic", Kind::kSecrets, engines::kv::Factory, "kv's older name"},
      {"pki", Kind::kSecrets, engines::pki::Factory, "certificate authorities and certificates"},
      {"transit", Kind::kSecrets, engines::transit::Factory, "encryption as a service"},
      {"example", Kind::kSecrets, engines::example::Factory, "the framework's example", true},
      {"token", Kind::kAuth, auth::token::Factory, "token based credentials"},
      {"approle", Kind::kAuth, auth::approle::Factory, "machine login with RoleID and SecretID"},
      {"github", Kind::kAuth, auth::github::Factory, "members of a GitHub organization"},
      {"kubernetes", Kind::kAuth, auth::kubernetes::Factory, "Kubernetes service accounts"},
  };
  return kBackends;
}

void AddBackends(core::CoreOptions& opts, bool with_examples) {
  for (const auto& b : Backends()) {
    if (b.example && !with_examples) continue;
    (b.kind == Kind::kAuth ? opts.auth_factories : opts.factories)[std::string(b.type)] = b.factory;
  }
}

const std::map<std::string, StorageFactory, std::less<>>& StorageBackends() {
  static const std::map<std::string, StorageFactory, std::less<>> kStorage = {
      {"sqlite",
       [](const std::map<std::string, std::string>& o)
           -> absl::StatusOr<std::unique_ptr<storage::Storage>> {
         auto it = o.find("path");
         if (it == o.end() || it->second.empty())
           return absl::InvalidArgumentError("storage \"sqlite\" needs a path");
         const std::string& path = it->second;
         auto parent = std::filesystem::path(path).parent_path();
         std::error_code ec;
         if (!parent.empty() && !std::filesystem::exists(parent)) {
           std::filesystem::create_directories(parent, ec);
           std::filesystem::permissions(parent, std::filesystem::perms::owner_all, ec);
         }
         ASSIGN_OR_RETURN(auto s, storage::SqliteStorage::Open(path));
         return std::unique_ptr<storage::Storage>(std::move(s));
       }},
      {"etcd",
       [](const std::map<std::string, std::string>& o)
           -> absl::StatusOr<std::unique_ptr<storage::Storage>> {
         ASSIGN_OR_RETURN(etcd::EtcdOptions opts, etcd::ParseEtcdOptions(o));
         ASSIGN_OR_RETURN(auto s, etcd::EtcdStorage::Open(std::move(opts)));
         return std::unique_ptr<storage::Storage>(std::move(s));
       }},
      {"inmem",
       [](const std::map<std::string, std::string>&)
           -> absl::StatusOr<std::unique_ptr<storage::Storage>> {
         return std::unique_ptr<storage::Storage>(std::make_unique<storage::MemoryStorage>());
       }},
  };
  return kStorage;
}

absl::StatusOr<std::unique_ptr<storage::Storage>> OpenStorage(
    std::string_view type, const std::map<std::string, std::string>& options) {
  const auto& all = StorageBackends();
  auto it = all.find(type);
  if (it == all.end()) {
    std::string known;
    for (const auto& [name, _] : all) known += (known.empty() ? "" : ", ") + name;
    return absl::InvalidArgumentError(
        Cat("unknown storage type \"", type, "\"; available: ", known));
  }
  return it->second(options);
}

}  // namespace coffer::registry
