// The system backend mounted at sys/ (Vault's logical_system.go): the same declared path table
// as every engine, with handlers that call into the core. Its special paths say which sys/
// endpoints need sudo and which need no token.
#include "absl/time/clock.h"
#include "boost/json.hpp"
#include "core/core.h"
#include "core/framework/framework.h"
#include "util/json.h"
#include "util/log.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
using framework::FieldData;
using framework::FieldSchema;
using framework::FieldType;
using framework::Path;

namespace {
constexpr Operation kRead = Operation::kRead;
constexpr Operation kUpdate = Operation::kUpdate;
constexpr Operation kDelete = Operation::kDelete;
constexpr Operation kHead = Operation::kHead;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace

const PathList& Core::PreUnsealPaths() {
  // Served without a token and while sealed (Vault answers these in its HTTP layer).
  static const PathList kPaths{"init", "unseal", "seal-status", "health", "leader"};
  return kPaths;
}

namespace {
// Keeps the system backend's 404 as it was before the framework ("no handler for route").
class SystemBackend final : public framework::FrameworkBackend {
 public:
  using FrameworkBackend::FrameworkBackend;

 protected:
  absl::Status NotFound(const Request& req) const override {
    return absl::NotFoundError(Cat("no handler for route \"sys/", req.path, "\""));
  }
};
}  // namespace

std::unique_ptr<Backend> Core::NewSystemBackend() {
  using H = framework::Handler;
  auto op = [](H h, std::string summary = "") {
    return framework::OperationSpec{std::move(h), std::move(summary)};
  };
  // Handlers run from HandleLocked(), under a shared state_mu_, except the PreUnsealPaths ones
  // (init, unseal, seal-status, health, leader), which Handle() runs without it; the
  // annotations below say which handlers rely on the lock.
  // Mount paths (sys/mounts/<path>, sys/auth/<path>) may hold slashes and end in /tune.
  auto mount_path = [this](bool auth) -> H {
    H h = [this, auth](Request& req, const FieldData& d)
              ABSL_SHARED_LOCKS_REQUIRED(state_mu_) -> absl::StatusOr<Response> {
      std::string mp = d.String("path");
      if (auth) mp = "auth/" + mp;
      if (mp.size() > 5 && EndsWith(mp, "/tune"))
        return MountTune(req, std::string_view(mp).substr(0, mp.size() - 5));
      switch (req.op) {
        case Operation::kRead:
          return MountRead(mp);
        case Operation::kCreate:
        case Operation::kUpdate:
          return MountEnableRequest(req, mp, auth);
        case Operation::kDelete:
          RETURN_IF_ERROR(DisableMount(mp, auth));
          return Response::Empty();
        default:
          return UnsupportedOperation();
      }
    };
    return h;
  };
  auto policies = [this](Request& req, const FieldData&) ABSL_SHARED_LOCKS_REQUIRED(state_mu_) {
    return HandlePolicies(req, req.path);
  };
  auto caps = [this](Request& req, const FieldData&) ABSL_SHARED_LOCKS_REQUIRED(state_mu_) {
    return HandleCapabilities(req, req.path);
  };
  auto audit = [this](Request& req, const FieldData&)
                   ABSL_SHARED_LOCKS_REQUIRED(state_mu_) { return HandleAudit(req, req.path); };
  const std::map<std::string, FieldSchema> mount_fields{
      {"path", {FieldType::kString, "The path of the mount, e.g. \"pki\" or \"approle\""}},
      {"type", {FieldType::kString, "The type of the engine or auth method"}},
      {"description", {FieldType::kString, "A human-friendly description"}},
      {"config", {FieldType::kAny, "default_lease_ttl and max_lease_ttl"}},
      {"options", {FieldType::kAny, "Options of the engine, e.g. {\"version\":\"1\"}"}},
      {"local", {FieldType::kAny, "Whether the mount is local to this node"}},
      {"seal_wrap", {FieldType::kAny, "Whether values are seal-wrapped"}},
      {"default_lease_ttl", {FieldType::kAny, "Tune: the default lease TTL (\"system\": reset)"}},
      {"max_lease_ttl", {FieldType::kAny, "Tune: the maximum lease TTL (\"system\": reset)"}}};

  std::vector<Path> paths;
  paths.push_back(
      {.patterns = {"init"},
       .fields = {{"secret_shares", {FieldType::kAny, "Number of key shares"}},
                  {"secret_threshold", {FieldType::kAny, "Shares needed to unseal"}},
                  {"pgp_keys", {FieldType::kAny, "Not supported yet: refused"}},
                  {"root_token_pgp_key", {FieldType::kAny, "Not supported yet: refused"}},
                  {"recovery_shares", {FieldType::kAny, "Number of recovery key shares"}},
                  {"recovery_threshold", {FieldType::kAny, "Recovery shares needed"}},
                  {"recovery_pgp_keys", {FieldType::kAny, "Not supported yet: refused"}},
                  {"stored_shares", {FieldType::kAny, "Ignored: an auto seal stores the key"}}},
       .operations = {{kRead,
                       op([this](Request& r, const FieldData&) { return HandleInitRequest(r); })},
                      {kUpdate,
                       op([this](Request& r, const FieldData&) { return HandleInitRequest(r); })}},
       .synopsis = "Initializes the server: creates the root key and its shares"});
  paths.push_back({.patterns = {"unseal"},
                   .fields = {{"key", {FieldType::kAny, "One unseal key share", {}, false, true}},
                              {"reset", {FieldType::kAny, "Forget the shares submitted so far"}},
                              {"migrate", {FieldType::kAny, "Move to the configured seal"}}},
                   .operations = {{kUpdate, op([this](Request& r, const FieldData&) {
                                     return HandleUnsealRequest(r);
                                   })}},
                   .synopsis = "Submits one unseal key share"});
  paths.push_back(
      {.patterns = {"seal-status"},
       .operations = {{kRead, op([this](Request&, const FieldData&) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(auto st, SealStatus());
                         return Response::Raw(st);
                       })}},
       .synopsis = "The seal's state: sealed, threshold, progress"});
  std::map<std::string, FieldSchema> health_fields;
  for (const char* q :
       {"standbyok", "perfstandbyok", "activecode", "standbycode", "drsecondarycode",
        "performancestandbycode", "sealedcode", "uninitcode", "removedcode", "haunhealthycode"})
    health_fields[q] = {FieldType::kAny, "Query parameter choosing the answer's status code"};
  paths.push_back(
      {.patterns = {"health"},
       .fields = health_fields,
       .operations = {{kRead, op([this](Request& r, const FieldData&) { return HandleHealth(r); })},
                      {kHead,
                       op([this](Request& r, const FieldData&) { return HandleHealth(r); })}},
       .synopsis = "Health of the node, with status codes chosen by query parameters"});
  paths.push_back({.patterns = {"leader"},
                   .operations = {{kRead, op([this](Request&, const FieldData&) {
                                     return absl::StatusOr<Response>(Response::Raw(LeaderStatus()));
                                   })}},
                   .synopsis = "The active node of an HA cluster"});
  paths.push_back(
      {.patterns = {"mounts"},
       .operations = {{kRead, op([this](Request&, const FieldData&) { return MountsList(); })}},
       .synopsis = "Lists the mounted secrets engines"});
  paths.push_back({.patterns = {"mounts/{path*}"},
                   .fields = mount_fields,
                   .operations = {{kRead, op(mount_path(false))},
                                  {kUpdate, op(mount_path(false))},
                                  {kDelete, op(mount_path(false))}},
                   .synopsis = "Enables, reads, tunes (<path>/tune) or disables a secrets engine"});
  paths.push_back({.patterns = {"wrapping/wrap"},
                   .operations = {{kUpdate, op([this](Request& r, const FieldData&) {
                                     return HandleWrapping(r, "wrap");
                                   })}},
                   .synopsis = "Wraps the body (any fields) in a single-use token",
                   .any_field = true});
  paths.push_back(
      {.patterns = {"wrapping/{what:unwrap|lookup|rewrap}"},
       .fields = {{"what", {FieldType::kString, "unwrap, lookup or rewrap"}},
                  {"token", {FieldType::kAny, "The wrapping token", {}, false, true}}},
       .operations = {{kUpdate, op([this](Request& r, const FieldData& d) {
                         return HandleWrapping(r, d.String("what"));
                       })},
                      {kRead, op([this](Request& r, const FieldData& d) {
                         if (d.String("what") != "lookup")
                           return absl::StatusOr<Response>(UnsupportedOperation());
                         return HandleWrapping(r, "lookup");
                       })}},
       .synopsis = "Response wrapping: wrap a value, unwrap, look up or rewrap a wrapping token"});
  auto leases = [this](Request& r, const FieldData& d) {
    return HandleLeases(r, d.String("what"), d.String("arg"));
  };
  paths.push_back(
      {.patterns = {"leases/{what:lookup}", "leases/{what:lookup}/{arg*}"},
       .fields = {{"what", {FieldType::kString, "lookup"}},
                  {"arg", {FieldType::kString, "LIST: the prefix to list"}},
                  {"lease_id", {FieldType::kAny, "The lease id"}}},
       .operations = {{kUpdate, op(leases)}, {Operation::kList, op(leases)}},
       .synopsis = "Looks up a lease (PUT), or lists the leases under a prefix (LIST, sudo)"});
  paths.push_back(
      // revoke-prefix and revoke-force take their prefix in the URL only, as Vault's: the sudo
      // rules name leases/revoke-prefix/* and leases/revoke-force/*.
      {.patterns = {"leases/{what:renew|revoke|tidy}",
                    "leases/{what:renew|revoke|revoke-prefix|revoke-force}/{arg*}"},
       .fields = {{"what", {FieldType::kString, "The operation"}},
                  {"arg", {FieldType::kString, "The lease id or prefix, in the URL"}},
                  {"lease_id", {FieldType::kAny, "The lease id, in the body"}},
                  {"prefix",
                   {FieldType::kAny, "revoke-prefix/revoke-force: the prefix (the URL's)"}},
                  {"increment", {FieldType::kAny, "Renewal: the new TTL requested"}},
                  {"sync", {FieldType::kAny, "Revocation waits for the engine (always)"}}},
       .operations = {{kUpdate, op(leases)}},
       .synopsis = "Leases of secrets: renew, revoke, revoke by prefix, tidy"});
  paths.push_back(
      {.patterns = {"remount"},
       .fields = {{"from", {FieldType::kString, "The mount's current path"}},
                  {"to", {FieldType::kString, "Its new path"}}},
       .operations = {{kUpdate, op([this](Request& r, const FieldData&) ABSL_SHARED_LOCKS_REQUIRED(
                                       state_mu_) { return Remount(r); })}},
       .synopsis = "Moves a secrets engine or auth method to another path; its data stays"});
  paths.push_back(
      {.patterns = {"remount/status/{migration_id}"},
       .fields = {{"migration_id", {FieldType::kString, "The id sys/remount answered"}}},
       .operations = {{kRead, op([this](Request&, const FieldData& d) {
                         return RemountStatus(d.String("migration_id"));
                       })}},
       .synopsis = "The outcome of a sys/remount"});
  paths.push_back(
      {.patterns = {"auth"},
       .operations = {{kRead, op([this](Request&, const FieldData&) { return AuthList(); })}},
       .synopsis = "Lists the enabled auth methods"});
  paths.push_back({.patterns = {"auth/{path*}"},
                   .fields = mount_fields,
                   .operations = {{kRead, op(mount_path(true))},
                                  {kUpdate, op(mount_path(true))},
                                  {kDelete, op(mount_path(true))}},
                   .synopsis = "Enables, reads, tunes (<path>/tune) or disables an auth method"});
  paths.push_back({.patterns = {"policy", "policy/{name*}", "policies/acl", "policies/acl/{name*}"},
                   .fields = {{"name", {FieldType::kString, "The policy's name"}},
                              {"policy", {FieldType::kAny, "The policy in HCL or JSON"}},
                              {"rules", {FieldType::kAny, "The policy (older field name)"}}},
                   .operations = {{kRead, op(policies)},
                                  {Operation::kList, op(policies)},
                                  {kUpdate, op(policies)},
                                  {kDelete, op(policies)}},
                   .synopsis = "ACL policies: list, read, write, delete"});
  paths.push_back({.patterns = {"capabilities", "capabilities-self", "capabilities-accessor"},
                   .fields = {{"paths", {FieldType::kAny, "The paths to check"}},
                              {"path", {FieldType::kAny, "One path to check (older field)"}},
                              {"token", {FieldType::kAny, "The token to check", {}, false, true}},
                              {"accessor", {FieldType::kAny, "The accessor of the token"}}},
                   .operations = {{kUpdate, op(caps)}},
                   .synopsis = "The capabilities a token has on paths"});
  paths.push_back({.patterns = {"audit", "audit/{path*}", "audit-hash/{path*}"},
                   .fields = {{"type", {FieldType::kAny, "The audit device type: file"}},
                              {"description", {FieldType::kAny, "A description"}},
                              {"options", {FieldType::kAny, "file_path, log_raw, hmac_accessor"}},
                              {"local", {FieldType::kAny, "Local to this node"}},
                              {"input", {FieldType::kAny, "The string to hash"}}},
                   .operations = {{kRead, op(audit)}, {kUpdate, op(audit)}, {kDelete, op(audit)}},
                   .synopsis = "Audit devices; audit-hash/<path> hashes a string as the device"});
  paths.push_back(
      {.patterns = {"step-down"},
       .operations = {{kUpdate, op([this](Request&, const FieldData&) -> absl::StatusOr<Response> {
                         // Vault answers 204 on a server without HA too.
                         if (opts_.ha_enabled && opts_.ha_step_down) opts_.ha_step_down();
                         return Response::Empty();
                       })}},
       .synopsis = "The active server of an HA cluster gives the lock to a standby"});
  paths.push_back(
      {.patterns = {"rotate"},
       .operations = {{kUpdate, op([this](Request&, const FieldData&) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(auto ks, barrier_->Rotate());
                         log::Info("barrier key rotated", {{"term", std::to_string(ks.term)}});
                         return Response::Empty();
                       })}},
       .synopsis = "Rotates the barrier's encryption key (a new term)"});
  paths.push_back(
      {.patterns = {"key-status"},
       .operations = {{kRead, op([this](Request&, const FieldData&) -> absl::StatusOr<Response> {
                         ASSIGN_OR_RETURN(auto ks, barrier_->Status());
                         auto r = Response::Data(json::object{
                             {"term", static_cast<int64_t>(ks.term)},
                             {"install_time", absl::FormatTime(absl::RFC3339_full, ks.install_time,
                                                               absl::UTCTimeZone())},
                             {"encryptions", static_cast<int64_t>(ks.encryptions)}});
                         r.duplicate_data_at_top = true;
                         return r;
                       })}},
       .synopsis = "The barrier key's term and use"});
  // Under an auto seal the root key is the seal's to protect: there are no unseal shares to
  // change, and the recovery keys are rekeyed at sys/rekey-recovery-key (refusing here keeps an
  // operator's `rekey -key-shares=1` habit from silently replacing the recovery shares).
  auto barrier_rekey = [this](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    if (seal_->IsAuto() && !(req.op == Operation::kRead && d.String("what") == "init"))
      return absl::InvalidArgumentError(
          "this server uses an auto seal: the seal protects the root key and there are no unseal "
          "key shares to change; rekey the recovery keys at sys/rekey-recovery-key (coffer "
          "operator rekey -target=recovery)");
    return HandleRekey(req, d.String("what"));
  };
  paths.push_back({.patterns = {"rekey/{what:init|update|verify|backup}"},
                   .operations = {{kRead, op(barrier_rekey)},
                                  {kUpdate, op(barrier_rekey)},
                                  {kDelete, op(barrier_rekey)}},
                   .synopsis = "New unseal key shares from the current ones (sys_rekey.cc)",
                   .any_field = true});
  // Vault rekeys an auto seal's recovery key here (docs/seals.md).
  auto recovery_rekey = [this](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
    if (!seal_->IsAuto())
      return absl::InvalidArgumentError(
          "this server has no recovery keys: it uses the Shamir seal, rekey its unseal keys at "
          "sys/rekey");
    return HandleRekey(req, d.String("what"));
  };
  paths.push_back({.patterns = {"rekey-recovery-key/{what:init|update|verify}"},
                   .operations = {{kRead, op(recovery_rekey)},
                                  {kUpdate, op(recovery_rekey)},
                                  {kDelete, op(recovery_rekey)}},
                   .synopsis = "New recovery key shares from the current ones (auto seals)",
                   .any_field = true});
  paths.push_back({.patterns = {"generate-root/{what:attempt|update}"},
                   .operations = {{kRead, op([this](Request& req, const FieldData& d) {
                                     return HandleGenerateRoot(req, d.String("what"));
                                   })},
                                  {kUpdate, op([this](Request& req, const FieldData& d) {
                                     return HandleGenerateRoot(req, d.String("what"));
                                   })},
                                  {kDelete, op([this](Request& req, const FieldData& d) {
                                     return HandleGenerateRoot(req, d.String("what"));
                                   })}},
                   .synopsis = "A new root token from the unseal key shares and a one-time pad",
                   .any_field = true});
  paths.push_back({.patterns = {"seal"},
                   .operations = {{kUpdate, op([](Request&, const FieldData&) {
                                     Response r;
                                     r.seal_after = true;
                                     return absl::StatusOr<Response>(std::move(r));
                                   })}},
                   .synopsis = "Seals the server"});
  paths.push_back(
      {.patterns = {"metrics"},
       .fields = {{"format", {FieldType::kString, "prometheus, or empty for JSON"}}},
       .operations = {{kRead, op([this](Request& req, const FieldData&) ABSL_SHARED_LOCKS_REQUIRED(
                                     state_mu_) -> absl::StatusOr<Response> {
                         auto fmt = req.QueryParam("format");
                         const bool prometheus = fmt && *fmt == "prometheus";
                         if (fmt && !fmt->empty() && !prometheus)
                           return absl::InvalidArgumentError(
                               Cat("unknown metrics format \"", *fmt,
                                   "\": use prometheus, or none for JSON"));
                         Response r;
                         r.raw = true;
                         if (prometheus && !opts_.prometheus_metrics) {
                           // Vault's answer when prometheus_retention_time is 0.
                           r.http_status = 400;
                           r.content_type = "text/plain";
                           r.raw_body = "prometheus is not enabled";
                           return r;
                         }
                         const Scrape scrape = ScrapeMetrics();
                         if (prometheus) {
                           r.content_type = "text/plain; version=0.0.4";
                           r.raw_body = metrics_.Prometheus(scrape);
                           return r;
                         }
                         r.raw_body = json::serialize(metrics_.Json(scrape));
                         return r;
                       })}},
       .synopsis = "Metrics (requests, storage, tokens, seal state, PKI issuers), as "
                   "JSON or in Prometheus' text format"});
  paths.push_back(
      {.patterns = {"internal/ui/mounts/{path*}"},
       .operations = {{kRead,
                       op([this](Request& req, const FieldData& d) -> absl::StatusOr<Response> {
                         // Unauthenticated as in Vault, so any client can tell a mount's type
                         // and version (`kv` commands): answered only to a token whose
                         // policies grant something under the mount.
                         const absl::Status denied =
                             absl::PermissionDeniedError("permission denied");
                         ASSIGN_OR_RETURN(auto caller, tokens_->Lookup(req.client_token));
                         if (!caller) return denied;
                         ASSIGN_OR_RETURN(auto acl, policies_->AclFor(caller->policies));
                         std::string rest;
                         const std::string p = d.String("path");
                         auto m = Route(p, &rest);
                         // No such mount: the same 403 as a mount the caller cannot see, so
                         // that this path does not list the mounts to anyone guessing (Vault).
                         if (!m) return denied;
                         if (!acl->HasAccessUnder(m->entry.path)) return denied;
                         json::object o = m->entry.ToJson();
                         o["path"] = m->entry.path;
                         return Response::Data(std::move(o));
                       })}},
       .synopsis = "The mount that holds a path"});
  paths.push_back({.patterns = {"internal/specs/openapi"},
                   .operations = {{kRead, op([this](Request&, const FieldData&) {
                                     return OpenApiDocument();
                                   })}},
                   .synopsis = "An OpenAPI 3 description of every mounted path"});

  SpecialPaths special;
  // Vault's root-protected sys paths that Coffer serves (logical_system.go's PathsSpecial.Root),
  // plus seal, which Vault's handler checks for sudo itself.
  special.root = PathList{"auth/*",
                          "remount",
                          "audit",
                          "audit/*",
                          "raw",
                          "raw/*",
                          "rotate",
                          "seal",
                          "step-down",
                          "leases/revoke-prefix/*",
                          "leases/revoke-force/*",
                          "revoke-prefix/*",
                          "revoke-force/*",
                          "leases/lookup/*",
                          "config/auditing/*",
                          "plugins/catalog/*",
                          "internal/inspect/*"};
  // wrapping/unwrap authenticates itself: the wrapping token is often the client token, and the
  // core's check would spend its single use before the handler. internal/ui/mounts/* checks the
  // caller's token itself too (Vault: unauthenticated, answered by the caller's ACL).
  special.unauthenticated = PathList{"init",
                                     "unseal",
                                     "seal-status",
                                     "health",
                                     "leader",
                                     "wrapping/lookup",
                                     "wrapping/unwrap",
                                     "internal/ui/mounts/*",
                                     "rekey/*",
                                     "rekey-recovery-key/*",
                                     "generate-root/*"};
  // sys/internal/specs/openapi is unauthenticated in Vault, which then filters the mounts by
  // listing_visibility and the caller's ACL. Coffer has no listing_visibility yet, so the
  // document (which names every mount) needs a token (docs/compatibility.md).
  // Every sys path answers an operation it lacks with Vault's bare message, as before the
  // framework; health and seal-status keep their own wording.
  for (auto& p : paths) {
    const std::string& first = p.patterns.front();
    p.unsupported = first == "health"        ? "sys/health takes GET or HEAD"
                    : first == "seal-status" ? "sys/seal-status takes GET"
                                             : "";
  }
  return std::make_unique<SystemBackend>(
      "The system backend: mounts, policies, audit devices, seal and health.", std::move(paths),
      std::move(special));
}

json::object Core::LeaderStatus() {
  bool standby = false;
  int64_t since = 0;
  {
    ReaderMutexLock l(&state_mu_);
    standby = standby_;
    since = active_since_;
  }
  if (!opts_.ha_enabled)
    return json::object{{"ha_enabled", false},
                        {"is_self", true},
                        {"leader_address", ""},
                        {"leader_cluster_address", ""},
                        {"performance_standby", false}};
  // The active server is the leader, whatever a cached read of the lock says yet.
  const std::string leader =
      !standby ? opts_.ha_api_addr : (opts_.ha_leader ? opts_.ha_leader() : std::string());
  return json::object{
      {"ha_enabled", true},
      {"is_self", !standby},
      {"active_time", since > 0 ? absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(since),
                                                   absl::UTCTimeZone())
                                : std::string("0001-01-01T00:00:00Z")},
      {"leader_address", leader},
      {"leader_cluster_address", ""},
      {"performance_standby", false},
      {"performance_standby_last_remote_wal", 0}};
}

absl::StatusOr<Response> Core::OpenApiDocument() {
  json::object paths;
  system_->OpenApi("/sys/", paths);
  std::vector<std::shared_ptr<Mount>> mounts;
  {
    ReaderMutexLock l(&mounts_mu_);
    for (const auto& [path, m] : mounts_) mounts.push_back(m);
  }
  for (const auto& m : mounts)
    if (m->backend) m->backend->OpenApi("/" + m->entry.path, paths);
  return Response::Raw(
      json::object{{"openapi", "3.0.2"},
                   {"info", json::object{{"title", "Coffer API"},
                                         {"description", "HTTP API of Coffer, Vault-compatible"},
                                         {"version", COFFER_VERSION}}},
                   {"paths", std::move(paths)},
                   {"components", json::object{{"schemas", json::object{}}}}});
}

}  // namespace coffer::core
