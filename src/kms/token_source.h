// Where the KMS plugin's Coffer token comes from: a file another process keeps current (the
// agent, a Kubernetes secret volume), or a Kubernetes service account JWT exchanged at
// auth/<mount>/login and renewed before it expires. Both are thread-safe: gRPC handler threads
// ask for the token while the plugin's main loop calls Tick().
//
// Tokens are secrets: nothing here logs one, and error messages name files and paths only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/client.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::kms {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // The token to send now; an error when there is none (file missing, login failing).
  virtual absl::StatusOr<std::string> Token() = 0;
  // Coffer answered 403 to `token`. Returns true when the source got a different token to
  // retry with (a fresh login); false when retrying cannot help.
  virtual bool Rejected(const std::string& token) = 0;
  // Upkeep: renews or logs in again when due. The plugin calls it about once a second.
  virtual void Tick() = 0;
  // How the token is obtained, for the start-up log ("token file /x", "kubernetes role r").
  virtual std::string Describe() const = 0;
};

// Reads the first line of a file. The file is looked at (stat) on every Token() call and read
// again whenever its inode, size or modification time changed, so a rewritten or atomically
// replaced file takes effect on the next request.
class FileTokenSource final : public TokenSource {
 public:
  // Fails when the file cannot be read or holds no token.
  static absl::StatusOr<std::unique_ptr<FileTokenSource>> Create(std::string path);

  absl::StatusOr<std::string> Token() override;
  bool Rejected(const std::string& token) override;
  void Tick() override {}
  std::string Describe() const override { return "token file " + path_; }

 private:
  explicit FileTokenSource(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<std::string> Reload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  // What the file looked like when token_ was read.
  ino_t ino_ ABSL_GUARDED_BY(mu_) = 0;
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t mtime_ns_ ABSL_GUARDED_BY(mu_) = -1;
};

struct KubernetesLoginOptions {
  http::ClientOptions client;  // address, CA, timeout; the token field is ignored
  std::string mount = "kubernetes";
  std::string role;
  // The service account token; read again at each login (projected tokens are rotated).
  std::string jwt_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
};

// Logs in at auth/<mount>/login with {role, jwt}; renews the token (auth/token/renew-self) once
// two thirds of its TTL have passed, and logs in again when renewal fails, when the token is
// not renewable, when renewal no longer extends it (its max TTL is near), or when Coffer
// rejects it. A failed login is retried by the next Tick() or Token() after a backoff
// (1 s doubling to 30 s), so a Coffer outage does not turn into a login storm.
class KubernetesTokenSource final : public TokenSource {
 public:
  // Does not contact Coffer: the first login happens at the first Token() or Tick().
  KubernetesTokenSource(KubernetesLoginOptions o, const Clock* clock);

  absl::StatusOr<std::string> Token() override;
  bool Rejected(const std::string& token) override;
  void Tick() override;
  std::string Describe() const override;

 private:
  absl::Status Login() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a failed login (the error, the next attempt after the backoff); returns the error.
  absl::Status LoginFailed(absl::Time now, const absl::Status& st)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Renew() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Renews or logs in when due; returns the outcome of the last attempt (OK when nothing due).
  absl::Status Maintain() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A copy of last_error_ with a heap rep of its own: a plain copy would share it with
  // last_error_ across threads, counting references in libabsl_status, where ThreadSanitizer
  // cannot see it (a false race when last_error_ is replaced).
  absl::Status LastError() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::Status(last_error_.code(), std::string(last_error_.message()));
  }

  const KubernetesLoginOptions o_;
  const Clock* clock_;
  Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  bool renewable_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);        // zero: the token does not expire
  absl::Time obtained_ ABSL_GUARDED_BY(mu_);       // when the current TTL started
  absl::Duration login_ttl_ ABSL_GUARDED_BY(mu_);  // the TTL the last login gave
  absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::Seconds(1);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace coffer::kms
