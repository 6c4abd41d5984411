// PKI engine: tidy and tidy-status. Tidy runs on its own thread, in pages of storage, and removes
// expired certificates and revocations (then rebuilds the CRLs it changed); Cleanup() and the
// destructor stop it.
#include <functional>
#include <set>

#include "engines/pki/pki_internal.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::engines::pki {

using core::Operation;
using core::Request;
using core::Response;
using core::framework::Handler;

std::vector<PkiPath> PkiBackend::TidyPaths(PkiBackend* b) {
  Handler tidy = [b](Request& r, const FieldData& d) { return b->Tidy(r, d); };
  Handler read_status = [b](Request& r, const FieldData&) { return b->ReadTidyStatus(r); };

  std::vector<PkiPath> paths;
  paths.push_back(
      {.path = {
           .patterns = {"tidy"},
           .fields = {{"tidy_cert_store",
                       BoolField("Whether expired certificates are removed from the store.",
                                 false)},
                      {"tidy_revoked_certs",
                       BoolField("Whether expired revoked certificates are removed (and "
                                 "their CRLs rebuilt).",
                                 false)},
                      {"tidy_revoked_cert_issuer_associations",
                       BoolField("Taken as tidy_revoked_certs.", false)},
                      {"safety_buffer",
                       DurationField("How long after notAfter a certificate is kept.", "72h")}},
           .operations = Ops({{kUpdate, tidy, "Starts a tidy in the background (202)."}}),
           .unsupported = kUnsupported,
           .synopsis = "Removes expired certificates and revocations."}});
  paths.push_back(
      {.path = {.patterns = {"tidy-status"},
                .operations = Ops({{kRead, read_status, "Reads the state of the last tidy."}}),
                .unsupported = kUnsupported,
                .synopsis = "The state and counts of the last tidy."}});
  return paths;
}

absl::StatusOr<Response> PkiBackend::Tidy(Request& req, const FieldData& d) {
  TidyStatus p;
  p.tidy_cert_store = d.Bool("tidy_cert_store");
  p.tidy_revoked_certs =
      d.Bool("tidy_revoked_certs") || d.Bool("tidy_revoked_cert_issuer_associations");
  p.safety_buffer = d.Duration("safety_buffer");
  if (p.safety_buffer < 1) return absl::InvalidArgumentError("safety_buffer must be positive");
  if (!p.tidy_cert_store && !p.tidy_revoked_certs) {
    // Vault accepts the request (202) and says so; nothing runs.
    Response none;
    none.http_status = 202;
    none.warnings.emplace_back(
        "tidy has nothing to do: set tidy_cert_store and/or tidy_revoked_certs to true");
    return none;
  }
  MutexLock lock(&tidy_mu_);
  if (stopping_) return absl::UnavailableError("the mount is shutting down");
  Response r;
  r.http_status = 202;
  if (tidy_status_.state == "Running") {
    r.http_status = 200;
    r.warnings.emplace_back("Tidy operation already in progress.");
    return r;
  }
  if (tidy_thread_.joinable()) tidy_thread_.join();
  p.state = "Running";
  p.time_started = Now();
  tidy_status_ = p;
  storage::Storage* s = req.storage;
  tidy_thread_ = std::thread([this, s, p] { RunTidy(s, p); });
  r.warnings.emplace_back(
      "Tidy operation successfully started. Any information from the operation will be printed "
      "to Coffer's server logs.");
  return r;
}

void PkiBackend::RunTidy(storage::Storage* s, TidyStatus p) {
  int64_t certs_deleted = 0, revoked_deleted = 0;
  std::set<std::string> touched_issuers;
  auto finish = [&](const absl::Status& st) {
    MutexLock lock(&tidy_mu_);
    tidy_status_.cert_store_deleted_count = certs_deleted;
    tidy_status_.revoked_cert_deleted_count = revoked_deleted;
    tidy_status_.time_finished = Now();
    tidy_status_.state = st.ok() ? "Finished" : stopping_ ? "Cancelled" : "Error";
    tidy_status_.error = st.ok() ? "" : Msg(st);
    tidy_status_.message = st.ok() ? "Tidying finished" : "Tidying stopped";
  };
  auto progress = [&] {
    MutexLock lock(&tidy_mu_);
    tidy_status_.cert_store_deleted_count = certs_deleted;
    tidy_status_.revoked_cert_deleted_count = revoked_deleted;
  };
  auto run = [&]() -> absl::Status {
    const int64_t cutoff = Now() - p.safety_buffer;
    auto walk = [&](const std::string& prefix,
                    const std::function<absl::Status(const std::string&)>& fn) -> absl::Status {
      std::string after;
      for (;;) {
        if (stopping_) return absl::CancelledError("the mount is shutting down");
        ASSIGN_OR_RETURN(auto names, s->List(prefix, after, kPage));
        for (const auto& n : names) {
          // Checked per entry too, so that Cleanup() does not wait for a whole page.
          if (stopping_) return absl::CancelledError("the mount is shutting down");
          RETURN_IF_ERROR(fn(n));
        }
        progress();
        if (names.size() < kPage) return absl::OkStatus();
        after = names.back();
      }
    };
    if (p.tidy_cert_store) {
      RETURN_IF_ERROR(walk("certs/", [&](const std::string& n) -> absl::Status {
        ASSIGN_OR_RETURN(auto rec, GetJson(s, "certs/" + n));
        if (rec && GetInt(*rec, "not_after") < cutoff) {
          RETURN_IF_ERROR(s->Delete("certs/" + n));
          ++certs_deleted;
        }
        return absl::OkStatus();
      }));
    }
    if (p.tidy_revoked_certs) {
      RETURN_IF_ERROR(walk("revoked/", [&](const std::string& n) -> absl::Status {
        ASSIGN_OR_RETURN(auto rec, GetJson(s, "revoked/" + n));
        if (rec && GetInt(*rec, "not_after") < cutoff) {
          std::string issuer = GetString(*rec, "issuer_id");
          RETURN_IF_ERROR(s->Write(
              {{storage::WriteOp::Kind::kDelete, "revoked/" + n, ""},
               {storage::WriteOp::Kind::kDelete, "certs/" + n, ""},
               {storage::WriteOp::Kind::kDelete,
                Cat("crl-index/", issuer, "/", IndexName(n, GetInt(*rec, "revocation_time"))),
                ""}}));
          touched_issuers.insert(issuer);
          ++revoked_deleted;
        }
        return absl::OkStatus();
      }));
      for (const auto& id : touched_issuers) {
        auto is = ResolveIssuer(s, id);
        if (is.ok() && (*is)->key) RETURN_IF_ERROR(RebuildCrl(s, **is));
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = run();
  if (!st.ok())
    log::Warn("pki tidy stopped", {{"error", Msg(st)}});
  else
    log::Info("pki tidy finished", {{"certs_deleted", std::to_string(certs_deleted)},
                                    {"revoked_deleted", std::to_string(revoked_deleted)}});
  finish(st);
}

absl::StatusOr<Response> PkiBackend::ReadTidyStatus(Request& req) {
  // Vault reports the store's size only with maintain_stored_certificate_counts; Coffer always
  // does (a listing of names, reused as in sys/metrics), and `cluster status` sizes its progress
  // bar with it. Counted before tidy_mu_ is taken: the count may list storage.
  // A count that fails (storage unreachable) leaves the two fields null; the rest still answers.
  auto counts = Counts(req.storage);
  MutexLock lock(&tidy_mu_);
  const TidyStatus& t = tidy_status_;
  return Response::Data(json::object{
      {"safety_buffer", t.safety_buffer},
      {"tidy_cert_store", t.tidy_cert_store},
      {"tidy_revoked_certs", t.tidy_revoked_certs},
      {"state", t.state},
      {"error", t.error.empty() ? json::value(nullptr) : json::value(t.error)},
      {"time_started", t.time_started ? json::value(Rfc3339(t.time_started)) : nullptr},
      {"time_finished", t.time_finished ? json::value(Rfc3339(t.time_finished)) : nullptr},
      {"message", t.message},
      {"cert_store_deleted_count", t.cert_store_deleted_count},
      {"revoked_cert_deleted_count", t.revoked_cert_deleted_count},
      {"missing_issuer_cert_count", 0},
      {"cert_store_current_entry_count", counts.ok() ? json::value(counts->stored) : nullptr},
      {"revoked_cert_current_entry_count", counts.ok() ? json::value(counts->revoked) : nullptr}});
}

void PkiBackend::StopTidy() {
  stopping_ = true;
  std::thread t;
  {
    MutexLock lock(&tidy_mu_);
    t = std::move(tidy_thread_);
  }
  // Joined without the lock: the thread takes it to record how it ended.
  if (t.joinable()) t.join();
}

}  // namespace coffer::engines::pki
