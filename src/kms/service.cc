#include "kms/service.h"

#include <algorithm>

#include "util/log.h"
#include "util/status.h"

namespace coffer::kms {

grpc::Status ToGrpcStatus(const absl::Status& st, std::string_view action,
                          const ServiceOptions& o) {
  const std::string msg(st.message());
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, Cat(action, " failed: Coffer refused it: ", msg)};
    case absl::StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED,
              Cat(action, " failed: permission denied by Coffer (", msg,
                  "). Check that the plugin's token is valid and that its policy allows "
                  "\"update\" on ",
                  o.mount, "/encrypt/", o.key, " and ", o.mount, "/decrypt/", o.key,
                  " and \"read\" on ", o.mount, "/keys/", o.key)};
    case absl::StatusCode::kNotFound:
      return {grpc::StatusCode::FAILED_PRECONDITION,
              Cat(action, " failed: not found (", msg, "). Is a Transit engine mounted at ",
                  o.mount, "/ and does it hold the key ", o.key, "?")};
    case absl::StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE,
              Cat(action, " failed: Coffer is unreachable, sealed or overloaded: ", msg)};
    case absl::StatusCode::kDeadlineExceeded:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, Cat(action, " failed: ", msg)};
    case absl::StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, Cat(action, " failed: ", msg)};
    default:
      return {grpc::StatusCode::INTERNAL, Cat(action, " failed: ", msg)};
  }
}

KmsService::KmsService(Transit* transit, ServiceOptions o, const Clock* clock)
    : transit_(transit), o_(std::move(o)), clock_(clock) {}

std::string KmsService::KeyId(int64_t version) const {
  return Cat(o_.mount, "/", o_.key, ":v", version);
}

std::chrono::milliseconds KmsService::TimeLeft(const grpc::ServerContext* ctx) const {
  using std::chrono::milliseconds;
  const auto left =
      std::chrono::duration_cast<milliseconds>(ctx->deadline() - std::chrono::system_clock::now());
  return std::clamp(left, milliseconds(0), o_.default_timeout);
}

KmsService::Turn::Turn(KmsService* s, std::chrono::milliseconds left) : s_(s) {
  // Gives up a little before the caller's deadline, so the caller gets this reason rather than
  // its own DEADLINE_EXCEEDED.
  const auto until =
      std::chrono::steady_clock::now() + left - std::min(left / 5, std::chrono::milliseconds(200));
  MutexLock l(&s_->turns_mu_);
  while (s_->in_flight_ >= s_->o_.max_in_flight) {
    if (s_->turn_freed_.wait_until(s_->turns_mu_.native(), until) == std::cv_status::timeout &&
        s_->in_flight_ >= s_->o_.max_in_flight)
      return;
  }
  ++s_->in_flight_;
  ok_ = true;
}

KmsService::Turn::~Turn() {
  if (!ok_) return;
  {
    MutexLock l(&s_->turns_mu_);
    --s_->in_flight_;
  }
  s_->turn_freed_.notify_one();
}

grpc::Status KmsService::Busy(std::string_view action) {
  return {grpc::StatusCode::UNAVAILABLE,
          Cat(action,
              " failed: the plugin's calls to Coffer did not get a turn before the "
              "deadline (all -concurrency slots busy; Coffer slow?)")};
}

absl::StatusOr<int64_t> KmsService::LatestVersion(std::chrono::milliseconds timeout) {
  {
    MutexLock l(&mu_);
    if (latest_ > 0 && clock_->Now() - checked_ < o_.refresh) return latest_;
  }
  // Not under the lock: a slow Coffer must not hold up Encrypt and Decrypt.
  absl::StatusOr<int64_t> v;
  {
    Turn turn(this, timeout);
    if (!turn.ok())
      return absl::UnavailableError("all -concurrency slots for calls to Coffer are busy");
    v = transit_->LatestVersion(timeout);
  }
  if (!v.ok()) return v.status();
  MutexLock l(&mu_);
  if (*v != latest_ && latest_ > 0)
    log::Info("kms: the transit key has a new latest version",
              {{"key_id", KeyId(*v)}, {"previous", KeyId(latest_)}});
  // A concurrent Encrypt may have seen a newer version than this answer: keep the newer one.
  latest_ = std::max(latest_, *v);
  checked_ = clock_->Now();
  return latest_;
}

grpc::Status KmsService::Status(grpc::ServerContext* ctx, const v2::StatusRequest* /*req*/,
                                v2::StatusResponse* resp) {
  resp->set_version("v2");
  auto v = LatestVersion(TimeLeft(ctx));
  if (v.ok()) {
    resp->set_healthz("ok");
    resp->set_key_id(KeyId(*v));
    return grpc::Status::OK;
  }
  // kube-apiserver reads the reason from healthz, so the call itself succeeds.
  resp->set_healthz(
      ToGrpcStatus(v.status(), Cat("reading ", o_.mount, "/keys/", o_.key), o_).error_message());
  {
    MutexLock l(&mu_);
    if (latest_ > 0) resp->set_key_id(KeyId(latest_));
  }
  log::Warn("kms: status: unhealthy", {{"reason", resp->healthz()}});
  return grpc::Status::OK;
}

grpc::Status KmsService::Encrypt(grpc::ServerContext* ctx, const v2::EncryptRequest* req,
                                 v2::EncryptResponse* resp) {
  if (req->plaintext().size() > o_.max_plaintext)
    return {
        grpc::StatusCode::INVALID_ARGUMENT,
        Cat("the plaintext is ", req->plaintext().size(), " bytes; this plugin encrypts at most ",
            o_.max_plaintext, " (kube-apiserver sends 32-byte DEK seeds)")};
  const std::chrono::milliseconds left = TimeLeft(ctx);
  Turn turn(this, left);
  if (!turn.ok()) return Busy("encrypt");
  auto r = transit_->Encrypt(req->plaintext(), left);
  if (!r.ok()) {
    grpc::Status g = ToGrpcStatus(r.status(), "encrypt", o_);
    log::Warn("kms: encrypt failed", {{"uid", req->uid()}, {"error", g.error_message()}});
    return g;
  }
  {
    MutexLock l(&mu_);
    if (r->version > latest_) latest_ = r->version;
  }
  resp->set_ciphertext(std::move(r->ciphertext));
  resp->set_key_id(KeyId(r->version));
  log::Debug("kms: encrypt", {{"uid", req->uid()}, {"key_id", resp->key_id()}});
  return grpc::Status::OK;
}

grpc::Status KmsService::Decrypt(grpc::ServerContext* ctx, const v2::DecryptRequest* req,
                                 v2::DecryptResponse* resp) {
  // Refused here with a clear message rather than by Coffer with a vaguer one.
  if (auto v = CiphertextVersion(req->ciphertext()); !v.ok())
    return {grpc::StatusCode::INVALID_ARGUMENT,
            Cat("decrypt failed: ", std::string(v.status().message()), "; key_id \"", req->key_id(),
                "\" (this plugin decrypts what it encrypted with ", o_.mount, "/", o_.key, ")")};
  const std::chrono::milliseconds left = TimeLeft(ctx);
  Turn turn(this, left);
  if (!turn.ok()) return Busy("decrypt");
  auto r = transit_->Decrypt(req->ciphertext(), left);
  if (!r.ok()) {
    grpc::Status g = ToGrpcStatus(r.status(), "decrypt", o_);
    log::Warn("kms: decrypt failed",
              {{"uid", req->uid()}, {"key_id", req->key_id()}, {"error", g.error_message()}});
    return g;
  }
  resp->set_plaintext(std::move(*r));
  log::Debug("kms: decrypt", {{"uid", req->uid()}, {"key_id", req->key_id()}});
  return grpc::Status::OK;
}

}  // namespace coffer::kms
