#include "core/token_store.h"

#include <openssl/crypto.h>

#include <deque>
#include <limits>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/encoding.h"
#include "util/human_time.h"
#include "util/status.h"
#include "util/strings.h"

namespace coffer::core {
namespace json = boost::json;
namespace {
constexpr char kIdPrefix[] = "sys/token/id/";
constexpr char kAccessorPrefix[] = "sys/token/accessor/";
constexpr char kParentPrefix[] = "sys/token/parent/";
constexpr char kExpirePrefix[] = "sys/token/expire/";
}  // namespace

bool TokenEntry::IsRoot() const {
  for (const auto& p : policies)
    if (p == "root") return true;
  return false;
}

json::object TokenEntry::ToStorage() const {
  json::array pol, cidrs;
  for (const auto& p : policies) pol.emplace_back(p);
  for (const auto& c : bound_cidrs) cidrs.emplace_back(c);
  json::object m;
  for (const auto& [k, v] : meta) m[k] = v;
  return json::object{{"accessor", accessor},
                      {"policies", pol},
                      {"path", path},
                      {"display_name", display_name},
                      {"meta", m},
                      {"parent", parent_hash},
                      {"role", role},
                      {"creation_time", creation_time},
                      {"creation_ttl", creation_ttl},
                      {"ttl", ttl},
                      {"expire_time", expire_time},
                      {"explicit_max_ttl", explicit_max_ttl},
                      {"period", period},
                      {"num_uses", num_uses},
                      {"renewable", renewable},
                      {"bound_cidrs", cidrs}};
}

absl::StatusOr<TokenEntry> TokenEntry::FromStorage(std::string id_hash, const json::object& o) {
  TokenEntry e;
  e.id_hash = std::move(id_hash);
  try {
    e.accessor = std::string(o.at("accessor").as_string());
    for (const auto& p : o.at("policies").as_array()) e.policies.emplace_back(p.as_string());
    e.path = std::string(o.at("path").as_string());
    e.display_name = std::string(o.at("display_name").as_string());
    for (const auto& [k, v] : o.at("meta").as_object()) e.meta[k] = std::string(v.as_string());
    e.parent_hash = std::string(o.at("parent").as_string());
    e.role = std::string(o.at("role").as_string());
    e.creation_time = o.at("creation_time").to_number<int64_t>();
    e.creation_ttl = o.at("creation_ttl").to_number<int64_t>();
    e.ttl = o.at("ttl").to_number<int64_t>();
    e.expire_time = o.at("expire_time").to_number<int64_t>();
    e.explicit_max_ttl = o.at("explicit_max_ttl").to_number<int64_t>();
    e.period = o.at("period").to_number<int64_t>();
    e.num_uses = o.at("num_uses").to_number<int64_t>();
    e.renewable = o.at("renewable").as_bool();
    for (const auto& c : o.at("bound_cidrs").as_array()) e.bound_cidrs.emplace_back(c.as_string());
  } catch (const std::exception& ex) {
    return absl::DataLossError(Cat("token entry is corrupt: ", ex.what()));
  }
  return e;
}

std::string TokenStore::ExpireKey(int64_t at, std::string_view hash) {
  return Cat(kExpirePrefix, absl::StrFormat("%020d", at), "/", hash);
}

absl::Status TokenStore::Setup() {
  ASSIGN_OR_RETURN(auto salt, barrier_->Get("core/token-salt"));
  if (!salt) {
    ASSIGN_OR_RETURN(auto fresh, crypto::SecretBytes::Random(32));
    RETURN_IF_ERROR(barrier_->Put("core/token-salt", fresh.view()));
    salt = std::string(fresh.view());
  }
  auto key = std::make_unique<crypto::HmacSha256Key>(*salt);
  OPENSSL_cleanse(salt->data(), salt->size());
  MutexLock l(&mu_);
  salt_ = std::move(key);
  cache_.clear();
  ++cache_gen_;
  return absl::OkStatus();
}

void TokenStore::Clear() {
  MutexLock l(&mu_);
  salt_.reset();
  cache_.clear();
  ++cache_gen_;
}

void TokenStore::Invalidate(std::string_view id_hash) {
  MutexLock l(&mu_);
  Uncache(id_hash);
}

void TokenStore::Uncache(std::string_view id_hash) {
  cache_.erase(AbslView(id_hash));
  ++cache_gen_;
}

void TokenStore::Recache(const TokenEntry& e) {
  cache_[e.id_hash] = e;
  ++cache_gen_;
}

absl::StatusOr<std::string> TokenStore::Hash(std::string_view value) {
  ReaderMutexLock l(&mu_);
  if (!salt_) return absl::UnavailableError("Vault is sealed");
  return HexEncode(salt_->Sign(value));
}

absl::Status TokenStore::Persist(const TokenEntry& e, std::vector<storage::WriteOp>* ops) {
  ops->push_back(
      {storage::WriteOp::Kind::kPut, kIdPrefix + e.id_hash, json::serialize(e.ToStorage())});
  return absl::OkStatus();
}

absl::StatusOr<CreatedToken> TokenStore::Create(TokenEntry e) {
  ASSIGN_OR_RETURN(std::string token, crypto::RandomToken("hvs."));
  return Store(std::move(e), std::move(token));
}

absl::StatusOr<CreatedToken> TokenStore::Store(TokenEntry e, std::string token) {
  ASSIGN_OR_RETURN(e.accessor, crypto::RandomToken(""));
  ASSIGN_OR_RETURN(e.id_hash, Hash(token));
  ASSIGN_OR_RETURN(std::string acc_hash, Hash(e.accessor));
  e.creation_time = clock_->NowUnix();
  e.creation_ttl = e.ttl;
  e.expire_time = e.ttl > 0 ? e.creation_time + e.ttl : 0;
  std::vector<storage::WriteOp> ops;
  RETURN_IF_ERROR(Persist(e, &ops));
  ops.push_back({storage::WriteOp::Kind::kPut, kAccessorPrefix + acc_hash,
                 json::serialize(json::object{{"id_hash", e.id_hash}, {"accessor", e.accessor}})});
  if (!e.parent_hash.empty())
    ops.push_back(
        {storage::WriteOp::Kind::kPut, Cat(kParentPrefix, e.parent_hash, "/", e.id_hash), ""});
  if (e.expire_time > 0)
    ops.push_back({storage::WriteOp::Kind::kPut, ExpireKey(e.expire_time, e.id_hash), ""});
  RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  if (!e.parent_hash.empty()) {
    // The parent may have been revoked while this child was being made: Revoke marks a token
    // (num_uses -1) before it lists its children, so a child written after that listing sees the
    // mark (or the parent gone) here and is revoked at once, and one written before it is found
    // by the listing. Read from storage, not the cache.
    ASSIGN_OR_RETURN(auto raw, barrier_->Get(kIdPrefix + e.parent_hash));
    bool parent_live = false;
    if (raw) {
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (!ec && v.is_object()) {
        auto parent = TokenEntry::FromStorage(e.parent_hash, v.as_object());
        // An expired parent is dead too: Revoke does not mark an expired token (it can make
        // no child through a request), so a child racing its tidy is caught here.
        parent_live = parent.ok() && parent->num_uses >= 0 &&
                      !(parent->expire_time > 0 && clock_->NowUnix() >= parent->expire_time);
      }
    }
    if (!parent_live) {
      RETURN_IF_ERROR(Revoke(e.id_hash));
      return absl::PermissionDeniedError("the parent token was revoked while this one was made");
    }
  }
  return CreatedToken{std::move(token), std::move(e)};
}

absl::StatusOr<std::string> TokenStore::CreateRootToken(std::string_view id) {
  TokenEntry e;
  e.policies = {"root"};
  e.path = "auth/token/root";
  e.display_name = "root";
  e.renewable = false;
  if (id.empty()) {
    ASSIGN_OR_RETURN(auto created, Create(std::move(e)));
    return created.token;
  }
  // The token travels in an HTTP header and in shells: visible ASCII only.
  for (char c : id)
    if (c <= ' ' || c > '~')
      return absl::InvalidArgumentError(
          "a root token ID may only hold printable ASCII characters without spaces");
  ASSIGN_OR_RETURN(std::string hash, Hash(id));
  ASSIGN_OR_RETURN(auto existing, Load(hash));
  if (existing) return absl::AlreadyExistsError("a token with this ID exists already");
  ASSIGN_OR_RETURN(auto created, Store(std::move(e), std::string(id)));
  return created.token;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Load(std::string_view id_hash) {
  std::optional<TokenEntry> found;
  uint64_t gen;
  {
    ReaderMutexLock l(&mu_);
    auto it = cache_.find(AbslView(id_hash));
    if (it != cache_.end()) found = it->second;
    gen = cache_gen_;
  }
  if (!found) {
    ASSIGN_OR_RETURN(auto raw, barrier_->Get(kIdPrefix + std::string(id_hash)));
    if (!raw) return std::optional<TokenEntry>();
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (ec || !v.is_object()) return absl::DataLossError("token entry is corrupt");
    ASSIGN_OR_RETURN(TokenEntry e, TokenEntry::FromStorage(std::string(id_hash), v.as_object()));
    MutexLock l(&mu_);
    // A revoke, renewal or use that finished while we read storage has moved cache_gen_: what
    // we read may be older than it, so it is returned but not cached.
    if (gen == cache_gen_) cache_.try_emplace(e.id_hash, e);
    found = std::move(e);
  }
  return found;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::LookupByHash(std::string_view id_hash) {
  ASSIGN_OR_RETURN(auto found, Load(id_hash));
  if (!found) return found;
  // Refused at once when expired; Tidy() removes it.
  if (found->expire_time > 0 && clock_->NowUnix() >= found->expire_time)
    return std::optional<TokenEntry>();
  if (found->num_uses < 0) return std::optional<TokenEntry>();  // used up, revocation under way
  return found;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Lookup(std::string_view token) {
  if (token.empty() || token.size() > 512) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(std::string id_hash, Hash(token));
  return LookupByHash(id_hash);
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::LookupByAccessor(std::string_view accessor) {
  if (accessor.empty() || accessor.size() > 128) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(std::string acc_hash, Hash(accessor));
  ASSIGN_OR_RETURN(auto raw, barrier_->Get(kAccessorPrefix + acc_hash));
  if (!raw) return std::optional<TokenEntry>();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object() || !v.as_object().contains("id_hash"))
    return absl::DataLossError("accessor entry is corrupt");
  return LookupByHash(std::string(v.as_object()["id_hash"].as_string()));
}

absl::Status TokenStore::Revoke(std::string_view root_hash, bool orphan_children) {
  MutexLock wl(&write_mu_);
  // Breadth-first over the tree, children by pages; each token's keys go in one batch.
  std::deque<std::string> queue{std::string(root_hash)};
  bool first = true;
  while (!queue.empty()) {
    std::string h = std::move(queue.front());
    queue.pop_front();
    {
      MutexLock l(&mu_);
      Uncache(h);
    }
    // First mark a live token as being revoked (num_uses -1: lookups refuse it from now on), so
    // that a child it is making right now cannot slip in after its children are listed: Store()
    // checks the parent after writing the child.
    {
      ASSIGN_OR_RETURN(auto cur, Load(h));
      if (cur && cur->num_uses >= 0 &&
          !(cur->expire_time > 0 && clock_->NowUnix() >= cur->expire_time)) {
        cur->num_uses = -1;
        std::vector<storage::WriteOp> mark;
        RETURN_IF_ERROR(Persist(*cur, &mark));
        RETURN_IF_ERROR(barrier_->Write(std::move(mark)));
        MutexLock l(&mu_);
        Uncache(h);
      }
    }
    std::vector<storage::WriteOp> ops;
    std::vector<std::string> orphaned;  // children whose entry this batch rewrites
    std::string parent_prefix = Cat(kParentPrefix, h, "/");
    std::string after;
    for (;;) {
      ASSIGN_OR_RETURN(auto kids, barrier_->List(parent_prefix, after, 256));
      if (kids.empty()) break;
      for (const auto& k : kids) {
        if (orphan_children && first) {
          ASSIGN_OR_RETURN(auto child, Load(k));
          if (child) {
            child->parent_hash.clear();
            RETURN_IF_ERROR(Persist(*child, &ops));
            orphaned.push_back(k);
            MutexLock l(&mu_);
            Uncache(k);
          }
        } else {
          queue.push_back(k);
        }
        ops.push_back({storage::WriteOp::Kind::kDelete, parent_prefix + k, ""});
      }
      after = kids.back();
    }
    ASSIGN_OR_RETURN(auto e, Load(h));
    if (e) {
      ASSIGN_OR_RETURN(std::string acc_hash, Hash(e->accessor));
      ops.push_back({storage::WriteOp::Kind::kDelete, kAccessorPrefix + acc_hash, ""});
      if (!e->parent_hash.empty())
        ops.push_back(
            {storage::WriteOp::Kind::kDelete, Cat(kParentPrefix, e->parent_hash, "/", h), ""});
      if (e->expire_time > 0)
        ops.push_back({storage::WriteOp::Kind::kDelete, ExpireKey(e->expire_time, h), ""});
      ops.push_back({storage::WriteOp::Kind::kDelete, kIdPrefix + h, ""});
      ops.push_back({storage::WriteOp::Kind::kPut, Cat(kRevokedTokenLeasesPrefix, h), ""});
    }
    if (!ops.empty()) RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
    RETURN_IF_ERROR(barrier_->DeletePrefix(Cat(kCubbyholePrefix, h, "/")));
    {
      // Again after the write: a Load() that read the old entries meanwhile must not keep them.
      MutexLock l(&mu_);
      Uncache(h);
      for (const auto& k : orphaned) Uncache(k);
    }
    first = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<TokenEntry> TokenStore::Renew(std::string_view id_hash, int64_t increment,
                                             int64_t mount_max_ttl,
                                             std::vector<std::string>* warnings) {
  MutexLock wl(&write_mu_);
  ASSIGN_OR_RETURN(auto found, LookupByHash(id_hash));
  if (!found) return absl::PermissionDeniedError("permission denied");
  TokenEntry e = std::move(*found);
  if (e.ttl == 0 && e.period == 0) return e;  // never expires: nothing to extend
  if (!e.renewable) return absl::InvalidArgumentError("token is not renewable");
  const int64_t now = clock_->NowUnix();
  int64_t want = e.period > 0 ? e.period : (increment > 0 ? increment : e.creation_ttl);
  if (e.period > 0 && increment > 0 && increment < e.period) want = increment;
  // A period renews by at most the mount's max TTL each time (it has no maximum lifetime).
  if (e.period > 0 && mount_max_ttl > 0 && want > mount_max_ttl) want = mount_max_ttl;
  // The maximum lifetime counts from creation: explicit_max_ttl, then the mount's max TTL
  // (periodic tokens are only bound by explicit_max_ttl, as in Vault).
  int64_t max_end = 0;
  if (e.explicit_max_ttl > 0) max_end = e.creation_time + e.explicit_max_ttl;
  if (e.period == 0 && mount_max_ttl > 0) {
    int64_t m = e.creation_time + mount_max_ttl;
    max_end = max_end ? std::min(max_end, m) : m;
  }
  int64_t end = now + want;
  if (max_end > 0 && end > max_end) {
    end = max_end;
    if (warnings)
      warnings->push_back(Cat("TTL of \"", want, "s\" exceeded the effective max_ttl of \"",
                              std::max<int64_t>(0, max_end - now),
                              "s\"; TTL value is capped accordingly"));
  }
  if (end <= now)
    return absl::InvalidArgumentError(
        "token has reached its maximum lifetime and cannot be renewed");
  std::vector<storage::WriteOp> ops;
  if (e.expire_time > 0)
    ops.push_back({storage::WriteOp::Kind::kDelete, ExpireKey(e.expire_time, e.id_hash), ""});
  e.ttl = end - now;
  e.expire_time = end;
  ops.push_back({storage::WriteOp::Kind::kPut, ExpireKey(e.expire_time, e.id_hash), ""});
  RETURN_IF_ERROR(Persist(e, &ops));
  RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  MutexLock l(&mu_);
  Recache(e);
  return e;
}

absl::Status TokenStore::Use(const TokenEntry& entry) {
  if (entry.num_uses == 0) return absl::OkStatus();
  bool exhausted = false;
  {
    MutexLock wl(&write_mu_);
    ASSIGN_OR_RETURN(auto found, LookupByHash(entry.id_hash));
    if (!found || found->num_uses <= 0) return absl::PermissionDeniedError("permission denied");
    TokenEntry e = std::move(*found);
    e.num_uses -= 1;
    if (e.num_uses == 0) {
      e.num_uses = -1;  // marks it used up: lookups refuse it from now on
      exhausted = true;
    }
    std::vector<storage::WriteOp> ops;
    RETURN_IF_ERROR(Persist(e, &ops));
    RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
    MutexLock l(&mu_);
    Recache(e);
  }
  if (exhausted) return Revoke(entry.id_hash);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> TokenStore::Accessors(std::string_view after_accessor,
                                                               size_t limit) {
  // Accessor keys are salted hashes; page over them and return the accessors they hold.
  std::vector<std::string> out;
  std::string after;
  if (!after_accessor.empty()) {
    ASSIGN_OR_RETURN(after, Hash(after_accessor));
  }
  ASSIGN_OR_RETURN(auto keys, barrier_->List(kAccessorPrefix, after, limit));
  for (const auto& k : keys) {
    ASSIGN_OR_RETURN(auto raw, barrier_->Get(kAccessorPrefix + k));
    if (!raw) continue;
    boost::system::error_code ec;
    auto v = json::parse(*raw, ec);
    if (!ec && v.is_object() && v.as_object().contains("accessor"))
      out.emplace_back(v.as_object()["accessor"].as_string());
  }
  return out;
}

absl::StatusOr<bool> TokenStore::WalkEntries(size_t max_tokens,
                                             const std::function<void(TokenEntry&&)>& fn) {
  size_t seen = 0;
  std::string after;
  for (;;) {
    const size_t page = std::min<size_t>(1000, max_tokens - seen);
    if (page == 0) {
      ASSIGN_OR_RETURN(auto more, barrier_->List(kIdPrefix, after, 1));
      return more.empty();
    }
    ASSIGN_OR_RETURN(auto hashes, barrier_->List(kIdPrefix, after, page));
    for (const auto& h : hashes) {
      ASSIGN_OR_RETURN(auto raw, barrier_->Get(kIdPrefix + h));
      if (!raw) continue;  // revoked meanwhile
      boost::system::error_code ec;
      auto v = json::parse(*raw, ec);
      if (ec || !v.is_object()) continue;
      auto e = TokenEntry::FromStorage(h, v.as_object());
      if (e.ok()) fn(*std::move(e));
    }
    seen += hashes.size();
    if (hashes.size() < page) return true;
    after = hashes.back();
  }
}

absl::StatusOr<std::map<std::string, int64_t>> TokenStore::CountByPolicy(size_t max_tokens,
                                                                         bool* complete) {
  std::map<std::string, int64_t> out;
  const int64_t now = clock_->NowUnix();
  ASSIGN_OR_RETURN(*complete, WalkEntries(max_tokens, [&](TokenEntry&& e) {
    if ((e.expire_time > 0 && now >= e.expire_time) || e.num_uses < 0) return;
    for (const auto& p : e.policies) ++out[p];
  }));
  return out;
}

absl::StatusOr<int> TokenStore::RevokeMatching(const std::function<bool(const TokenEntry&)>& pred) {
  std::vector<std::string> hashes;
  ASSIGN_OR_RETURN(bool all, WalkEntries(std::numeric_limits<size_t>::max(), [&](TokenEntry&& e) {
                     if (pred(e)) hashes.push_back(std::move(e.id_hash));
                   }));
  (void)all;  // no limit: always all
  // Each with its children: a child made under another path goes with its parent, as in Vault.
  for (const auto& h : hashes) RETURN_IF_ERROR(Revoke(h));
  return static_cast<int>(hashes.size());
}

absl::StatusOr<int> TokenStore::RevokeUnderPath(std::string_view prefix, bool expiring_only) {
  if (prefix.empty() || prefix.back() != '/')
    return absl::InvalidArgumentError("a token path prefix must end in '/'");
  return RevokeMatching([&](const TokenEntry& e) {
    return (!expiring_only || e.expire_time != 0) && StartsWith(Cat(e.path, "/"), prefix);
  });
}

absl::StatusOr<int> TokenStore::MovePath(std::string_view from, std::string_view to) {
  if (from.empty() || from.back() != '/' || to.empty() || to.back() != '/')
    return absl::InvalidArgumentError("token path prefixes must end in '/'");
  std::vector<std::string> hashes;
  ASSIGN_OR_RETURN(bool all, WalkEntries(std::numeric_limits<size_t>::max(), [&](TokenEntry&& e) {
                     if (StartsWith(Cat(e.path, "/"), from)) hashes.push_back(std::move(e.id_hash));
                   }));
  (void)all;  // no limit: always all
  int moved = 0;
  for (const auto& h : hashes) {
    // Under write_mu_, as renewals and uses: the entry is read again and written whole.
    MutexLock wl(&write_mu_);
    ASSIGN_OR_RETURN(auto e, Load(h));
    if (!e || !StartsWith(Cat(e->path, "/"), from)) continue;  // revoked or moved meanwhile
    const std::string rest = Cat(e->path, "/").substr(from.size());
    e->path = Cat(to, rest.substr(0, rest.size() - 1));
    if (e->path.back() == '/') e->path.pop_back();  // the mount's own path ("auth/x")
    std::vector<storage::WriteOp> ops;
    RETURN_IF_ERROR(Persist(*e, &ops));
    RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
    MutexLock l(&mu_);
    Recache(*e);
    ++moved;
  }
  return moved;
}

absl::StatusOr<int> TokenStore::Tidy(int max) {
  const int64_t now = clock_->NowUnix();
  int revoked = 0;
  std::string after;
  while (revoked < max) {
    ASSIGN_OR_RETURN(auto stamps, barrier_->List(kExpirePrefix, after, 64));
    if (stamps.empty()) break;
    bool done = false;
    for (const auto& dir : stamps) {
      int64_t at = std::strtoll(dir.c_str(), nullptr, 10);
      if (at > now) {
        done = true;
        break;
      }
      ASSIGN_OR_RETURN(auto hashes, barrier_->List(Cat(kExpirePrefix, dir), "", 256));
      for (const auto& h : hashes) {
        ASSIGN_OR_RETURN(auto e, Load(h));
        if (e && (e->expire_time == 0 || e->expire_time > now)) {
          // Renewed meanwhile: only the stale index key goes.
          RETURN_IF_ERROR(barrier_->Delete(Cat(kExpirePrefix, dir, h)));
          continue;
        }
        RETURN_IF_ERROR(Revoke(h));
        // A token renewed meanwhile has a new expiry key; drop this stale one.
        RETURN_IF_ERROR(barrier_->Delete(Cat(kExpirePrefix, dir, h)));
        ++revoked;
      }
    }
    if (done) break;
    after = stamps.back();
  }
  return revoked;
}

namespace {
json::array PolicyArray(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}
}  // namespace

json::object LookupData(const TokenEntry& e, std::string_view id, int64_t now) {
  json::object meta;
  for (const auto& [k, v] : e.meta) meta[k] = v;
  json::object d{{"accessor", e.accessor},
                 {"creation_time", e.creation_time},
                 {"creation_ttl", e.creation_ttl},
                 {"display_name", e.display_name},
                 {"entity_id", ""},
                 {"expire_time", e.expire_time > 0 ? json::value(Rfc3339Utc(e.expire_time))
                                                   : json::value(nullptr)},
                 {"explicit_max_ttl", e.explicit_max_ttl},
                 {"id", id},
                 {"issue_time", Rfc3339Utc(e.creation_time)},
                 {"meta", meta.empty() ? json::value(nullptr) : json::value(meta)},
                 {"num_uses", std::max<int64_t>(0, e.num_uses)},
                 {"orphan", e.parent_hash.empty()},
                 {"path", e.path},
                 {"policies", PolicyArray(e.policies)},
                 {"renewable", e.renewable && (e.ttl > 0 || e.period > 0)},
                 {"ttl", e.expire_time > 0 ? std::max<int64_t>(0, e.expire_time - now) : 0},
                 {"type", "service"}};
  if (e.period > 0) d["period"] = e.period;
  if (!e.role.empty()) d["role"] = e.role;
  if (!e.bound_cidrs.empty()) d["bound_cidrs"] = PolicyArray(e.bound_cidrs);
  return d;
}

json::object AuthBlock(const TokenEntry& e, std::string_view token) {
  json::object meta;
  for (const auto& [k, v] : e.meta) meta[k] = v;
  return json::object{{"client_token", token},
                      {"accessor", e.accessor},
                      {"policies", PolicyArray(e.policies)},
                      {"token_policies", PolicyArray(e.policies)},
                      {"identity_policies", nullptr},
                      {"metadata", meta.empty() ? json::value(nullptr) : json::value(meta)},
                      {"lease_duration", e.ttl},
                      {"renewable", e.renewable && (e.ttl > 0 || e.period > 0)},
                      {"entity_id", ""},
                      {"token_type", "service"},
                      {"orphan", e.parent_hash.empty()},
                      {"mfa_requirement", nullptr},
                      {"num_uses", std::max<int64_t>(0, e.num_uses)}};
}

}  // namespace coffer::core
