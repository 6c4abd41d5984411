// The mount table: sys/mounts list, enable, disable, read, tune; persistence and routing.
#include <cctype>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
namespace {

constexpr std::string_view kReserved[] = {"sys/", "auth/", "cubbyhole/", "identity/"};

// "/a/b/" -> "a/b/"; empty or invalid -> error naming the rule.
absl::StatusOr<std::string> NormalizeMountPath(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  if (p.empty()) return absl::InvalidArgumentError("mount path must not be empty");
  if (p.size() > 256) return absl::InvalidArgumentError("mount path is longer than 256 characters");
  for (char c : p)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '/'))
      return absl::InvalidArgumentError(
          Cat("mount path \"", p, "\" may only hold letters, digits, '-', '_', '.' and '/'"));
  if (p.find("//") != std::string_view::npos || p == "." || p == ".." ||
      p.find("../") != std::string_view::npos || p.find("/..") != std::string_view::npos ||
      p.substr(0, 2) == "./")
    return absl::InvalidArgumentError(
        Cat("mount path \"", p, "\" has an empty or relative segment"));
  return std::string(p) + "/";
}

int64_t TtlField(const json::object& cfg, std::string_view key, absl::Status* err) {
  const auto* v = cfg.if_contains(key);
  if (!v || v->is_null()) return -1;
  if (v->is_string() && (v->as_string() == "system" || v->as_string().empty())) return 0;
  auto d = ParseDurationSeconds(*v);
  if (!d.ok()) {
    *err = absl::InvalidArgumentError(Cat(key, ": ", Msg(d.status())));
    return -1;
  }
  return *d;
}

}  // namespace

json::object MountEntry::ToJson() const {
  return json::object{{"type", type},
                      {"description", description},
                      {"accessor", accessor},
                      {"uuid", uuid},
                      {"config", json::object{{"default_lease_ttl", default_lease_ttl},
                                              {"max_lease_ttl", max_lease_ttl},
                                              {"force_no_cache", false}}},
                      {"options", options.empty() ? json::value(nullptr) : json::value(options)},
                      {"local", local},
                      {"seal_wrap", seal_wrap},
                      {"external_entropy_access", false},
                      {"plugin_version", ""},
                      {"running_plugin_version", ""},
                      {"running_sha256", ""}};
}

json::object MountEntry::ToStorage() const {
  return json::object{{"path", path},
                      {"type", type},
                      {"description", description},
                      {"uuid", uuid},
                      {"accessor", accessor},
                      {"default_lease_ttl", default_lease_ttl},
                      {"max_lease_ttl", max_lease_ttl},
                      {"options", options},
                      {"local", local},
                      {"seal_wrap", seal_wrap}};
}

absl::StatusOr<MountEntry> MountEntry::FromStorage(const json::object& o) {
  MountEntry e;
  try {
    e.path = std::string(o.at("path").as_string());
    e.type = std::string(o.at("type").as_string());
    e.description = std::string(o.at("description").as_string());
    e.uuid = std::string(o.at("uuid").as_string());
    e.accessor = std::string(o.at("accessor").as_string());
    e.default_lease_ttl = o.at("default_lease_ttl").to_number<int64_t>();
    e.max_lease_ttl = o.at("max_lease_ttl").to_number<int64_t>();
    e.options = o.at("options").as_object();
    e.local = o.at("local").as_bool();
    e.seal_wrap = o.at("seal_wrap").as_bool();
  } catch (const std::exception& ex) {
    return absl::DataLossError(Cat("mount table entry is corrupt: ", ex.what()));
  }
  return e;
}

int64_t Core::EffectiveDefaultTtl(const MountEntry& e) const {
  // The default never exceeds the mount's effective max (a max tuned below the system default
  // caps it, as Vault does).
  return std::min(e.default_lease_ttl > 0 ? e.default_lease_ttl : opts_.default_lease_ttl,
                  EffectiveMaxTtl(e));
}
int64_t Core::EffectiveMaxTtl(const MountEntry& e) const {
  return e.max_lease_ttl > 0 ? e.max_lease_ttl : opts_.max_lease_ttl;
}

absl::StatusOr<std::shared_ptr<Core::Mount>> Core::Instantiate(MountEntry entry) {
  auto m = std::make_shared<Mount>();
  if (entry.type != "system") {
    const bool is_auth = entry.path.substr(0, 5) == "auth/";
    const auto& factories = is_auth ? opts_.auth_factories : opts_.factories;
    auto f = factories.find(entry.type);
    if (f == factories.end()) {
      std::string known;
      for (const auto& [name, _] : factories)
        if (name != "token") known += (known.empty() ? "" : ", ") + name;
      return absl::InvalidArgumentError(Cat("unknown ", is_auth ? "auth method" : "secrets engine",
                                            " type \"", entry.type, "\"; available: ", known));
    }
    m->view = std::make_shared<barrier::PrefixView>(
        barrier_.get(), (is_auth ? "auth/" : "logical/") + entry.uuid + "/");
    BackendConfig cfg;
    cfg.entry = entry;
    cfg.storage = m->view.get();
    cfg.clock = opts_.clock;
    cfg.system = this;
    ASSIGN_OR_RETURN(m->backend, f->second(cfg));
    RETURN_IF_ERROR(m->backend->Initialize());
  }
  m->entry = std::move(entry);
  return m;
}

absl::Status Core::LoadMounts() {
  ASSIGN_OR_RETURN(auto raw, barrier_->Get("core/mounts"));
  if (!raw) return absl::DataLossError("mount table is missing");
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object() || !v.as_object().contains("entries") ||
      !v.as_object()["entries"].is_array())
    return absl::DataLossError("mount table is corrupt");
  std::map<std::string, std::shared_ptr<Mount>, std::less<>> table;
  for (const auto& e : v.as_object()["entries"].as_array()) {
    if (!e.is_object()) return absl::DataLossError("mount table is corrupt");
    ASSIGN_OR_RETURN(auto entry, MountEntry::FromStorage(e.as_object()));
    ASSIGN_OR_RETURN(auto m, Instantiate(std::move(entry)));
    table.emplace(m->entry.path, std::move(m));
  }
  MutexLock l(&mounts_mu_);
  mounts_ = std::move(table);
  return absl::OkStatus();
}

absl::Status Core::PersistMountsLocked() {
  json::array entries;
  for (const auto& [path, m] : mounts_) entries.push_back(m->entry.ToStorage());
  return barrier_->Put("core/mounts", json::serialize(json::object{{"entries", entries}}));
}

std::shared_ptr<Core::Mount> Core::Route(std::string_view path, std::string* rest) {
  ReaderMutexLock l(&mounts_mu_);
  // The path itself as a mount ("secret" -> "secret/"), then every '/'-boundary prefix,
  // longest first.
  std::string with_slash = std::string(path) + "/";
  if (auto it = mounts_.find(with_slash); it != mounts_.end() && it->second->backend) {
    rest->clear();
    return it->second;
  }
  for (size_t pos = path.rfind('/'); pos != std::string_view::npos;
       pos = pos == 0 ? std::string_view::npos : path.rfind('/', pos - 1)) {
    auto it = mounts_.find(path.substr(0, pos + 1));
    if (it != mounts_.end() && it->second->backend) {
      *rest = std::string(path.substr(pos + 1));
      return it->second;
    }
    if (pos == 0) break;
  }
  return nullptr;
}

absl::Status Core::EnableMount(MountEntry entry) {
  ReaderMutexLock l(&state_mu_);
  if (sealed_) return absl::UnavailableError("Vault is sealed");
  return EnableMountLocked(std::move(entry));
}

absl::Status Core::EnableMountLocked(MountEntry entry, bool auth) {
  ASSIGN_OR_RETURN(entry.path, NormalizeMountPath(entry.path));
  std::string_view check = entry.path;
  if (auth) {
    check.remove_prefix(5);  // "auth/"
    if (check.empty()) return absl::InvalidArgumentError("auth method path must not be empty");
    if (entry.type == "token")
      return absl::InvalidArgumentError(
          "the token auth method is built in and cannot be enabled again");
  } else {
    for (auto r : kReserved)
      if (check.substr(0, r.size()) == r)
        return absl::InvalidArgumentError(
            Cat("cannot mount at \"", entry.path, "\": \"", r, "\" is reserved"));
  }
  if (entry.type.empty())
    return absl::InvalidArgumentError("type is required (for example \"kv\")");
  if (entry.default_lease_ttl > 0 && entry.max_lease_ttl > 0 &&
      entry.default_lease_ttl > entry.max_lease_ttl)
    return absl::InvalidArgumentError("default_lease_ttl cannot be greater than max_lease_ttl");
  entry.uuid = crypto::RandomUuid();
  entry.accessor = entry.type + "_" + entry.uuid.substr(0, 8);
  ASSIGN_OR_RETURN(auto m, Instantiate(std::move(entry)));
  MutexLock l(&mounts_mu_);
  for (const auto& [path, existing] : mounts_) {
    if (m->entry.path.substr(0, path.size()) == path ||
        path.substr(0, m->entry.path.size()) == m->entry.path)
      return absl::InvalidArgumentError(Cat("path is already in use at ", path));
  }
  const std::string path = m->entry.path;
  mounts_.emplace(path, m);
  auto st = PersistMountsLocked();
  if (!st.ok()) {
    mounts_.erase(path);
    return st;
  }
  log::Info("secrets engine enabled", {{"path", path}, {"type", m->entry.type}});
  return absl::OkStatus();
}

absl::Status Core::DisableMount(std::string_view raw_path) {
  ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
  std::shared_ptr<Mount> m;
  {
    MutexLock l(&mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end())
      return absl::OkStatus();  // Vault: disabling a missing mount is a no-op
    if (!it->second->backend || it->second->entry.type == "token")
      return absl::InvalidArgumentError(Cat("cannot disable \"", path, "\": it is built in"));
    m = it->second;
    mounts_.erase(it);
    auto st = PersistMountsLocked();
    if (!st.ok()) {
      mounts_.emplace(path, m);
      return st;
    }
  }
  // The table no longer routes to it; requests in flight keep their reference.
  m->backend->Cleanup();
  // Now remove its data.
  RETURN_IF_ERROR(barrier_->DeletePrefix((path.substr(0, 5) == "auth/" ? "auth/" : "logical/") +
                                         m->entry.uuid + "/"));
  log::Info("secrets engine disabled", {{"path", path}});
  return absl::OkStatus();
}

absl::StatusOr<Response> Core::MountsList() {
  json::object d;
  ReaderMutexLock l(&mounts_mu_);
  for (const auto& [path, m] : mounts_)
    if (path.substr(0, 5) != "auth/") d[path] = m->entry.ToJson();
  auto r = Response::Data(std::move(d));
  r.duplicate_data_at_top = true;
  return r;
}

absl::StatusOr<Response> Core::MountRead(std::string_view raw_path) {
  ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
  ReaderMutexLock l(&mounts_mu_);
  auto it = mounts_.find(path);
  if (it == mounts_.end())
    return absl::NotFoundError(Cat("no secrets engine is mounted at \"", path, "\""));
  auto r = Response::Data(it->second->entry.ToJson());
  r.duplicate_data_at_top = true;
  return r;
}

absl::StatusOr<Response> Core::MountEnableRequest(Request& req, std::string_view path, bool auth) {
  MountEntry e;
  e.path = std::string(path);
  ASSIGN_OR_RETURN(auto type, JsonString(req.data, "type"));
  ASSIGN_OR_RETURN(auto desc, JsonString(req.data, "description"));
  ASSIGN_OR_RETURN(auto local, JsonBool(req.data, "local"));
  ASSIGN_OR_RETURN(auto seal_wrap, JsonBool(req.data, "seal_wrap"));
  e.type = type.value_or("");
  e.description = desc.value_or("");
  e.local = local.value_or(false);
  e.seal_wrap = seal_wrap.value_or(false);
  if (const auto* cfg = req.data.if_contains("config"); cfg && !cfg->is_null()) {
    if (!cfg->is_object()) return absl::InvalidArgumentError("config must be an object");
    absl::Status err;
    int64_t d = TtlField(cfg->as_object(), "default_lease_ttl", &err);
    int64_t m = TtlField(cfg->as_object(), "max_lease_ttl", &err);
    RETURN_IF_ERROR(err);
    e.default_lease_ttl = std::max<int64_t>(d, 0);
    e.max_lease_ttl = std::max<int64_t>(m, 0);
  }
  if (const auto* opts = req.data.if_contains("options"); opts && !opts->is_null()) {
    if (!opts->is_object())
      return absl::InvalidArgumentError("options must be an object of strings");
    for (const auto& [k, v] : opts->as_object()) {
      if (!v.is_string())
        return absl::InvalidArgumentError(Cat("options.", k, " must be a string"));
      e.options[k] = v;
    }
  }
  RETURN_IF_ERROR(EnableMountLocked(std::move(e), auth));
  return Response::Empty();
}

absl::StatusOr<Response> Core::MountTune(Request& req, std::string_view raw_path) {
  ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
  if (req.op == Operation::kRead) {
    ReaderMutexLock l(&mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end())
      return absl::InvalidArgumentError(Cat("no secrets engine is mounted at \"", path, "\""));
    const auto& e = it->second->entry;
    auto r = Response::Data(json::object{
        {"default_lease_ttl", EffectiveDefaultTtl(e)},
        {"max_lease_ttl", EffectiveMaxTtl(e)},
        {"force_no_cache", false},
        {"description", e.description},
        {"options", e.options.empty() ? json::value(nullptr) : json::value(e.options)}});
    r.duplicate_data_at_top = true;
    return r;
  }
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  absl::Status err;
  int64_t d = TtlField(req.data, "default_lease_ttl", &err);
  int64_t m = TtlField(req.data, "max_lease_ttl", &err);
  RETURN_IF_ERROR(err);
  ASSIGN_OR_RETURN(auto desc, JsonString(req.data, "description"));
  MutexLock l(&mounts_mu_);
  auto it = mounts_.find(path);
  if (it == mounts_.end())
    return absl::InvalidArgumentError(Cat("no secrets engine is mounted at \"", path, "\""));
  MountEntry updated = it->second->entry;
  if (d >= 0) updated.default_lease_ttl = d;
  if (m >= 0) updated.max_lease_ttl = m;
  if (desc) updated.description = *desc;
  if (updated.default_lease_ttl > 0 && updated.default_lease_ttl > EffectiveMaxTtl(updated))
    return absl::InvalidArgumentError(Cat("default_lease_ttl (", updated.default_lease_ttl,
                                          "s) cannot be greater than max_lease_ttl (",
                                          EffectiveMaxTtl(updated), "s)"));
  MountEntry old = it->second->entry;
  // Mount objects are shared with requests in flight: replace, never mutate in place.
  auto replacement = std::make_shared<Mount>();
  replacement->entry = updated;
  // The backend and its view stay: only the entry's tunables change.
  replacement->view = it->second->view;
  replacement->backend = it->second->backend;
  auto previous = it->second;
  it->second = replacement;
  auto st = PersistMountsLocked();
  if (!st.ok()) {
    it->second = previous;
    return st;
  }
  return Response::Empty();
}

}  // namespace coffer::core
