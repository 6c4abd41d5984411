#include "core/policy_store.h"

#include <algorithm>

#include "boost/json.hpp"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
namespace {
constexpr char kPrefix[] = "sys/policy/";

std::shared_ptr<const Policy> RootPolicy() {
  static auto p = std::make_shared<const Policy>(Policy{"root", "", {}});
  return p;
}
}  // namespace

std::string_view ReservedPolicyIn(const std::vector<std::string>& policies) {
  for (std::string_view reserved : {"response-wrapping", "control-group"})
    if (std::find(policies.begin(), policies.end(), reserved) != policies.end()) return reserved;
  return {};
}

absl::Status PolicyStore::WriteDefaults() {
  return barrier_->Put(
      Cat(kPrefix, "default"),
      json::serialize(json::object{{"name", "default"}, {"policy", DefaultPolicy().raw}}));
}

void PolicyStore::Clear() {
  MutexLock l(&mu_);
  policies_.clear();
  acls_.clear();
  ++generation_;
}

absl::StatusOr<std::shared_ptr<const Policy>> PolicyStore::Get(std::string_view name) {
  if (name == "root") return RootPolicy();
  uint64_t gen;
  {
    ReaderMutexLock l(&mu_);
    auto it = policies_.find(name);
    if (it != policies_.end()) return it->second;
    gen = generation_;
  }
  ASSIGN_OR_RETURN(auto raw, barrier_->Get(Cat(kPrefix, name)));
  if (!raw) return std::shared_ptr<const Policy>();
  boost::system::error_code ec;
  auto v = json::parse(*raw, ec);
  if (ec || !v.is_object() || !v.as_object().contains("policy"))
    return absl::DataLossError("stored policy is corrupt");
  ASSIGN_OR_RETURN(Policy p,
                   ParsePolicy(name, std::string_view(v.as_object()["policy"].as_string())));
  auto shared = std::make_shared<const Policy>(std::move(p));
  MutexLock l(&mu_);
  // A Put or Delete that finished while we read storage moved generation_: what we read may be
  // older than it, so it is returned but not cached.
  if (gen == generation_) policies_.try_emplace(std::string(name), shared);
  return std::shared_ptr<const Policy>(shared);
}

absl::Status PolicyStore::Put(std::string_view name, std::string_view text) {
  RETURN_IF_ERROR(ValidatePolicyName(name));
  if (name == "root") return absl::InvalidArgumentError("cannot update the root policy");
  // Every outstanding wrapping token holds this policy alone: giving it rules would hand them
  // to whoever holds a wrapping token.
  if (name == "response-wrapping")
    return absl::InvalidArgumentError("cannot update the response-wrapping policy");
  RETURN_IF_ERROR(ParsePolicy(name, text).status());  // refuse what would not parse back
  RETURN_IF_ERROR(barrier_->Put(Cat(kPrefix, name),
                                json::serialize(json::object{{"name", name}, {"policy", text}})));
  MutexLock l(&mu_);
  // Dropped rather than set: two Puts racing may reach here in either order, and the next Get
  // reads whichever reached storage last.
  policies_.erase(std::string(name));
  acls_.clear();
  ++generation_;
  return absl::OkStatus();
}

absl::Status PolicyStore::Delete(std::string_view name) {
  if (name == "root") return absl::InvalidArgumentError("cannot delete the root policy");
  if (name == "response-wrapping")
    return absl::InvalidArgumentError("cannot delete the response-wrapping policy");
  if (name == "default") return absl::InvalidArgumentError("cannot delete the default policy");
  RETURN_IF_ERROR(barrier_->Delete(Cat(kPrefix, name)));
  MutexLock l(&mu_);
  policies_.erase(std::string(name));
  acls_.clear();
  ++generation_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PolicyStore::List() {
  ASSIGN_OR_RETURN(auto names, barrier_->List(kPrefix, "", 0));
  names.emplace_back("root");
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::shared_ptr<const Acl>> PolicyStore::AclFor(
    const std::vector<std::string>& names) {
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string key;
  for (const auto& n : sorted) key += n + "\n";
  uint64_t gen;
  {
    ReaderMutexLock l(&mu_);
    auto it = acls_.find(key);
    if (it != acls_.end()) return it->second;
    gen = generation_;
  }
  std::vector<std::shared_ptr<const Policy>> ps;
  for (const auto& n : sorted) {
    ASSIGN_OR_RETURN(auto p, Get(n));
    if (p) ps.push_back(std::move(p));
  }
  auto acl = Acl::Build(ps);
  MutexLock l(&mu_);
  if (gen == generation_) acls_[key] = acl;  // a policy changed meanwhile: do not cache
  return acl;
}

}  // namespace coffer::core
