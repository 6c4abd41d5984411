// Leases (Vault's expiration manager) for secrets an engine grants with Response::secret, and
// sys/leases/{lookup,renew,revoke,revoke-prefix,revoke-force,tidy}.
//
// A lease id is the request path plus a random suffix ("pki/issue/web/6Xh..."). Storage:
//   sys/expire/id/<lease id>                       the lease (JSON; listing it by folder is what
//                                                  LIST sys/leases/lookup/<prefix> shows)
//   sys/expire/at/<unix seconds, 20 digits>/<h>    expiry index, h = hex SHA-256 of the id,
//                                                  value = the id; walked in order by the tidy
// Both keys are written in one batch. Expired leases are revoked by the core's tidy loop (every
// tidy_interval, 1 s by default), also after a restart: the index is in the barrier.
#include <set>

#include "absl/time/time.h"
#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "util/duration.h"
#include "util/encoding.h"
#include "util/human_time.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::core {
namespace json = boost::json;

namespace {

constexpr std::string_view kLeaseById = "sys/expire/id/";
constexpr std::string_view kLeaseByTime = "sys/expire/at/";
// sys/expire/token/<token hash>/<hex SHA-256 of the lease id> = the lease id: the leases a token
// obtained, revoked with it (Vault: revoking a token revokes its leases).
constexpr std::string_view kLeaseByToken = "sys/expire/token/";

std::string TimeKey(int64_t at, std::string_view lease_id) {
  std::string stamp = std::to_string(at < 0 ? 0 : at);
  stamp.insert(0, 20 - std::min<size_t>(20, stamp.size()), '0');
  return Cat(kLeaseByTime, stamp, "/", HexEncode(crypto::Sha256(lease_id)));
}

absl::Status ValidLeaseId(std::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("lease_id is required");
  if (id.size() > 2048) return absl::InvalidArgumentError("lease_id is too long");
  for (char c : id)
    if (static_cast<unsigned char>(c) < 0x20)
      return absl::InvalidArgumentError("lease_id must not contain control characters");
  return absl::OkStatus();
}

std::string TokenKey(std::string_view token_hash, std::string_view lease_id) {
  return Cat(kLeaseByToken, token_hash, "/", HexEncode(crypto::Sha256(lease_id)));
}

struct Lease {
  std::string id, mount_uuid, path, token_hash;
  json::object internal;
  int64_t issue_time = 0, expire_time = 0, last_renewal = 0;
  bool renewable = false;

  json::object ToStorage() const {
    return json::object{{"lease_id", id},
                        {"mount_uuid", mount_uuid},
                        {"path", path},
                        {"internal", internal},
                        {"issue_time", issue_time},
                        {"expire_time", expire_time},
                        {"last_renewal", last_renewal},
                        {"renewable", renewable},
                        {"token_hash", token_hash}};
  }
  static absl::StatusOr<Lease> FromStorage(std::string_view raw) {
    boost::system::error_code ec;
    auto v = json::parse(raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("lease record is corrupt");
    const auto& o = v.as_object();
    Lease l;
    try {
      l.id = std::string(o.at("lease_id").as_string());
      l.mount_uuid = std::string(o.at("mount_uuid").as_string());
      l.path = std::string(o.at("path").as_string());
      l.internal = o.at("internal").as_object();
      l.issue_time = o.at("issue_time").to_number<int64_t>();
      l.expire_time = o.at("expire_time").to_number<int64_t>();
      l.last_renewal = o.at("last_renewal").to_number<int64_t>();
      l.renewable = o.at("renewable").as_bool();
      if (const auto* t = o.if_contains("token_hash"); t && t->is_string())
        l.token_hash = std::string(t->as_string());
    } catch (const std::exception& ex) {
      return absl::DataLossError(Cat("lease record is corrupt: ", ex.what()));
    }
    return l;
  }
};

absl::StatusOr<std::optional<Lease>> LoadLease(storage::Storage* s, std::string_view id) {
  ASSIGN_OR_RETURN(auto raw, s->Get(Cat(kLeaseById, id)));
  if (!raw) return std::optional<Lease>();
  ASSIGN_OR_RETURN(auto l, Lease::FromStorage(*raw));
  return std::optional<Lease>(std::move(l));
}

// Every lease id under `prefix` (a folder of sys/expire/id/, ending in '/'), depth first.
absl::Status WalkLeases(storage::Storage* s, const std::string& prefix,
                        std::vector<std::string>* out) {
  std::string after;
  for (;;) {
    ASSIGN_OR_RETURN(auto names, s->List(Cat(kLeaseById, prefix), after, 256));
    if (names.empty()) return absl::OkStatus();
    for (const auto& n : names) {
      if (!n.empty() && n.back() == '/')
        RETURN_IF_ERROR(WalkLeases(s, prefix + n, out));
      else
        out->push_back(prefix + n);
    }
    after = names.back();
  }
}

}  // namespace

absl::Status Core::RegisterLease(const Request& req, const MountEntry& mount, std::string_view rest,
                                 Response& resp) {
  SecretLease secret = std::move(*resp.secret);
  resp.secret.reset();
  int64_t ttl = secret.ttl > 0 ? secret.ttl : req.mount_default_ttl;
  if (req.mount_max_ttl > 0) ttl = std::min(ttl, req.mount_max_ttl);
  ASSIGN_OR_RETURN(std::string suffix, crypto::RandomToken(""));
  Lease l;
  l.id = Cat(req.path, "/", suffix);
  l.mount_uuid = mount.uuid;
  l.path = std::string(rest);
  l.internal = std::move(secret.internal);
  l.issue_time = opts_.clock->NowUnix();
  l.expire_time = l.issue_time + ttl;
  l.renewable = secret.renewable;
  if (req.token) l.token_hash = req.token->id_hash;
  std::vector<storage::WriteOp> ops{
      {storage::WriteOp::Kind::kPut, Cat(kLeaseById, l.id), json::serialize(l.ToStorage())},
      {storage::WriteOp::Kind::kPut, TimeKey(l.expire_time, l.id), l.id}};
  if (!l.token_hash.empty())
    ops.push_back({storage::WriteOp::Kind::kPut, TokenKey(l.token_hash, l.id), l.id});
  RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  resp.lease_id = l.id;
  resp.lease_duration = ttl;
  resp.renewable = l.renewable;
  return absl::OkStatus();
}

absl::Status Core::RevokeLeaseById(std::string_view id, bool force) {
  ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
  if (!lease) return absl::OkStatus();  // revoked already: Vault answers 204 as well
  // Run on the mount like a request: a mount being moved, unmounted or re-created is waited
  // for, and a re-created or moved one is looked up again by its uuid. No mount left with that
  // uuid: nothing to undo (its data is gone).
  absl::Status st;
  for (;;) {
    std::shared_ptr<Mount> mount;
    {
      ReaderMutexLock l(&mounts_mu_);
      for (const auto& [path, m] : mounts_)
        if (m->entry.uuid == lease->mount_uuid && m->backend) mount = m;
    }
    if (!mount) break;
    ReaderMutexLock use(&mount->gate->mu);
    if (mount->gate->retired) continue;
    Request req;
    req.op = Operation::kDelete;
    req.path = lease->path;
    req.mount_point = mount->entry.path;
    req.mount_type = mount->entry.type;
    req.mount_default_ttl = EffectiveDefaultTtl(mount->entry);
    req.mount_max_ttl = EffectiveMaxTtl(mount->entry);
    req.storage = mount->view.get();
    st = mount->backend->RevokeLease(req, lease->internal);
    break;
  }
  {
    if (!st.ok() && !force)
      return absl::Status(st.code(), Cat("failed to revoke lease \"", id, "\": ", Msg(st)));
    if (!st.ok())
      log::Warn("forced lease revocation ignored the engine's error",
                {{"lease_id", std::string(id)}, {"error", Msg(st)}});
  }
  std::vector<storage::WriteOp> ops{
      {storage::WriteOp::Kind::kDelete, Cat(kLeaseById, id), ""},
      {storage::WriteOp::Kind::kDelete, TimeKey(lease->expire_time, id), ""}};
  if (!lease->token_hash.empty())
    ops.push_back({storage::WriteOp::Kind::kDelete, TokenKey(lease->token_hash, id), ""});
  return barrier_->Write(std::move(ops));
}

absl::StatusOr<int> Core::RevokeLeasesOfRevokedTokens(int max) {
  int revoked = 0;
  ASSIGN_OR_RETURN(auto hashes, barrier_->List(kRevokedTokenLeasesPrefix, "", 256));
  for (const auto& h : hashes) {
    bool all = true;
    for (;;) {
      ASSIGN_OR_RETURN(auto keys, barrier_->List(Cat(kLeaseByToken, h, "/"), "", 256));
      if (keys.empty() || revoked >= max) break;
      bool progress = false;
      for (const auto& k : keys) {
        const std::string key = Cat(kLeaseByToken, h, "/", k);
        ASSIGN_OR_RETURN(auto id, barrier_->Get(key));
        if (!id) continue;
        auto st = RevokeLeaseById(*id, false);
        if (!st.ok()) {
          // Kept with its marker, and tried again at the next tidy.
          log::Warn("lease of a revoked token not revoked",
                    {{"lease_id", *id}, {"error", Msg(st)}});
          all = false;
          continue;
        }
        RETURN_IF_ERROR(barrier_->Delete(key));  // gone already unless the lease was missing
        progress = true;
        ++revoked;
      }
      if (!progress) break;
    }
    if (all && revoked < max) RETURN_IF_ERROR(barrier_->Delete(Cat(kRevokedTokenLeasesPrefix, h)));
  }
  return revoked;
}

absl::StatusOr<int> Core::RevokeExpiredLeases(int max) {
  const int64_t now = opts_.clock->NowUnix();
  int revoked = 0;
  std::string after;
  while (revoked < max) {
    ASSIGN_OR_RETURN(auto stamps, barrier_->List(kLeaseByTime, after, 64));
    if (stamps.empty()) break;
    for (const auto& dir : stamps) {
      if (std::strtoll(dir.c_str(), nullptr, 10) > now) return revoked;
      ASSIGN_OR_RETURN(auto keys, barrier_->List(Cat(kLeaseByTime, dir), "", 256));
      for (const auto& k : keys) {
        const std::string key = Cat(kLeaseByTime, dir, k);
        ASSIGN_OR_RETURN(auto id, barrier_->Get(key));
        if (!id) continue;
        ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), *id));
        if (lease && lease->expire_time <= now) {
          auto st = RevokeLeaseById(*id, false);
          if (!st.ok()) {
            // Kept, and tried again at the next tidy (Vault retries failed revocations too).
            log::Warn("expired lease not revoked", {{"lease_id", *id}, {"error", Msg(st)}});
            continue;
          }
          ++revoked;
        }
        // Renewed meanwhile (a newer index key exists) or gone: only this stale key goes.
        RETURN_IF_ERROR(barrier_->Delete(key));
      }
    }
    after = stamps.back();
  }
  return revoked;
}

absl::Status Core::ForgetLeasesUnder(std::string_view prefix) {
  std::vector<std::string> ids;
  RETURN_IF_ERROR(WalkLeases(barrier_.get(), std::string(prefix), &ids));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
    if (!lease) continue;
    std::vector<storage::WriteOp> ops{
        {storage::WriteOp::Kind::kDelete, Cat(kLeaseById, id), ""},
        {storage::WriteOp::Kind::kDelete, TimeKey(lease->expire_time, id), ""}};
    if (!lease->token_hash.empty())
      ops.push_back({storage::WriteOp::Kind::kDelete, TokenKey(lease->token_hash, id), ""});
    RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  }
  return absl::OkStatus();
}

absl::Status Core::MoveLeases(std::string_view from, std::string_view to) {
  std::vector<std::string> ids;
  RETURN_IF_ERROR(WalkLeases(barrier_.get(), std::string(from), &ids));
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
    if (!lease) continue;
    Lease moved = *lease;
    moved.id = Cat(to, std::string_view(id).substr(from.size()));
    std::vector<storage::WriteOp> ops{
        {storage::WriteOp::Kind::kDelete, Cat(kLeaseById, id), ""},
        {storage::WriteOp::Kind::kDelete, TimeKey(lease->expire_time, id), ""},
        {storage::WriteOp::Kind::kPut, Cat(kLeaseById, moved.id),
         json::serialize(moved.ToStorage())},
        {storage::WriteOp::Kind::kPut, TimeKey(moved.expire_time, moved.id), moved.id}};
    if (!lease->token_hash.empty()) {
      ops.push_back({storage::WriteOp::Kind::kDelete, TokenKey(lease->token_hash, id), ""});
      ops.push_back({storage::WriteOp::Kind::kPut, TokenKey(moved.token_hash, moved.id), moved.id});
    }
    RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Response> Core::HandleLeases(Request& req, std::string_view what,
                                            std::string_view arg) {
  // The lease id (or prefix) comes from the URL (sys/leases/revoke/<id>) or the body.
  auto id_from = [&]() -> absl::StatusOr<std::string> {
    if (!arg.empty()) return std::string(arg);
    ASSIGN_OR_RETURN(auto id, JsonString(req.data, "lease_id"));
    return id.value_or("");
  };
  const int64_t now = opts_.clock->NowUnix();
  if (what == "lookup" && req.op == Operation::kList) {
    std::string prefix(arg);
    if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
    ASSIGN_OR_RETURN(auto keys, barrier_->List(Cat(kLeaseById, prefix)));
    if (keys.empty()) return absl::NotFoundError("");
    json::array arr;
    for (auto& k : keys) arr.emplace_back(k);
    return Response::Data(json::object{{"keys", std::move(arr)}});
  }
  if (what == "lookup") {
    ASSIGN_OR_RETURN(std::string id, id_from());
    RETURN_IF_ERROR(ValidLeaseId(id));
    ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
    if (!lease) return absl::InvalidArgumentError("invalid lease");
    return Response::Data(json::object{
        {"id", lease->id},
        {"issue_time", Rfc3339Utc(lease->issue_time)},
        {"expire_time", Rfc3339Utc(lease->expire_time)},
        {"last_renewal",
         lease->last_renewal ? json::value(Rfc3339Utc(lease->last_renewal)) : json::value(nullptr)},
        {"renewable", lease->renewable},
        {"ttl", std::max<int64_t>(0, lease->expire_time - now)}});
  }
  if (what == "renew") {
    ASSIGN_OR_RETURN(std::string id, id_from());
    RETURN_IF_ERROR(ValidLeaseId(id));
    ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
    if (!lease || lease->expire_time <= now)
      return absl::InvalidArgumentError("lease not found or lease is not renewable");
    if (!lease->renewable) return absl::InvalidArgumentError("lease is not renewable");
    int64_t increment = 0;
    if (const auto* inc = req.data.if_contains("increment"); inc && !inc->is_null()) {
      auto secs = ParseDurationSeconds(*inc);
      if (!secs.ok()) return absl::InvalidArgumentError(Cat("increment: ", Msg(secs.status())));
      increment = *secs;
    }
    // Counted from now, capped by the mount's max TTL from the lease's issue.
    std::shared_ptr<Mount> mount;
    {
      ReaderMutexLock l(&mounts_mu_);
      for (const auto& [path, m] : mounts_)
        if (m->entry.uuid == lease->mount_uuid) mount = m;
    }
    if (!mount) return absl::InvalidArgumentError("the lease's mount is gone");
    if (increment <= 0) increment = EffectiveDefaultTtl(mount->entry);
    const int64_t cap = lease->issue_time + EffectiveMaxTtl(mount->entry);
    const int64_t old_expiry = lease->expire_time;
    lease->expire_time = std::min(now + increment, cap);
    lease->last_renewal = now;
    RETURN_IF_ERROR(barrier_->Write(
        {{storage::WriteOp::Kind::kPut, Cat(kLeaseById, id), json::serialize(lease->ToStorage())},
         {storage::WriteOp::Kind::kDelete, TimeKey(old_expiry, id), ""},
         {storage::WriteOp::Kind::kPut, TimeKey(lease->expire_time, id), id}}));
    Response r;
    r.lease_id = id;
    r.renewable = true;
    r.lease_duration = lease->expire_time - now;
    r.data = json::object{};
    if (lease->expire_time == cap && now + increment > cap)
      r.warnings.emplace_back("TTL of the lease was capped by the mount's max TTL");
    return r;
  }
  if (what == "revoke") {
    ASSIGN_OR_RETURN(std::string id, id_from());
    RETURN_IF_ERROR(ValidLeaseId(id));
    RETURN_IF_ERROR(RevokeLeaseById(id, false));
    return Response::Empty();
  }
  if (what == "revoke-prefix" || what == "revoke-force") {
    // The prefix is the URL's (hvac sends it in the body as well; the body's is not read: the
    // sudo rule is on the URL).
    std::string prefix(arg);
    if (prefix.empty())
      return absl::InvalidArgumentError(
          Cat("a prefix is required in the path: sys/leases/", what, "/<prefix>"));
    RETURN_IF_ERROR(ValidLeaseId(prefix));
    const bool force = what == "revoke-force";
    // The prefix may name one lease exactly, or a folder of them.
    std::vector<std::string> ids;
    if (prefix.back() != '/') {
      ASSIGN_OR_RETURN(auto exact, LoadLease(barrier_.get(), prefix));
      if (exact) ids.push_back(prefix);
      prefix.push_back('/');
    }
    RETURN_IF_ERROR(WalkLeases(barrier_.get(), prefix, &ids));
    for (const auto& id : ids) RETURN_IF_ERROR(RevokeLeaseById(id, force));
    // Tokens are leases in Vault ("auth/approle/login/<id>"): the same prefix reaches the tokens
    // issued under it, with their children. Tokens that never expire hold no lease there and
    // are kept (a root token is never revoked this way).
    if (StartsWith(prefix, "auth/"))
      RETURN_IF_ERROR(tokens_->RevokeUnderPath(prefix, /*expiring_only=*/true).status());
    return Response::Empty();
  }
  if (what == "tidy") {
    // Index keys whose lease is gone, and leases whose mount is gone.
    std::vector<std::string> ids;
    RETURN_IF_ERROR(WalkLeases(barrier_.get(), "", &ids));
    std::set<std::string> uuids;
    {
      ReaderMutexLock l(&mounts_mu_);
      for (const auto& [path, m] : mounts_) uuids.insert(m->entry.uuid);
    }
    int removed = 0;
    for (const auto& id : ids) {
      ASSIGN_OR_RETURN(auto lease, LoadLease(barrier_.get(), id));
      if (lease && !uuids.contains(lease->mount_uuid)) {
        RETURN_IF_ERROR(RevokeLeaseById(id, true));
        ++removed;
      }
    }
    // Tokens issued by an auth method that is no longer mounted: disabling one revokes its
    // tokens, but a disable that failed partway, or one made by a Coffer before that rule, left
    // them valid until their TTL (and renewable again if a method came back at that path). The
    // same goes for a method moved by a Coffer that did not move its tokens (Vault revokes a
    // moved method's tokens). And tokens marked as being revoked (num_uses -1) whose revocation
    // failed partway are finished here. Under the table lock: a move in progress has moved its
    // tokens before this looks.
    int orphaned = 0;
    {
      MutexLock table(&table_change_mu_);
      ASSIGN_OR_RETURN(orphaned, tokens_->RevokeMatching([&](const TokenEntry& e) {
        std::string rest;
        return e.num_uses < 0 || (StartsWith(e.path, "auth/") && Route(e.path, &rest) == nullptr);
      }));
    }
    Response r;
    r.http_status = 202;
    r.warnings.emplace_back(
        Cat("tidy removed ", removed, " leases of mounts that no longer exist"));
    if (orphaned > 0)
      r.warnings.emplace_back(
          Cat("tidy revoked ", orphaned,
              " tokens of auth methods that are no longer mounted or left half-revoked"));
    return r;
  }
  return absl::NotFoundError(Cat("no handler for route \"sys/leases/", what, "\""));
}

}  // namespace coffer::core
