#include "kms/token_source.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "boost/json.hpp"
#include "http/api.h"
#include "util/files.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::kms {
namespace json = boost::json;

namespace {

// The first line of a file's text, without trailing whitespace.
std::string FirstLine(std::string_view text) {
  std::string line(text.substr(0, text.find('\n')));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
    line.pop_back();
  return line;
}

absl::StatusOr<std::string> ReadFirstLine(const std::string& path, std::string_view what) {
  auto data = files::ReadIfExists(path);
  if (!data.ok()) return data.status();
  if (!*data) return absl::FailedPreconditionError(Cat(what, " ", path, " does not exist"));
  std::string line = FirstLine(**data);
  if (line.empty()) return absl::FailedPreconditionError(Cat(what, " ", path, " is empty"));
  return line;
}

int64_t IntField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return 0;
}

bool BoolField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

}  // namespace

// ---- FileTokenSource ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<FileTokenSource>> FileTokenSource::Create(std::string path) {
  std::unique_ptr<FileTokenSource> s(new FileTokenSource(std::move(path)));
  RETURN_IF_ERROR(s->Token().status());
  return s;
}

absl::StatusOr<std::string> FileTokenSource::Token() {
  MutexLock l(&mu_);
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0)
    return absl::FailedPreconditionError(
        Cat("cannot read the token file ", path_, ": ", std::strerror(errno)));
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  if (token_.empty() || st.st_ino != ino_ || st.st_size != size_ || mtime_ns != mtime_ns_) {
    ASSIGN_OR_RETURN(token_, ReadFirstLine(path_, "the token file"));
    ino_ = st.st_ino;
    size_ = st.st_size;
    mtime_ns_ = mtime_ns;
  }
  return token_;
}

bool FileTokenSource::Rejected(const std::string& token) {
  {
    MutexLock l(&mu_);
    mtime_ns_ = -1;  // read the file again, whatever stat says
  }
  auto t = Token();
  return t.ok() && *t != token;
}

// ---- KubernetesTokenSource ---------------------------------------------------------------------

KubernetesTokenSource::KubernetesTokenSource(KubernetesLoginOptions o, const Clock* clock)
    : o_(std::move(o)), clock_(clock) {}

std::string KubernetesTokenSource::Describe() const {
  return Cat("kubernetes role ", o_.role, " at auth/", o_.mount, "/login (service account token ",
             o_.jwt_file, ")");
}

absl::Status KubernetesTokenSource::LoginFailed(absl::Time now, const absl::Status& st) {
  last_error_ =
      absl::Status(st.code(), Cat("kubernetes login as role ", o_.role, " at auth/", o_.mount,
                                  "/login failed: ", std::string(st.message())));
  next_attempt_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, absl::Seconds(30));
  log::Warn("kms: kubernetes login failed",
            {{"role", o_.role}, {"error", std::string(last_error_.message())}});
  return LastError();
}

absl::Status KubernetesTokenSource::Login() {
  const absl::Time now = clock_->Now();
  auto jwt = ReadFirstLine(o_.jwt_file, "the service account token file");
  if (!jwt.ok()) return LoginFailed(now, jwt.status());
  http::ClientOptions c = o_.client;
  c.token.clear();
  http::Api api(std::move(c));
  json::object body{{"role", o_.role}, {"jwt", *jwt}};
  auto r = api.Write(Cat("auth/", o_.mount, "/login"), body);
  if (!r.ok()) return LoginFailed(now, r.status());
  const json::value* auth = r->if_contains("auth");
  const json::value* tok = auth != nullptr && auth->is_object()
                               ? auth->as_object().if_contains("client_token")
                               : nullptr;
  if (tok == nullptr || !tok->is_string() || tok->as_string().empty())
    return LoginFailed(now, absl::UnavailableError("the response holds no auth.client_token"));
  token_ = std::string(tok->as_string());
  ttl_ = absl::Seconds(IntField(auth->as_object(), "lease_duration"));
  renewable_ = BoolField(auth->as_object(), "renewable");
  obtained_ = now;
  login_ttl_ = ttl_;
  backoff_ = absl::Seconds(1);
  next_attempt_ = absl::InfinitePast();
  last_error_ = absl::OkStatus();
  log::Info("kms: logged in with the kubernetes auth method",
            {{"role", o_.role},
             {"ttl", Cat(absl::ToInt64Seconds(ttl_), "s")},
             {"renewable", renewable_ ? "true" : "false"}});
  return absl::OkStatus();
}

absl::Status KubernetesTokenSource::Renew() {
  http::ClientOptions c = o_.client;
  c.token = token_;
  http::Api api(std::move(c));
  auto r = api.Write("auth/token/renew-self", json::object{});
  if (!r.ok()) return r.status();
  const json::value* auth = r->if_contains("auth");
  if (auth == nullptr || !auth->is_object())
    return absl::UnavailableError("renew-self: the response holds no auth block");
  const absl::Duration ttl = absl::Seconds(IntField(auth->as_object(), "lease_duration"));
  // Renewal that no longer extends the token much means its max TTL is near: a new login
  // gives a full TTL instead of a series of ever shorter renewals.
  if (ttl < login_ttl_ / 2)
    return absl::OutOfRangeError(
        Cat("renewal gave only ", absl::ToInt64Seconds(ttl), "s (max TTL near)"));
  ttl_ = ttl;
  renewable_ = BoolField(auth->as_object(), "renewable");
  obtained_ = clock_->Now();
  log::Info("kms: renewed the token", {{"ttl", Cat(absl::ToInt64Seconds(ttl_), "s")}});
  return absl::OkStatus();
}

absl::Status KubernetesTokenSource::Maintain() {
  const absl::Time now = clock_->Now();
  const bool due =
      token_.empty() || (ttl_ > absl::ZeroDuration() && now >= obtained_ + ttl_ * 2 / 3);
  if (!due) return absl::OkStatus();
  if (now < next_attempt_) return LastError();
  if (!token_.empty() && renewable_) {
    absl::Status st = Renew();
    if (st.ok()) return st;
    log::Info("kms: token renewal failed; logging in again",
              {{"error", std::string(st.message())}});
  }
  return Login();
}

absl::StatusOr<std::string> KubernetesTokenSource::Token() {
  MutexLock l(&mu_);
  absl::Status st = Maintain();
  if (token_.empty()) return st.ok() ? absl::UnavailableError("no token yet") : st;
  return token_;
}

bool KubernetesTokenSource::Rejected(const std::string& token) {
  MutexLock l(&mu_);
  if (token != token_) return !token_.empty();  // already replaced by another thread
  // A token that was just issued and is refused points at the policy, not at the token: a new
  // login would be refused the same way, and logging in on every request helps no one.
  if (clock_->Now() - obtained_ < absl::Seconds(10)) return false;
  if (clock_->Now() < next_attempt_) return false;
  return Login().ok();
}

void KubernetesTokenSource::Tick() {
  MutexLock l(&mu_);
  (void)Maintain();
}

}  // namespace coffer::kms
