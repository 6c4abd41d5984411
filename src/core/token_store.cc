#include "core/token_store.h"

#include <openssl/crypto.h>

#include "absl/time/clock.h"
#include "boost/json.hpp"
#include "crypto/crypto.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::core {

absl::Status TokenStore::Setup() {
  ASSIGN_OR_RETURN(auto salt, barrier_->Get("core/token-salt"));
  if (!salt) {
    ASSIGN_OR_RETURN(auto fresh, crypto::SecretBytes::Random(32));
    RETURN_IF_ERROR(barrier_->Put("core/token-salt", fresh.view()));
    salt = std::string(fresh.view());
  }
  absl::MutexLock l(&mu_);
  if (!salt_.empty()) OPENSSL_cleanse(salt_.data(), salt_.size());
  salt_ = std::move(*salt);
  cache_.clear();
  return absl::OkStatus();
}

void TokenStore::Clear() {
  absl::MutexLock l(&mu_);
  if (!salt_.empty()) OPENSSL_cleanse(salt_.data(), salt_.size());
  salt_.clear();
  cache_.clear();
}

absl::StatusOr<std::string> TokenStore::Hash(std::string_view value) {
  absl::ReaderMutexLock l(&mu_);
  if (salt_.empty()) return absl::UnavailableError("Vault is sealed");
  return HexEncode(crypto::HmacSha256(salt_, value));
}

absl::StatusOr<std::string> TokenStore::CreateRootToken() {
  ASSIGN_OR_RETURN(std::string token, crypto::RandomToken("hvs."));
  ASSIGN_OR_RETURN(std::string accessor, crypto::RandomToken(""));
  ASSIGN_OR_RETURN(std::string id_hash, Hash(token));
  ASSIGN_OR_RETURN(std::string acc_hash, Hash(accessor));
  int64_t now = absl::ToUnixSeconds(absl::Now());
  boost::json::object entry{{"accessor", accessor},       {"policies", boost::json::array{"root"}},
                            {"path", "auth/token/root"}, {"display_name", "root"},
                            {"creation_time", now},      {"ttl", 0}};
  std::vector<storage::WriteOp> ops;
  ops.push_back({storage::WriteOp::Kind::kPut, "sys/token/id/" + id_hash, boost::json::serialize(entry)});
  ops.push_back({storage::WriteOp::Kind::kPut, "sys/token/accessor/" + acc_hash,
                 boost::json::serialize(boost::json::object{{"id_hash", id_hash}})});
  RETURN_IF_ERROR(barrier_->Write(std::move(ops)));
  return token;
}

absl::StatusOr<std::optional<TokenEntry>> TokenStore::Lookup(std::string_view token) {
  if (token.empty() || token.size() > 512) return std::optional<TokenEntry>();
  ASSIGN_OR_RETURN(std::string id_hash, Hash(token));
  {
    absl::ReaderMutexLock l(&mu_);
    auto it = cache_.find(id_hash);
    if (it != cache_.end()) return std::optional<TokenEntry>(it->second);
  }
  ASSIGN_OR_RETURN(auto raw, barrier_->Get("sys/token/id/" + id_hash));
  if (!raw) return std::optional<TokenEntry>();
  boost::system::error_code ec;
  auto v = boost::json::parse(*raw, ec);
  if (ec || !v.is_object()) return absl::DataLossError("token entry is corrupt");
  const auto& o = v.as_object();
  TokenEntry e;
  e.id_hash = id_hash;
  try {
    e.accessor = std::string(o.at("accessor").as_string());
    for (const auto& p : o.at("policies").as_array()) e.policies.emplace_back(p.as_string());
    e.path = std::string(o.at("path").as_string());
    e.display_name = std::string(o.at("display_name").as_string());
    e.creation_time = o.at("creation_time").to_number<int64_t>();
    e.ttl = o.at("ttl").to_number<int64_t>();
  } catch (const std::exception&) {
    return absl::DataLossError("token entry is corrupt");
  }
  absl::MutexLock l(&mu_);
  cache_[id_hash] = e;
  return std::optional<TokenEntry>(std::move(e));
}

}  // namespace coffer::core
