// The mount table: sys/mounts list, enable, disable, read, tune; persistence and routing.
#include <cctype>
#include <charconv>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"
#include "util/strings.h"

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

// Vault keeps mount options as strings, and clients send numbers and booleans as well
// ({"version": 2}, as hvac does): those are stored in their decimal or "true"/"false" form.
bool ParseInt(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

absl::StatusOr<json::object> NormalizeOptions(const json::value& v) {
  json::object out;
  if (v.is_null()) return out;
  if (!v.is_object())
    return absl::InvalidArgumentError("options must be an object, e.g. {\"version\": \"2\"}");
  for (const auto& [k, val] : v.as_object()) {
    if (val.is_string())
      out[k] = val;
    else if (val.is_int64())
      out[k] = std::to_string(val.as_int64());
    else if (val.is_uint64())
      out[k] = std::to_string(val.as_uint64());
    else if (val.is_double() &&
             val.as_double() == static_cast<double>(static_cast<int64_t>(val.as_double())))
      out[k] = std::to_string(static_cast<int64_t>(val.as_double()));
    else if (val.is_bool())
      out[k] = val.as_bool() ? "true" : "false";
    else if (!val.is_null())
      return absl::InvalidArgumentError(
          Cat("options.", std::string_view(k), " must be a string, a whole number or a boolean"));
  }
  if (const auto* ver = out.if_contains("version")) {
    std::string_view s = ver->as_string();
    int64_t n = 0;
    if (!s.empty() && !ParseInt(s, &n))
      return absl::InvalidArgumentError(
          Cat("options.version must be a whole number, got \"", s, "\""));
    if (n < 0) return absl::InvalidArgumentError("options.version must not be negative");
    if (!s.empty()) out["version"] = std::to_string(n);
  }
  return out;
}

int64_t VersionOption(const json::object& options) {
  const auto* v = options.if_contains("version");
  int64_t n = 0;
  if (v && v->is_string() && ParseInt(v->as_string(), &n)) return n;
  return 0;
}

}  // namespace

MountEntry CubbyholeEntry() {
  MountEntry e;
  e.path = "cubbyhole/";
  e.type = "cubbyhole";
  e.description = "per-token private secret storage";
  e.uuid = crypto::RandomUuid();
  e.accessor = "cubbyhole_" + e.uuid.substr(0, 8);
  e.local = true;
  return e;
}

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
  if (entry.type == "cubbyhole") {
    // Built in: its data lives with the tokens (kCubbyholePrefix) and dies with them.
    m->view = std::make_shared<barrier::PrefixView>(barrier_.get(), std::string(kCubbyholePrefix));
    m->backend = NewCubbyholeBackend();
  } else if (entry.type != "system") {
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
  // Servers initialized before the cubbyhole existed get it at their next unseal.
  const bool add_cubbyhole = !table.contains("cubbyhole/");
  if (add_cubbyhole) {
    ASSIGN_OR_RETURN(auto m, Instantiate(CubbyholeEntry()));
    table.emplace(m->entry.path, std::move(m));
  }
  MutexLock l(&mounts_mu_);
  mounts_ = std::move(table);
  if (add_cubbyhole) return PersistMountsLocked();
  return absl::OkStatus();
}

absl::Status Core::PersistMountsLocked() {
  json::array entries;
  for (const auto& [path, m] : mounts_) entries.push_back(m->entry.ToStorage());
  return barrier_->Put("core/mounts", json::serialize(json::object{{"entries", entries}}));
}

std::shared_ptr<Core::Mount> Core::Route(std::string_view path, std::string* rest) const {
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

Core::MountUse Core::RouteAndEnter(std::string_view path,
                                   std::string* rest) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    std::shared_ptr<Mount> m = Route(path, rest);
    if (!m) return MountUse();
    m->gate->mu.ReaderLock();
    if (!m->gate->retired) return MountUse(std::move(m));
    // Unmounted, moved or re-created while this request waited: the table has changed.
    m->gate->mu.ReaderUnlock();
  }
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
  MutexLock change(&table_change_mu_);
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

absl::Status Core::DisableMount(std::string_view raw_path, bool auth) {
  ASSIGN_OR_RETURN(std::string path, NormalizeMountPath(raw_path));
  if (!auth)
    for (auto r : kReserved)
      if (std::string_view(path).substr(0, r.size()) == r)
        return absl::InvalidArgumentError(
            Cat("cannot disable \"", path, "\" through sys/mounts: \"", r, "\" is reserved",
                r == "auth/" ? " (auth methods are disabled at sys/auth/<path>)" : ""));
  MutexLock change(&table_change_mu_);
  std::shared_ptr<Mount> m;
  {
    MutexLock l(&mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end())
      return absl::OkStatus();  // Vault: disabling a missing mount is a no-op
    if (!it->second->backend || it->second->entry.type == "token" ||
        it->second->entry.type == "cubbyhole")
      return absl::InvalidArgumentError(Cat("cannot disable \"", path, "\": it is built in"));
    m = it->second;
    mounts_.erase(it);
    auto st = PersistMountsLocked();
    if (!st.ok()) {
      mounts_.emplace(path, m);
      return st;
    }
  }
  // The table no longer routes to it: wait for the requests in flight, then no request runs on
  // this instance again (one waiting at the gate routes anew and finds the mount gone).
  {
    MutexLock drain(&m->gate->mu);
    m->gate->retired = true;
  }
  m->backend->Cleanup();
  // The tokens an auth method issued go with it, as in Vault: disabling a method is how an
  // operator cuts off everyone who logged in through it. Its requests have drained, so no login
  // adds one after this walk. The table no longer has the mount, so a failure here cannot be
  // retried by disabling again: the rest of the clean-up still runs, and the error names the
  // call that finishes the job (a login's token always has a TTL, so revoke-prefix takes it).
  absl::Status tokens_revoked;
  if (StartsWith(path, "auth/")) {
    auto revoked = tokens_->RevokeUnderPath(path, /*expiring_only=*/false);
    if (!revoked.ok()) {
      tokens_revoked = absl::Status(revoked.status().code(),
                                    Cat("the auth method at ", path,
                                        " is disabled, but revoking the tokens it issued failed (",
                                        std::string(revoked.status().message()),
                                        "); revoke them with sys/leases/revoke-prefix/", path));
    } else if (*revoked > 0) {
      log::Info("tokens of a disabled auth method revoked",
                {{"path", path}, {"count", std::to_string(*revoked)}});
    }
  }
  if (!tokens_revoked.ok())
    log::Error("tokens of a disabled auth method not revoked", {{"error", Msg(tokens_revoked)}});
  // Its leases go with it (Vault revokes them; the engine's data is deleted next anyway).
  RETURN_IF_ERROR(ForgetLeasesUnder(path));
  // Now remove its data.
  RETURN_IF_ERROR(barrier_->DeletePrefix((path.substr(0, 5) == "auth/" ? "auth/" : "logical/") +
                                         m->entry.uuid + "/"));
  RETURN_IF_ERROR(tokens_revoked);
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
  if (const auto* opts = req.data.if_contains("options")) {
    ASSIGN_OR_RETURN(e.options, NormalizeOptions(*opts));
  }
  // Vault's shorthand for a versioned kv mount.
  if (!auth && e.type == "kv-v2") {
    e.type = "kv";
    e.options["version"] = "2";
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
  std::optional<json::object> new_options;
  if (const auto* o = req.data.if_contains("options"); o && !o->is_null()) {
    ASSIGN_OR_RETURN(new_options, NormalizeOptions(*o));
  }
  MutexLock change(&table_change_mu_);
  std::shared_ptr<Mount> current;
  {
    ReaderMutexLock l(&mounts_mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end())
      return absl::InvalidArgumentError(Cat("no secrets engine is mounted at \"", path, "\""));
    current = it->second;
  }
  MountEntry updated = current->entry;
  if (d >= 0) updated.default_lease_ttl = d;
  if (m >= 0) updated.max_lease_ttl = m;
  if (desc) updated.description = *desc;
  if (updated.default_lease_ttl > 0 && updated.default_lease_ttl > EffectiveMaxTtl(updated))
    return absl::InvalidArgumentError(Cat("default_lease_ttl (", updated.default_lease_ttl,
                                          "s) cannot be greater than max_lease_ttl (",
                                          EffectiveMaxTtl(updated), "s)"));
  Response resp = Response::Empty();
  bool recreate = false;
  if (new_options) {
    // Tuned options are merged into the mount's; a changed option re-creates the backend (a kv
    // mount moving to version 2 converts its data as it starts).
    json::object merged = updated.options;
    for (const auto& [k, v] : *new_options) merged[k] = v;
    const int64_t from = VersionOption(updated.options), to = VersionOption(merged);
    if (new_options->contains("version") && to < from)
      return absl::InvalidArgumentError(
          Cat("cannot downgrade mount \"", path, "\" from version ", from, " to version ", to,
              ": the data has been converted; move it to a new mount instead"));
    if (!current->backend && merged != updated.options)
      return absl::InvalidArgumentError(Cat("the options of \"", path, "\" cannot be changed"));
    recreate = merged != updated.options;
    if (recreate && to != from && updated.type == "kv")
      resp.warnings.emplace_back(Cat("Upgrading mount from version ", std::max<int64_t>(from, 1),
                                     " to version ", to,
                                     ". This mount will be unavailable for a brief period and will "
                                     "resume service shortly."));
    updated.options = std::move(merged);
  }
  if (!recreate) {
    MutexLock l(&mounts_mu_);
    // Mount objects are shared with requests in flight: replace, never mutate in place.
    auto replacement = std::make_shared<Mount>();
    replacement->entry = updated;
    // The backend, its view and its gate stay: only the entry's tunables change.
    replacement->view = current->view;
    replacement->backend = current->backend;
    replacement->gate = current->gate;
    mounts_[path] = replacement;
    auto st = PersistMountsLocked();
    if (!st.ok()) {
      mounts_[path] = current;
      return st;
    }
    return resp;
  }
  // Re-create the backend: no request runs on the old instance from here on.
  MutexLock drain(&current->gate->mu);
  {
    // The new entry is stored first: if the server stops while the new backend converts the
    // data, the next unseal starts the new backend again and it finishes the conversion.
    MutexLock l(&mounts_mu_);
    json::array entries;
    for (const auto& [p, mt] : mounts_)
      entries.push_back(p == path ? updated.ToStorage() : mt->entry.ToStorage());
    RETURN_IF_ERROR(
        barrier_->Put("core/mounts", json::serialize(json::object{{"entries", entries}})));
  }
  // The old instance stops first (its background work, e.g. a PKI tidy, must not overlap the
  // new one's start); no request runs on it again whatever happens next.
  current->gate->retired = true;
  current->backend->Cleanup();
  auto fresh = Instantiate(updated);
  if (!fresh.ok()) {
    // Back to the old entry, on a fresh instance of it.
    auto restored = Instantiate(current->entry);
    MutexLock l(&mounts_mu_);
    if (restored.ok()) mounts_[path] = *restored;
    auto st = PersistMountsLocked();  // the old entry (the table still holds it)
    // Without an instance the path stops routing (404) until the next unseal tries again: the
    // retired instance must not stay in the table, where requests would route to it forever.
    if (!restored.ok()) mounts_.erase(path);
    if (!st.ok() || !restored.ok())
      log::Warn("restoring the mount after a failed tune failed",
                {{"path", path}, {"error", Msg(!st.ok() ? st : restored.status())}});
    return fresh.status();
  }
  {
    MutexLock l(&mounts_mu_);
    mounts_[path] = *fresh;
  }
  log::Info("mount options changed; backend re-created", {{"path", path}});
  return resp;
}

absl::StatusOr<Response> Core::Remount(Request& req) {
  ASSIGN_OR_RETURN(auto from_raw, JsonString(req.data, "from"));
  ASSIGN_OR_RETURN(auto to_raw, JsonString(req.data, "to"));
  if (!from_raw || from_raw->empty() || !to_raw || to_raw->empty())
    return absl::InvalidArgumentError("both \"from\" and \"to\" mount paths are required");
  ASSIGN_OR_RETURN(std::string from, NormalizeMountPath(*from_raw));
  ASSIGN_OR_RETURN(std::string to, NormalizeMountPath(*to_raw));
  const bool from_auth = StartsWith(from, "auth/"), to_auth = StartsWith(to, "auth/");
  if (from_auth != to_auth)
    return absl::InvalidArgumentError(
        "cannot move a mount between auth/ and secrets engines: both paths must start with "
        "\"auth/\" or neither");
  for (auto r : kReserved)
    if (!to_auth && StartsWith(to, r))
      return absl::InvalidArgumentError(
          Cat("cannot mount at \"", to, "\": \"", r, "\" is reserved"));
  MutexLock change(&table_change_mu_);
  std::shared_ptr<Mount> current;
  {
    ReaderMutexLock l(&mounts_mu_);
    auto it = mounts_.find(from);
    if (it == mounts_.end())
      return absl::InvalidArgumentError(Cat("no mount at \"", from, "\" to move"));
    if (!it->second->backend || it->second->entry.type == "token" ||
        it->second->entry.type == "cubbyhole")
      return absl::InvalidArgumentError(Cat("cannot move \"", from, "\": it is built in"));
    current = it->second;
    for (const auto& [p, mt] : mounts_)
      if (p != from && (StartsWith(to, p) || StartsWith(p, to)))
        return absl::InvalidArgumentError(Cat("path is already in use at ", p));
  }
  // The data stays where it is (a mount's storage is named by its uuid): only the path moves.
  // Requests in flight on the old path finish first; those waiting route again.
  MutexLock drain(&current->gate->mu);
  auto moved = std::make_shared<Mount>();
  moved->entry = current->entry;
  moved->entry.path = to;
  moved->view = current->view;
  moved->backend = current->backend;
  const std::string id = crypto::RandomUuid();
  {
    MutexLock l(&mounts_mu_);
    mounts_.erase(from);
    mounts_.emplace(to, moved);
    auto st = PersistMountsLocked();
    if (!st.ok()) {
      mounts_.erase(to);
      mounts_.emplace(from, current);
      return st;
    }
    remounts_[id] = json::object{{"source_mount", from},
                                 {"target_mount", to},
                                 {"status", "success"},
                                 {"status_message", "the mount was moved"}};
  }
  current->gate->retired = true;
  // The leases follow the mount (requests on the old path have drained; new ones already make
  // their leases under the new path).
  auto leases = MoveLeases(from, to);
  if (!leases.ok())
    log::Warn("leases of a moved mount keep their old ids", {{"error", Msg(leases)}});
  // So do the tokens of a moved auth method: their path names the mount whose max TTL caps
  // their renewals. (Vault revokes them instead; Coffer keeps what it moves, as with leases.)
  if (StartsWith(from, "auth/")) {
    auto tokens = tokens_->MovePath(from, to);
    if (!tokens.ok())
      log::Warn("tokens of a moved auth method keep their old path; they cannot be renewed",
                {{"error", Msg(tokens.status())}});
  }
  log::Info("mount moved", {{"from", from}, {"to", to}});
  return Response::Data(json::object{{"migration_id", id}});
}

absl::StatusOr<Response> Core::RemountStatus(std::string_view id) {
  ReaderMutexLock l(&mounts_mu_);
  auto it = remounts_.find(id);
  if (it == remounts_.end())
    return absl::NotFoundError(Cat("no remount with migration id \"", id, "\""));
  return Response::Data(json::object{{"migration_id", id}, {"migration_info", it->second}});
}

}  // namespace coffer::core
