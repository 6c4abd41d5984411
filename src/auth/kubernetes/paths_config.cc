// config: where the cluster's API server is, how to trust it, and how login tokens are checked.
#include <openssl/pem.h>

#include "auth/kubernetes/internal.h"
#include "boost/json.hpp"
#include "crypto/handles.h"
#include "crypto/jwt.h"
#include "util/status.h"

namespace coffer::auth::kubernetes {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldData;
using core::framework::FieldType;
using core::framework::Path;

namespace {

// How many certificates OpenSSL reads from `pem` (the CA bundle's usable part).
int CountCertificates(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  int n = 0;
  while (bio) {
    crypto::Cert c(PEM_read_bio_X509(bio.get(), nullptr, crypto::NoPassphrase, nullptr));
    if (!c) break;
    ++n;
  }
  crypto::OpenSslError();  // the end of the data leaves an error on the queue
  return n;
}

absl::StatusOr<Response> ReadConfig(Request& req, const FieldData&) {
  ASSIGN_OR_RETURN(auto c, LoadConfig(req.storage));
  if (!c) return absl::NotFoundError("");
  json::array keys;
  for (const auto& k : c->pem_keys) keys.emplace_back(k);
  return Response::Data(json::object{{"kubernetes_host", c->host},
                                     {"kubernetes_ca_cert", c->ca_cert},
                                     {"pem_keys", std::move(keys)},
                                     {"issuer", c->issuer},
                                     {"disable_iss_validation", c->disable_iss_validation},
                                     {"disable_local_ca_jwt", c->disable_local_ca_jwt},
                                     {"token_reviewer_jwt_set", !c->token_reviewer_jwt.empty()},
                                     {"use_annotations_as_alias_metadata", false}});
}

// A write replaces the whole config, as Vault's does: a field left out takes its default.
absl::StatusOr<Response> WriteConfig(State* state, Request& req, const FieldData& d) {
  Config c;
  c.host = d.String("kubernetes_host");
  if (c.host.empty()) return absl::InvalidArgumentError("no host provided");
  RETURN_IF_ERROR(ValidateHost(c.host));
  c.ca_cert = d.String("kubernetes_ca_cert");
  c.token_reviewer_jwt = d.String("token_reviewer_jwt");
  c.pem_keys = d.Strings("pem_keys");
  c.issuer = d.String("issuer");
  c.disable_iss_validation = d.Bool("disable_iss_validation");
  c.disable_local_ca_jwt = d.Bool("disable_local_ca_jwt");
  if (d.Bool("use_annotations_as_alias_metadata"))
    return absl::InvalidArgumentError(
        "use_annotations_as_alias_metadata is not supported by Coffer: it has no identity "
        "store to hold alias metadata");
  if (c.disable_local_ca_jwt && c.ca_cert.empty())
    return absl::InvalidArgumentError(
        "kubernetes_ca_cert must be given when disable_local_ca_jwt is true");
  for (const auto& pem : c.pem_keys) {
    auto key = crypto::ParsePublicKeyPem(pem);
    if (!key.ok()) return absl::InvalidArgumentError(Cat("pem_keys: ", Msg(key.status())));
  }
  Response r;
  // As Vault, a CA holding no certificate is stored (the TokenReview's TLS check will fail),
  // but Coffer says so now rather than only in its log.
  if (!c.ca_cert.empty() && CountCertificates(c.ca_cert) == 0)
    r.warnings.emplace_back(
        "kubernetes_ca_cert holds no PEM certificate OpenSSL can read: TokenReview calls to "
        "kubernetes_host will fail TLS verification");
  MutexLock l(&state->write_mu);
  RETURN_IF_ERROR(req.storage->Put("config", json::serialize(c.ToStorage())));
  return r;
}

}  // namespace

std::vector<Path> ConfigPaths(State* state) {
  std::vector<Path> p;
  p.push_back(
      {.patterns = {"config"},
       .fields =
           {{"kubernetes_host",
             {FieldType::kString,
              "Host must be a host string, a host:port pair, or a URL to the base of the "
              "Kubernetes API server."}},
            {"kubernetes_ca_cert",
             {FieldType::kString,
              "PEM encoded CA cert for use by the TLS client used to talk with the API."}},
            {"token_reviewer_jwt",
             {FieldType::kString,
              "A service account JWT (or other token) used as a bearer token to access the "
              "TokenReview API to validate other JWTs during login. If not set the JWT used for "
              "login will be used to access the API.",
              {},
              false,
              true}},
            {"pem_keys",
             {FieldType::kCommaStringSlice,
              "Optional list of PEM-formatted public keys or certificates used to verify the "
              "signatures of Kubernetes service account JWTs. If a certificate is given, its "
              "public key will be extracted. When set, a login token's signature must verify "
              "with one of them; the TokenReview API is still called, as only the API server "
              "knows whether the token's service account still exists."}},
            {"issuer",
             {FieldType::kString,
              "Optional JWT issuer checked when disable_iss_validation is false (default "
              "\"kubernetes/serviceaccount\")."}},
            {"disable_iss_validation", {FieldType::kBool, "Disable JWT issuer validation.", true}},
            {"disable_local_ca_jwt",
             {FieldType::kBool,
              "Disable defaulting to the local CA cert and service account JWT when running in "
              "a Kubernetes pod.",
              false}},
            {"use_annotations_as_alias_metadata",
             {FieldType::kBool, "Not supported by Coffer: only false is accepted.", false}}},
       .operations = {{Operation::kRead, {ReadConfig, "Reads the configuration"}},
                      {Operation::kUpdate,
                       {[state](Request& r, const FieldData& d) {
                          return WriteConfig(state, r, d);
                        },
                        "Configures the Kubernetes API server and the JWT checks"}}},
       .exists = [](Request& req, const FieldData&) -> absl::StatusOr<std::optional<bool>> {
         ASSIGN_OR_RETURN(auto raw, req.storage->Get("config"));
         return std::optional<bool>(raw.has_value());
       },
       .synopsis = "Configures the JWT Public Key and Kubernetes API information."});
  return p;
}

}  // namespace coffer::auth::kubernetes
