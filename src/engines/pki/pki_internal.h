// Internals of the PKI engine shared by its path files. Not part of any public interface.
//
// The engine is a core::framework::FrameworkBackend: each path file contributes its paths to
// the table (RolePaths, IssuePaths, ...), with their fields and a handler per operation.
//
// Storage layout inside the mount's view (all through the barrier):
//   config/issuers          {"default": issuer_id}
//   config/keys             {"default": key_id}
//   config/urls, config/crl Vault's fields
//   issuer/<id>             issuer record: certificate PEM, key_id, name, behaviour
//   key/<id>                key record: private key PEM, name, type
//   role/<name>             role fields (normalized, every field present)
//   certs/<serial>          issued certificate (DER, base64), issuer_id, not_after
//   revoked/<serial>        revocation record: certificate, issuer_id, revocation_time
//   crl-index/<issuer>/<serial>  revocation time; what the issuer's CRL is built from
//   crls/<issuer>           the issuer's current CRL (DER) and its number
// <serial> is the hyphenated form ("1f-03-..."), so listing pages through storage in order.
//
// Cached in memory (and dropped by InvalidateKey for the keys they come from): the issuers and
// keys with the defaults (issuer/*, key/*, config/issuers, config/keys), the roles (role/*),
// config/urls and config/crl. Certificates, revocations and CRLs are always read from storage.
#pragma once

#include <openssl/x509v3.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/json.hpp"
#include "core/backend.h"
#include "core/framework/framework.h"
#include "crypto/x509.h"
#include "util/clock.h"
#include "util/mutex.h"

namespace coffer::engines::pki {

namespace json = boost::json;
using core::framework::FieldData;
using core::framework::FieldSchema;
using core::framework::FieldType;

// ---- string helpers ----
bool EqualsFold(std::string_view a, std::string_view b);
std::vector<std::string_view> Split(std::string_view s, char sep);

// ---- fields ----
// How the PKI paths declare their fields. Booleans, integers and durations are parsed by the
// framework (kBool, kInt, kDuration) with the readers the engine used before it (JsonBool,
// JsonInt, ParseDurationSeconds): same values, same messages; PkiBackend::Handle hands an empty
// duration ("ttl": "") over as 0, as the engine and Vault read it. Strings and lists are
// declared kAny and read with Str / StrictStr / List below: the engine has always read a string
// field leniently (a non-string counts as absent) and a list with its own messages
// ("allowed_domains: expected a list of strings ..."), where the framework's kString and
// kCommaStringSlice would answer malformed input differently. The Vault type is in the
// description. What the framework changed: a malformed bool, int or duration is reported before
// the handler's own checks, and on every operation of the path (GET roles/x?ttl=bad is a 400).
FieldSchema BoolField(std::string description, bool default_value);
FieldSchema IntField(std::string description, int64_t default_value);
FieldSchema DurationField(std::string description, json::value default_value = nullptr);
FieldSchema StringField(const std::string& description, json::value default_value = nullptr);
FieldSchema ListField(const std::string& description, json::value default_value = nullptr);
FieldSchema SecretField(
    const std::string& description);  // a string that is a secret (keys, bundles)
// The union of several field sets (for paths sharing the subject, SAN or TTL fields).
std::map<std::string, FieldSchema> Fields(
    std::initializer_list<std::map<std::string, FieldSchema>> sets);

// A string field: its value, or "" when absent or not a string.
std::string Str(const FieldData& d, std::string_view name);
// A string field that must be a string when given (the engine's strict fields).
absl::StatusOr<std::optional<std::string>> StrictStr(const FieldData& d, std::string_view name);
// A list given as a JSON array of strings or a comma-separated string; nullopt when absent.
absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::value& v,
                                                                   std::string_view key);
absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::object& o,
                                                                   std::string_view key);
absl::StatusOr<std::optional<std::vector<std::string>>> List(const FieldData& d,
                                                             std::string_view name);
// A duration stored in a JSON object (stored roles and config/crl): seconds or "1h"; "" is 0.
absl::StatusOr<std::optional<int64_t>> StoredDuration(const json::object& o, std::string_view key);
std::string GetString(const json::object& o, std::string_view key);  // "" when absent
json::array ToArray(const std::vector<std::string>& v);

// The 405 detail of the PKI paths ("unsupported operation: read on pki path \"issue/web\"").
inline constexpr char kUnsupported[] = "{op} on pki path \"{path}\"";

// One operation of a path, for Ops(): Ops({{kRead, read_role, "Reads the role."}, ...}).
struct Op {
  core::Operation op;
  core::framework::Handler handler;
  std::string summary;
};
std::map<core::Operation, core::framework::OperationSpec> Ops(std::initializer_list<Op> ops);
inline constexpr core::Operation kRead = core::Operation::kRead;
inline constexpr core::Operation kUpdate = core::Operation::kUpdate;
inline constexpr core::Operation kPatch = core::Operation::kPatch;
inline constexpr core::Operation kDelete = core::Operation::kDelete;
inline constexpr core::Operation kList = core::Operation::kList;

// ---- roles ----
struct Role {
  std::string name;
  int64_t ttl = 0, max_ttl = 0, not_before_duration = 30;
  std::vector<std::string> allowed_domains;
  bool allow_bare_domains = false, allow_subdomains = false, allow_glob_domains = false;
  bool allow_wildcard_certificates = true, allow_any_name = false, allow_localhost = true;
  bool enforce_hostnames = true, allow_ip_sans = true;
  std::vector<std::string> allowed_ip_sans_cidr, allowed_uri_sans, allowed_other_sans;
  bool require_cn = true, use_csr_common_name = true, use_csr_sans = true;
  bool server_flag = true, client_flag = true, code_signing_flag = false,
       email_protection_flag = false;
  std::vector<std::string> key_usage{"DigitalSignature", "KeyAgreement", "KeyEncipherment"};
  std::vector<std::string> ext_key_usage, ext_key_usage_oids;
  std::vector<std::string> organization, ou, country, locality, province, street_address,
      postal_code;
  std::string key_type = "rsa";
  int64_t key_bits = 2048;
  int64_t signature_bits = 0;
  bool use_pss = false, no_store = false, generate_lease = false;
  bool basic_constraints_valid_for_non_ca = false;
  std::string issuer_ref = "default";

  // Derived when loaded.
  uint32_t key_usage_bits = 0;
  std::vector<std::string> eku_oids;

  json::object ToJson() const;
  // Applies the fields present in `data` (a request body or a stored role) over `*this`;
  // unknown keys are returned in `unknown`.
  absl::Status Apply(const json::object& data, std::vector<std::string>* unknown);
  absl::Status Finish();  // validates and fills the derived fields
};

// ---- issuers and keys ----
struct KeyEntry {
  std::string id, name;
  crypto::PKey key;
  crypto::KeySpec spec;
};

struct Issuer {
  std::string id, name, key_id;
  std::string leaf_not_after_behavior = "err";
  std::string usage = "read-only,issuing-certificates,crl-signing";
  crypto::Cert cert;
  std::string cert_pem;
  std::string serial;                  // colon form
  std::vector<std::string> chain_pem;  // the issuer first, then its parents in the mount
  int64_t not_after = 0;
  std::shared_ptr<const KeyEntry> key;  // null when the mount does not hold the key
  bool self_signed = false;
  int64_t revocation_time = 0;  // > 0: revoked (issuer/:ref/revoke)

  json::object ToJson() const;
};

struct UrlConfig {
  std::vector<std::string> issuing_certificates, crl_distribution_points, ocsp_servers;
};

struct CrlConfig {
  int64_t expiry = 72 * 3600;
  bool disable = false;
  bool auto_rebuild = false;
  int64_t auto_rebuild_grace_period = 12 * 3600;
  bool ocsp_disable = false;
  json::object ToJson() const;
};

struct TidyStatus {
  std::string state = "Inactive";
  std::string error, message;
  int64_t time_started = 0, time_finished = 0;
  int64_t cert_store_deleted_count = 0, revoked_cert_deleted_count = 0;
  int64_t safety_buffer = 0;
  bool tidy_cert_store = false, tidy_revoked_certs = false;
};

// One entry of the PKI path table: the framework's Path, and what the path answers an
// operation it does not declare when that is more than the 405 of `path.unsupported` (the
// engine checked the issuer, key or role name first, and answers as it always did). The hook
// gets the fields of the URL only.
struct PkiPath {
  core::framework::Path path;
  core::framework::Handler missing_op;  // unset: the 405
};

// A certificate just signed: its DER and the two fields the response and record need.
struct SignedCert {
  std::string der;
  std::string serial_colon;  // "1f:03:..."
  int64_t not_after = 0;
};

class PkiBackend final : public core::framework::FrameworkBackend {
 public:
  explicit PkiBackend(const core::BackendConfig& config);
  ~PkiBackend() override;

  // Before the framework, the engine's router answered HEAD with a 405 and, for some paths,
  // checked the issuer, key or role name before an unsupported operation; Handle keeps those
  // answers and hands the rest to the framework. A trailing '/' is a LIST's only: any other
  // operation on "root/" or "ca/" is a 404 (the old router stripped it, which let "root/" past
  // the sudo check on "root").
  absl::StatusOr<core::Response> Handle(core::Request& req) override;
  // The roles/ existence check needs the role's name only: it runs whatever the body holds,
  // on the path as it came (trailing slash included).
  absl::StatusOr<std::optional<bool>> Exists(core::Request& req) override;

  // Loads the issuers, keys and configuration, so the first request finds them cached. A record
  // that does not load is logged and reported by the requests that need it, as before: one bad
  // issuer must not keep the server sealed.
  absl::Status Initialize() override;
  // issue/<role> generates a key: expensive for an RSA role (or one not cached yet), not for
  // the EC and Ed25519 roles, whose keys take microseconds.
  bool Expensive(std::string_view path) const override;
  // sign/:role and issue/:role (also under issuer/:ref/) on a cached no_store role without
  // generate_lease write nothing: they stay on the event loop.
  bool MayWait(std::string_view path, core::Operation op) const override;
  bool DefersWrites(std::string_view path, core::Operation op) const override;
  bool ServesOnStandby(std::string_view path, core::Operation op) const override;
  // What a request on sign/:role or issue/:role (also under issuer/:ref/) writes, from the
  // role cache: nothing known (not cached), the certificate's record, a lease.
  struct RoleWrites {
    bool cached = false;
    bool certificate = false;
    bool lease = false;
  };
  std::optional<RoleWrites> SignOrIssueWrites(std::string_view path, core::Operation op) const;
  // Drops what is cached from `key` (relative to the mount's view) and nothing else.
  void InvalidateKey(std::string_view key) override;
  // Stops a running tidy (it ends "Cancelled") and drops every cache.
  void Cleanup() override;
  // A lease of a role with generate_lease expired or was revoked: revokes its certificate.
  absl::Status RevokeLease(core::Request& req, const boost::json::object& internal) override;
  // coffer.pki.issuer.not_after_seconds for each issuer (from the issuer cache) and
  // coffer.pki.certificates.{stored,revoked} (pki_metrics.cc).
  void AppendMetrics(std::vector<core::MetricSample>& out) override;

  // Stores a certificate record directly (bench/pki_scale fills a mount this way).
  // `der` is the certificate's DER when the caller has it already (else it is encoded here).
  absl::Status StoreCertificate(storage::Storage* s, X509* cert, const std::string& issuer_id,
                                std::string_view der = {});
  absl::Status StoreCertificate(storage::Storage* s, const SignedCert& c,
                                const std::string& issuer_id);
  // A certificate's storage key and record (what StoreCertificate writes).
  static std::string CertKey(const SignedCert& c);
  static std::string CertRecord(const SignedCert& c, const std::string& issuer_id);

  // Shared by the path files.
  absl::StatusOr<std::shared_ptr<const Issuer>> ResolveIssuer(storage::Storage* s,
                                                              std::string_view ref);
  absl::StatusOr<std::vector<std::shared_ptr<const Issuer>>> AllIssuers(storage::Storage* s);
  absl::StatusOr<std::shared_ptr<const KeyEntry>> ResolveKey(storage::Storage* s,
                                                             std::string_view ref);
  absl::StatusOr<UrlConfig> LoadUrls(storage::Storage* s);
  absl::StatusOr<CrlConfig> LoadCrlConfig(storage::Storage* s);
  // Saves a new issuer (and its key, if new); sets it default when the mount has none.
  absl::StatusOr<std::string> SaveIssuer(storage::Storage* s, X509* cert, const std::string& key_id,
                                         const std::string& name, bool make_default);
  absl::StatusOr<std::string> SaveKey(storage::Storage* s, EVP_PKEY* key, const std::string& name);
  // After a write of issuer/*, key/*, config/issuers or config/keys.
  void InvalidateIssuers();
  void InvalidateRole(std::string_view name);
  void InvalidateUrls();
  void InvalidateCrlConfig();
  const Clock* clock() const { return clock_; }
  int64_t Now() const;

 protected:
  // Today's 404: `unsupported path "<p>" on a pki mount`.
  absl::Status NotFound(const core::Request& req) const override;

 private:
  PkiBackend(const core::BackendConfig& config, std::vector<PkiPath> table);

  // The path table, file by file. The builders are static so that the constructor can call
  // them before the object exists; their handlers call back through `b`.
  static std::vector<PkiPath> Table(PkiBackend* b);
  static std::vector<PkiPath> IssuerPaths(PkiBackend* b);  // paths_issuers.cc
  static std::vector<PkiPath> RolePaths(PkiBackend* b);    // paths_roles.cc
  static std::vector<PkiPath> IssuePaths(PkiBackend* b);   // paths_issue.cc
  static std::vector<PkiPath> FetchPaths(PkiBackend* b);   // paths_fetch.cc
  static std::vector<PkiPath> RevokePaths(PkiBackend* b);  // paths_revoke.cc
  static std::vector<PkiPath> CrlPaths(PkiBackend* b);     // paths_crl.cc
  static std::vector<PkiPath> TidyPaths(PkiBackend* b);    // paths_tidy.cc
  static std::vector<core::framework::Path> PathsOf(std::vector<PkiPath>& table);
  static std::vector<core::framework::Handler> MissingOpsOf(std::vector<PkiPath>& table);
  // The 405 the framework gives for `p`, for the operations Handle answers itself (HEAD).
  static absl::Status Unsupported(const core::framework::Path& p, const core::Request& req);

  // paths_issuers.cc
  absl::StatusOr<core::Response> GenerateRoot(core::Request& req, const FieldData& d, bool rotate);
  // type_override: the type when the path has none (intermediate/cross-sign is "existing").
  absl::StatusOr<core::Response> GenerateIntermediate(core::Request& req, const FieldData& d,
                                                      std::string_view type_override = {});
  absl::StatusOr<core::Response> ImportBundle(core::Request& req, const FieldData& d,
                                              std::string_view field);
  absl::StatusOr<core::Response> DeleteRoot(core::Request& req);
  absl::StatusOr<core::Response> ReadIssuer(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> WriteIssuer(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> DeleteIssuer(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> FetchIssuer(core::Request& req, const FieldData& d);
  // An issuer/<ref>/... path the issuer does not serve with this operation: the issuer is
  // resolved first (400 when unknown), then 404 `unsupported path "issuer/<ref>/..."`.
  absl::StatusOr<core::Response> IssuerSubpathNotFound(core::Request& req, std::string_view ref);
  absl::StatusOr<core::Response> ListIssuers(core::Request& req);
  absl::StatusOr<core::Response> ListKeys(core::Request& req);
  absl::StatusOr<core::Response> ReadKey(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> WriteKey(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> DeleteKey(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> ReadConfigIssuers(core::Request& req);
  absl::StatusOr<core::Response> WriteConfigIssuers(core::Request& req);
  absl::StatusOr<core::Response> ReadConfigKeys(core::Request& req);
  absl::StatusOr<core::Response> WriteConfigKeys(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> ReadConfigUrls(core::Request& req);
  absl::StatusOr<core::Response> WriteConfigUrls(core::Request& req, const FieldData& d);

  // paths_roles.cc
  absl::StatusOr<core::Response> ListRoles(core::Request& req);
  absl::StatusOr<core::Response> ReadRole(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> WriteRole(core::Request& req, const FieldData& d);  // and PATCH
  absl::StatusOr<core::Response> DeleteRole(core::Request& req, const FieldData& d);
  absl::StatusOr<std::shared_ptr<const Role>> LoadRole(storage::Storage* s, std::string_view name);

  // paths_issue.cc
  absl::StatusOr<core::Response> Issue(core::Request& req, const FieldData& d, bool with_csr);
  absl::StatusOr<core::Response> SignVerbatim(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> SignIntermediate(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> SignSelfIssued(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> RevokeIssuer(core::Request& req, const FieldData& d);
  // Adds config/urls to `t`, signs it with `issuer` and stores the result unless `no_store`.
  // A leaf is written as DER directly (crypto::SignLeafDer) when the template allows; no X509
  // object is made for it.
  absl::StatusOr<SignedCert> SignAndStore(core::Request& req, crypto::CertTemplate& t,
                                          const X509_PUBKEY* spki, const Issuer& issuer,
                                          bool no_store);

  // paths_fetch.cc
  absl::StatusOr<core::Response> CaCert(core::Request& req, std::string_view form);
  absl::StatusOr<core::Response> CaChain(core::Request& req);
  absl::StatusOr<core::Response> ReadCaAsCert(core::Request& req);
  absl::StatusOr<core::Response> ReadCaChainAsCert(core::Request& req);
  absl::StatusOr<core::Response> ReadCrlAsCert(core::Request& req);
  // cert/<serial> (form ""), cert/<serial>/raw ("der"), cert/<serial>/raw/pem ("pem").
  absl::StatusOr<core::Response> ReadCert(core::Request& req, std::string_view serial,
                                          std::string_view form);
  absl::StatusOr<core::Response> ListCerts(core::Request& req, std::string_view prefix);

  // paths_revoke.cc
  absl::StatusOr<core::Response> Revoke(core::Request& req, const FieldData& d, bool with_key);

  // paths_crl.cc
  absl::StatusOr<core::Response> CrlPath(core::Request& req, std::string_view issuer_ref,
                                         std::string_view form);
  absl::StatusOr<core::Response> RotateCrl(core::Request& req);
  absl::StatusOr<core::Response> ReadConfigCrl(core::Request& req);
  absl::StatusOr<core::Response> WriteConfigCrl(core::Request& req, const FieldData& d);

 public:
  // Rebuilds and stores the issuer's CRL from its revocation index (paths_crl.cc).
  absl::Status RebuildCrl(storage::Storage* s, const Issuer& issuer);

 private:
  // paths_tidy.cc
  absl::StatusOr<core::Response> Tidy(core::Request& req, const FieldData& d);
  absl::StatusOr<core::Response> ReadTidyStatus(core::Request& req);
  void RunTidy(storage::Storage* s, TidyStatus params);
  // Stops the tidy thread, if any, and waits for it.
  void StopTidy();

  absl::Status LoadIssuersLocked(storage::Storage* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* clock_;
  core::BackendConfig config_;
  // Parallel to paths(): what each path answers an operation it does not declare.
  std::vector<core::framework::Handler> missing_op_;

  // The caches. A load that reads storage outside the lock (roles, URLs, CRL config) inserts
  // its result only when the cache's generation has not moved since it started, so an
  // invalidation that races with it is never undone by a stale value.
  mutable Mutex mu_;
  bool issuers_loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::shared_ptr<const Issuer>> issuers_ ABSL_GUARDED_BY(mu_);  // by id
  std::string default_issuer_ ABSL_GUARDED_BY(mu_);
  std::string default_key_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const KeyEntry>> keys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const Role>, std::less<>> roles_ ABSL_GUARDED_BY(mu_);
  uint64_t roles_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<UrlConfig> urls_ ABSL_GUARDED_BY(mu_);
  uint64_t urls_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<CrlConfig> crl_config_ ABSL_GUARDED_BY(mu_);
  uint64_t crl_config_generation_ ABSL_GUARDED_BY(mu_) = 0;

  // One CRL build at a time: it serializes the read-modify-write of crls/<issuer> in storage
  // (the CRL number); it guards no member.
  Mutex crl_mu_;

  // The certificate counts of AppendMetrics and tidy-status (pki_metrics.cc): counted by listing
  // certs/ and revoked/, reused until the listing is due again. One count at a time.
  struct CertCounts {
    bool valid = false;
    int64_t stored = 0, revoked = 0;
    std::chrono::steady_clock::time_point due;  // when the next read counts again
  };
  absl::StatusOr<CertCounts> Counts(storage::Storage* s);
  Mutex counts_mu_;
  CertCounts counts_ ABSL_GUARDED_BY(counts_mu_);

  Mutex tidy_mu_;
  TidyStatus tidy_status_ ABSL_GUARDED_BY(tidy_mu_);
  std::thread tidy_thread_ ABSL_GUARDED_BY(tidy_mu_);
  std::atomic<bool> stopping_{false};
};

// Request fields shared by CA generation and issuance.
// Subject attributes: organization, ou, country, locality, province, street_address,
// postal_code, serial_number (the subject attribute).
std::map<std::string, FieldSchema> SubjectFields();
absl::Status ApplySubjectFields(const FieldData& d, crypto::CertTemplate* t);
// Names: alt_names (DNS or email), ip_sans, uri_sans, other_sans ("oid;UTF8:value").
std::map<std::string, FieldSchema> SanFields();
absl::Status ApplySanFields(const FieldData& d, crypto::CertTemplate* t);
// Adds the common name to the SANs as Vault does (email when it has '@', DNS when it is a
// hostname), unless exclude_cn_from_sans.
void AddCnToSans(crypto::CertTemplate* t);
bool IsHostname(std::string_view name, bool allow_wildcard);
// ttl and not_after.
std::map<std::string, FieldSchema> TtlFields();
// notAfter from ttl / not_after, capped by max_ttl (with a warning) and by the issuer per its
// leaf_not_after_behavior.
absl::StatusOr<int64_t> ComputeNotAfter(const FieldData& d, int64_t now, int64_t default_ttl,
                                        int64_t max_ttl, const Issuer* issuer,
                                        std::vector<std::string>* warnings);
// format (and private_key_format when the response can hold a key).
std::map<std::string, FieldSchema> FormatFields(bool with_key);
// certificate, issuing_ca, ca_chain, serial_number, expiration in the requested format.
// `der`: the certificate's DER when known (else it is encoded here).
absl::Status FormatCertificate(json::object& out, X509* cert, const Issuer* issuer,
                               std::string_view format, bool remove_roots,
                               std::string_view der = {});
absl::Status FormatCertificate(json::object& out, const SignedCert& c, const Issuer* issuer,
                               std::string_view format, bool remove_roots);
// The response's format and private_key_format, checked before anything is signed or stored.
absl::Status CheckFormats(std::string_view format, std::string_view key_format);
absl::Status AddPrivateKey(json::object& out, EVP_PKEY* key, std::string_view format,
                           std::string_view key_format);

// Shared storage and response helpers.
// The JSON object stored at `key`; nullopt when absent, DataLoss when not an object.
absl::StatusOr<std::optional<json::object>> GetJson(storage::Storage* s, std::string_view key);
// A response sent as it is (DER, PEM), outside Vault's JSON envelope.
core::Response RawBody(std::string body, std::string content_type);
// InvalidArgument unless the mount holds the issuer's private key.
absl::Status RequireKey(const Issuer& issuer, std::string_view action);
// The request's "csr" field, parsed and signature-checked.
absl::StatusOr<crypto::CsrInfo> CsrField(const FieldData& d);

// Shared response helpers.
std::string HyphenSerial(std::string_view colon);
std::string Rfc3339(int64_t unix_seconds);

// Storage pages for CRL builds and tidy.
inline constexpr size_t kPage = 1000;
int64_t GetInt(const json::object& o, std::string_view k);  // 0 when absent or not an integer
// A stored certificate record's certificate.
absl::StatusOr<crypto::Cert> CertFromRecord(const json::object& rec);
// The revocation index entry name: "<hyphen serial>_<revocation unix time>", so the CRL is built
// from listing alone.
std::string IndexName(const std::string& hyphen, int64_t t);

}  // namespace coffer::engines::pki
