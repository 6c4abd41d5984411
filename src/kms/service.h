// The Kubernetes KMS v2 gRPC service (kms_v2.proto) over a Transit key:
//
//   Encrypt  -> Transit encrypt; the ciphertext is Transit's "vault:v<N>:..." text as bytes and
//               the key_id names the key version N that made it;
//   Decrypt  -> Transit decrypt of those bytes, whatever key_id they were stored with (Transit
//               keeps every version from min_decryption_version on);
//   Status   -> version "v2", healthz "ok" when the key's latest version can be read (else the
//               reason, which kube-apiserver shows in its healthz), and key_id of that version.
//
// key_id is "<mount>/<key>:v<N>", so rotating the Transit key changes it and kube-apiserver
// makes a new DEK seed and treats data stored under the old key_id as stale. The latest version
// is asked of Coffer at most once per `refresh`; an Encrypt that used a newer version updates
// it at once.
//
// Errors reach the caller as gRPC codes: 400 -> INVALID_ARGUMENT, 403 -> PERMISSION_DENIED (with
// the policy the plugin's token needs), 404 -> FAILED_PRECONDITION, unreachable/sealed/5xx ->
// UNAVAILABLE, each with a message saying what to check. Plaintext is never logged.
//
// Thread-safe: gRPC calls the handlers from several threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "kms/kms_v2.grpc.pb.h"
#include "kms/transit.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::kms {

struct ServiceOptions {
  std::string mount = "transit";
  std::string key;
  absl::Duration refresh = absl::Seconds(5);
  // kube-apiserver sends 32-byte DEK seeds. The bound keeps the Transit ciphertext, a JSON string
  // in the Decrypt request to Coffer, under Coffer's 1 MiB limit on one JSON string value: a
  // plaintext encrypted here can always be decrypted again.
  size_t max_plaintext = size_t{512} << 10;
  // For a caller that sets no gRPC deadline (kube-apiserver always does; its default is 3s).
  std::chrono::milliseconds default_timeout{30000};
  // Most calls to Coffer at once; more wait for a turn until their deadline (then UNAVAILABLE).
  int max_in_flight = 8;
};

// The gRPC status for a failed Transit call; `action` says what failed ("encrypt").
grpc::Status ToGrpcStatus(const absl::Status& st, std::string_view action, const ServiceOptions& o);

class KmsService final : public v2::KeyManagementService::Service {
 public:
  // `transit` and `clock` must outlive the service.
  KmsService(Transit* transit, ServiceOptions o, const Clock* clock);

  grpc::Status Status(grpc::ServerContext* ctx, const v2::StatusRequest* req,
                      v2::StatusResponse* resp) override;
  grpc::Status Decrypt(grpc::ServerContext* ctx, const v2::DecryptRequest* req,
                       v2::DecryptResponse* resp) override;
  grpc::Status Encrypt(grpc::ServerContext* ctx, const v2::EncryptRequest* req,
                       v2::EncryptResponse* resp) override;

  std::string KeyId(int64_t version) const;
  // The key's latest version: the cached one when checked within `refresh`, else Coffer's
  // (which then becomes the cached one). Status uses it; the plugin calls it at start-up.
  absl::StatusOr<int64_t> LatestVersion(std::chrono::milliseconds timeout);

 private:
  // Time left before the caller's deadline (default_timeout without one).
  std::chrono::milliseconds TimeLeft(const grpc::ServerContext* ctx) const;

  // A turn to call Coffer (max_in_flight at once), waited for within `left` (the time before
  // the caller's deadline); released by its destructor.
  class Turn {
   public:
    Turn(KmsService* s, std::chrono::milliseconds left);
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    bool ok() const { return ok_; }

   private:
    KmsService* s_;
    bool ok_ = false;
  };
  static grpc::Status Busy(std::string_view action);

  Transit* transit_;
  const ServiceOptions o_;
  const Clock* clock_;
  Mutex mu_;
  int64_t latest_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not known yet
  absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Mutex turns_mu_;
  std::condition_variable_any turn_freed_;
  int in_flight_ ABSL_GUARDED_BY(turns_mu_) = 0;
};

}  // namespace coffer::kms
