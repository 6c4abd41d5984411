// Internals of the PKI engine shared by its path files. Not part of any public interface.
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
#pragma once

#include <openssl/x509v3.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "boost/json.hpp"
#include "core/backend.h"
#include "crypto/x509.h"
#include "util/clock.h"

namespace coffer::engines::pki {

namespace json = boost::json;

// ---- string helpers (std::string_view; Debian's abseil has its own string_view) ----
inline bool StartsWith(std::string_view s, std::string_view p) { return s.starts_with(p); }
inline bool EndsWith(std::string_view s, std::string_view p) { return s.ends_with(p); }
inline bool Contains(std::string_view s, std::string_view p) {
  return s.find(p) != std::string_view::npos;
}
bool EqualsFold(std::string_view a, std::string_view b);
std::vector<std::string_view> Split(std::string_view s, char sep);

// ---- request field helpers (Vault's field types) ----
// A list given as a JSON array of strings or a comma-separated string.
absl::StatusOr<std::optional<std::vector<std::string>>> StringList(const json::object& o,
                                                                   std::string_view key);
absl::StatusOr<std::optional<int64_t>> DurationField(const json::object& o, std::string_view key);
std::string GetString(const json::object& o, std::string_view key);  // "" when absent
json::array ToArray(const std::vector<std::string>& v);

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
  // Applies the fields present in `data` over `*this`; unknown keys are returned in `unknown`.
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

class PkiBackend final : public core::Backend {
 public:
  explicit PkiBackend(const Clock* clock) : clock_(clock) {}
  ~PkiBackend() override;

  absl::StatusOr<core::Response> Handle(core::Request& req) override;
  absl::StatusOr<std::optional<bool>> Exists(core::Request& req) override;
  const core::SpecialPaths& Special() const override;

  // Stores a certificate record directly (bench/pki_scale fills a mount this way).
  // `der` is the certificate's DER when the caller has it already (else it is encoded here).
  absl::Status StoreCertificate(storage::Storage* s, X509* cert, const std::string& issuer_id,
                                std::string_view der = {});

 private:
  // paths_issuers.cc
  absl::StatusOr<core::Response> GenerateRoot(core::Request& req, std::string_view type,
                                              bool rotate);
  absl::StatusOr<core::Response> GenerateIntermediate(core::Request& req, std::string_view type);
  absl::StatusOr<core::Response> ImportBundle(core::Request& req, std::string_view field);
  absl::StatusOr<core::Response> IssuerPath(core::Request& req, std::string_view rest);
  absl::StatusOr<core::Response> ListIssuers(core::Request& req);
  absl::StatusOr<core::Response> ListKeys(core::Request& req);
  absl::StatusOr<core::Response> KeyPath(core::Request& req, std::string_view ref);
  absl::StatusOr<core::Response> ConfigIssuers(core::Request& req);
  absl::StatusOr<core::Response> ConfigKeys(core::Request& req);
  absl::StatusOr<core::Response> ConfigUrls(core::Request& req);
  absl::StatusOr<core::Response> CaCert(core::Request& req, std::string_view form);
  absl::StatusOr<core::Response> CaChain(core::Request& req);

  // paths_roles.cc
  absl::StatusOr<core::Response> RolePath(core::Request& req, std::string_view name);
  absl::StatusOr<std::shared_ptr<const Role>> LoadRole(storage::Storage* s, std::string_view name);

  // paths_issue.cc
  absl::StatusOr<core::Response> Issue(core::Request& req, std::string_view role_name,
                                       std::string_view issuer_ref, bool with_csr);
  absl::StatusOr<core::Response> SignVerbatim(core::Request& req, std::string_view role_name,
                                              std::string_view issuer_ref);
  absl::StatusOr<core::Response> SignIntermediate(core::Request& req, std::string_view issuer_ref);
  absl::StatusOr<core::Response> SignSelfIssued(core::Request& req, std::string_view issuer_ref);
  // Adds config/urls to `t`, signs it with `issuer` and stores the result unless `no_store`.
  // The certificate's DER (encoded once, for the record and the response) goes to `der`.
  absl::StatusOr<crypto::Cert> SignAndStore(core::Request& req, crypto::CertTemplate& t,
                                            const X509_PUBKEY* spki, const Issuer& issuer,
                                            bool no_store, std::string* der);

  // paths_revoke.cc
  absl::StatusOr<core::Response> Revoke(core::Request& req, bool with_key);
  absl::StatusOr<core::Response> ReadCert(core::Request& req, std::string_view rest);
  absl::StatusOr<core::Response> ListCerts(core::Request& req, std::string_view prefix);
  absl::StatusOr<core::Response> CrlPath(core::Request& req, std::string_view issuer_ref,
                                         std::string_view form);
  absl::StatusOr<core::Response> RotateCrl(core::Request& req);
  absl::StatusOr<core::Response> ConfigCrl(core::Request& req);
  absl::StatusOr<core::Response> Tidy(core::Request& req);
  absl::StatusOr<core::Response> TidyStatusPath(core::Request& req);
  absl::Status RebuildCrl(storage::Storage* s, const Issuer& issuer);
  void RunTidy(storage::Storage* s, TidyStatus params);

 public:
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
  void InvalidateCaches();
  const Clock* clock() const { return clock_; }
  int64_t Now() const;

 private:
  absl::Status LoadIssuersLocked(storage::Storage* s);

  const Clock* clock_;
  std::shared_mutex mu_;
  bool issuers_loaded_ = false;
  std::map<std::string, std::shared_ptr<const Issuer>> issuers_;  // by id
  std::string default_issuer_;
  std::string default_key_;
  std::map<std::string, std::shared_ptr<const KeyEntry>> keys_;
  std::map<std::string, std::shared_ptr<const Role>, std::less<>> roles_;
  std::optional<UrlConfig> urls_;
  std::optional<CrlConfig> crl_config_;

  std::mutex crl_mu_;  // one CRL build at a time

  std::mutex tidy_mu_;
  TidyStatus tidy_status_;
  std::thread tidy_thread_;
  std::atomic<bool> stopping_{false};
};

// Request fields shared by CA generation and issuance.
// Subject attributes: organization, ou, country, locality, province, street_address,
// postal_code, serial_number (the subject attribute).
absl::Status ApplySubjectFields(const json::object& d, crypto::CertTemplate* t);
// Names: alt_names (DNS or email), ip_sans, uri_sans, other_sans ("oid;UTF8:value").
absl::Status ApplySanFields(const json::object& d, crypto::CertTemplate* t);
// Adds the common name to the SANs as Vault does (email when it has '@', DNS when it is a
// hostname), unless exclude_cn_from_sans.
void AddCnToSans(crypto::CertTemplate* t);
bool IsHostname(std::string_view name, bool allow_wildcard);
// notAfter from ttl / not_after, capped by max_ttl (with a warning) and by the issuer per its
// leaf_not_after_behavior.
absl::StatusOr<int64_t> ComputeNotAfter(const json::object& d, int64_t now, int64_t default_ttl,
                                        int64_t max_ttl, const Issuer* issuer,
                                        std::vector<std::string>* warnings);
// certificate, issuing_ca, ca_chain, serial_number, expiration in the requested format.
// `der`: the certificate's DER when known (else it is encoded here).
absl::Status FormatCertificate(json::object& out, X509* cert, const Issuer* issuer,
                               std::string_view format, bool remove_roots,
                               std::string_view der = {});
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
absl::StatusOr<crypto::CsrInfo> CsrField(const json::object& data);

// Shared response helpers.
std::string HyphenSerial(std::string_view colon);
std::string Rfc3339(int64_t unix_seconds);

}  // namespace coffer::engines::pki
