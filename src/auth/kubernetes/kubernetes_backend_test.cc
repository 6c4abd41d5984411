// The kubernetes auth method through a real core: config and role validation with Vault's
// messages, and logins with real JWTs signed in the test by RSA and EC P-256 keys it makes,
// checked against pem_keys or by a fake TokenReview API.
#include "auth/kubernetes/kubernetes_backend.h"

#include <gtest/gtest.h>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/jwt_test_util.h"
#include "registry/builtin.h"
#include "storage/memory_storage.h"
#include "util/encoding.h"
#include "util/mutex.h"

namespace coffer::auth::kubernetes {
namespace {
namespace json = boost::json;
using core::Operation;
using crypto::KeyType;
using crypto::testing::MakeJwt;
using crypto::testing::MakeKey;
using crypto::testing::PublicPem;

constexpr int64_t kNow = 1800000000;  // the FakeClock's start

// A TokenReview API that answers what the test says and records what it was asked.
class FakeReviewer final : public TokenReviewer {
 public:
  absl::StatusOr<ReviewResult> Review(const ReviewRequest& req) override {
    MutexLock l(&mu_);
    last_ = req;
    ++calls_;
    return answer_;
  }
  void Answer(absl::StatusOr<ReviewResult> a) {
    MutexLock l(&mu_);
    answer_ = std::move(a);
  }
  ReviewRequest Last() {
    MutexLock l(&mu_);
    return last_;
  }
  int Calls() {
    MutexLock l(&mu_);
    return calls_;
  }

 private:
  Mutex mu_;
  absl::StatusOr<ReviewResult> answer_ ABSL_GUARDED_BY(mu_) = ReviewResult{"app", "default",
                                                                           "uid-1"};
  ReviewRequest last_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class KubernetesAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::CoreOptions o;
    o.physical = &phys_;
    o.clock = &clock_;
    o.tidy_interval = std::chrono::milliseconds(0);
    registry::AddBackends(o);
    // The method under test with the fake TokenReview API and no pod files.
    auto reviewer = reviewer_;
    o.auth_factories["kubernetes"] = [reviewer](const core::BackendConfig& c) {
      return NewBackend(c,
                        Options{.reviewer = reviewer, .local_ca_path = "", .local_jwt_path = ""});
    };
    core_ = std::move(*core::Core::Create(std::move(o)));
    auto res = core_->Initialize(1, 1);
    ASSERT_TRUE(res.ok());
    root_ = res->root_token;
    ASSERT_TRUE(core_->Unseal(HexEncode(res->keys[0].view()), false).ok());
    ASSERT_TRUE(Do(Operation::kUpdate, "sys/auth/kubernetes", {{"type", "kubernetes"}}).ok());
  }

  absl::StatusOr<core::Response> Do(Operation op, std::string path, json::object data = {},
                                    const std::optional<std::string>& token = std::nullopt) {
    core::Request r;
    r.op = op;
    r.path = std::move(path);
    r.data = std::move(data);
    r.client_token = token.value_or(root_);
    r.remote_address = remote_;
    return core_->Handle(r);
  }
  absl::StatusOr<core::Response> Login(const std::string& jwt, const std::string& role = "app") {
    return Do(Operation::kUpdate, "auth/kubernetes/login", {{"role", role}, {"jwt", jwt}}, "");
  }

  // Claims of a projected service account token for default/app.
  static json::object Claims() {
    return json::object{{"iss", "https://kubernetes.default.svc"},
                        {"sub", "system:serviceaccount:default:app"},
                        {"aud", json::array{"vault"}},
                        {"iat", kNow - 60},
                        {"nbf", kNow - 60},
                        {"exp", kNow + 3600},
                        {"kubernetes.io",
                         {{"namespace", "default"},
                          {"serviceaccount", {{"name", "app"}, {"uid", "uid-1"}}},
                          {"pod", {{"name", "app-5d9f"}, {"uid", "pod-uid"}}}}}};
  }

  // pem_keys holding both test keys, and role "app" for default/app.
  void ConfigureWithKeys(const json::object& extra = {}) {
    json::object cfg{{"kubernetes_host", "https://10.0.0.1:6443"},
                     {"pem_keys", json::array{PublicPem(rsa_.get()), PublicPem(ec_.get())}}};
    for (auto& [k, v] : extra) cfg[k] = v;
    auto r = Do(Operation::kUpdate, "auth/kubernetes/config", cfg);
    ASSERT_TRUE(r.ok()) << r.status();
    r = Do(Operation::kUpdate, "auth/kubernetes/role/app",
           {{"bound_service_account_names", "app"},
            {"bound_service_account_namespaces", "default"},
            {"token_policies", "app-read,ops"},
            {"token_ttl", "20m"}});
    ASSERT_TRUE(r.ok()) << r.status();
  }

  void ExpectRefused(const absl::StatusOr<core::Response>& r, int status,
                     const std::string& message) {
    ASSERT_FALSE(r.ok()) << "expected " << status << " " << message;
    EXPECT_EQ(core::HttpStatusFor(r.status()), status) << r.status();
    EXPECT_NE(r.status().message().find(message), std::string::npos)
        << r.status() << " wanted: " << message;
  }

  storage::MemoryStorage phys_;
  FakeClock clock_;
  std::shared_ptr<FakeReviewer> reviewer_ = std::make_shared<FakeReviewer>();
  std::unique_ptr<core::Core> core_;
  std::string root_;
  std::string remote_ = "127.0.0.1";
  crypto::PKey rsa_ = MakeKey(KeyType::kRsa, 2048);
  crypto::PKey ec_ = MakeKey(KeyType::kEc, 256);
};

TEST_F(KubernetesAuthTest, ConfigIsValidatedAndTheReviewerJwtIsNeverReturned) {
  ExpectRefused(Do(Operation::kRead, "auth/kubernetes/config"), 404, "");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/config", {{"kubernetes_ca_cert", "x"}}),
                400, "no host provided");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/config",
                   {{"kubernetes_host", "https://k8s:6443"}, {"disable_local_ca_jwt", true}}),
                400, "kubernetes_ca_cert must be given when disable_local_ca_jwt is true");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/config",
                   {{"kubernetes_host", "https://k8s:6443"}, {"pem_keys", json::array{"pem_key"}}}),
                400, "data does not contain any valid RSA or ECDSA public keys");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/config",
                   {{"kubernetes_host", "http://10.0.0.1:8080"}}),
                400, "kubernetes_host must use https://");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/config",
                   {{"kubernetes_host", "https://k8s:6443"}, {"bound_service_account_names", "x"}}),
                400, "bound_service_account_names");
  ExpectRefused(
      Do(Operation::kUpdate, "auth/kubernetes/config",
         {{"kubernetes_host", "https://k8s:6443"}, {"use_annotations_as_alias_metadata", true}}),
      400, "not supported");

  // A CA holding no certificate is stored, with a warning (Vault only logs it).
  auto w =
      Do(Operation::kUpdate, "auth/kubernetes/config",
         {{"kubernetes_host", "https://192.168.99.100:8443"},
          {"kubernetes_ca_cert", "-----BEGIN CERTIFICATE-----\\n.....\\n-----END CERTIFICATE-----"},
          {"token_reviewer_jwt", "reviewer-secret"},
          {"issuer", "bob"}});
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->warnings.size(), 1u);
  EXPECT_NE(w->warnings[0].find("TLS verification"), std::string::npos);
  auto r = Do(Operation::kRead, "auth/kubernetes/config");
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string body = json::serialize(*r->data);
  EXPECT_EQ(r->data->at("kubernetes_host").as_string(), "https://192.168.99.100:8443");
  EXPECT_EQ(r->data->at("issuer").as_string(), "bob");
  EXPECT_EQ(r->data->at("disable_iss_validation").as_bool(), true);
  EXPECT_EQ(r->data->at("disable_local_ca_jwt").as_bool(), false);
  EXPECT_EQ(r->data->at("token_reviewer_jwt_set").as_bool(), true);
  EXPECT_EQ(body.find("reviewer-secret"), std::string::npos) << body;
  EXPECT_FALSE(r->data->contains("token_reviewer_jwt"));

  // A write replaces the whole config, as Vault's: the reviewer JWT is gone.
  ASSERT_TRUE(
      Do(Operation::kUpdate, "auth/kubernetes/config", {{"kubernetes_host", "k8s.example:6443"}})
          .ok());
  r = Do(Operation::kRead, "auth/kubernetes/config");
  EXPECT_EQ(r->data->at("token_reviewer_jwt_set").as_bool(), false);
  EXPECT_EQ(r->data->at("issuer").as_string(), "");
}

TEST_F(KubernetesAuthTest, RolesAreValidatedListedReadAndDeletedAsVaultDoes) {
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_namespaces", "default"}}),
                400, "\"bound_service_account_names\" can not be empty");
  ExpectRefused(
      Do(Operation::kUpdate, "auth/kubernetes/role/r", {{"bound_service_account_names", "app"}}),
      400,
      "\"bound_service_account_namespaces\" can not be empty if "
      "\"bound_service_account_namespace_selector\" is not set");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_names", json::array{"*", "app"}},
                    {"bound_service_account_namespaces", "default"}}),
                400, "can not mix \"*\" with values");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_names", "app"},
                    {"bound_service_account_namespace_selector", R"({"matchLabels":{"a":"b"}})"}}),
                400, "bound_service_account_namespace_selector is not supported");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_names", "app"},
                    {"bound_service_account_namespaces", "default"},
                    {"token_ttl", "2h"},
                    {"token_max_ttl", "1h"}}),
                400, "token ttl should not be greater than token max ttl");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_names", "app"},
                    {"bound_service_account_namespaces", "default"},
                    {"alias_name_source", "pod"}}),
                400, "invalid alias_name_source");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/role/r",
                   {{"bound_service_account_names", "app"},
                    {"bound_service_account_namespaces", "default"},
                    {"token_type", "batch"}}),
                400, "Coffer makes service tokens");
  ExpectRefused(Do(Operation::kList, "auth/kubernetes/role"), 404, "");

  // Both bounds "*" are allowed (hvac's "both bounds wildcard permitted").
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/Any",
                 {{"bound_service_account_names", "*"},
                  {"bound_service_account_namespaces", "*"},
                  {"policies", "legacy"},
                  {"ttl", 600}})
                  .ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/web",
                 {{"bound_service_account_names", "web, api-*"},
                  {"bound_service_account_namespaces", json::array{"dev-*"}},
                  {"audience", "vault"},
                  {"alias_name_source", "serviceaccount_name"},
                  {"token_policies", "web"},
                  {"token_bound_cidrs", "10.0.0.0/8"}})
                  .ok());
  auto list = Do(Operation::kList, "auth/kubernetes/role");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(json::serialize(list->data->at("keys")), R"(["any","web"])");

  auto r = Do(Operation::kRead, "auth/kubernetes/role/ANY");  // names are case-insensitive
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(json::serialize(r->data->at("token_policies")), R"(["legacy"])");
  EXPECT_EQ(json::serialize(r->data->at("policies")), R"(["legacy"])");
  EXPECT_EQ(r->data->at("token_ttl").as_int64(), 600);
  EXPECT_EQ(r->data->at("ttl").as_int64(), 600);
  EXPECT_EQ(r->data->at("alias_name_source").as_string(), "serviceaccount_uid");
  EXPECT_EQ(r->data->at("token_type").as_string(), "default");
  EXPECT_FALSE(r->data->contains("audience"));

  r = Do(Operation::kRead, "auth/kubernetes/role/web");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::serialize(r->data->at("bound_service_account_names")), R"(["web","api-*"])");
  EXPECT_EQ(json::serialize(r->data->at("bound_service_account_namespaces")), R"(["dev-*"])");
  EXPECT_EQ(r->data->at("bound_service_account_namespace_selector").as_string(), "");
  EXPECT_EQ(r->data->at("audience").as_string(), "vault");
  EXPECT_EQ(r->data->at("alias_name_source").as_string(), "serviceaccount_name");
  EXPECT_EQ(json::serialize(r->data->at("token_bound_cidrs")), R"(["10.0.0.0/8"])");
  EXPECT_FALSE(r->data->contains("policies"));

  // An update changes only what it gives.
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/web", {{"token_ttl", "5m"}}).ok());
  r = Do(Operation::kRead, "auth/kubernetes/role/web");
  EXPECT_EQ(r->data->at("token_ttl").as_int64(), 300);
  EXPECT_EQ(r->data->at("audience").as_string(), "vault");

  ASSERT_TRUE(Do(Operation::kDelete, "auth/kubernetes/role/web").ok());
  ExpectRefused(Do(Operation::kRead, "auth/kubernetes/role/web"), 404, "");
  ASSERT_TRUE(Do(Operation::kDelete, "auth/kubernetes/role/web").ok());  // idempotent
}

TEST_F(KubernetesAuthTest, ATokenSignedByAPemKeyLogsInWithTheRolesPoliciesAndMetadata) {
  ConfigureWithKeys();
  for (auto* key : {rsa_.get(), ec_.get()}) {
    const bool ec = key == ec_.get();
    auto r = Login(MakeJwt(key, ec ? "ES256" : "RS256", Claims()));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->auth);
    const json::object& auth = *r->auth;
    EXPECT_EQ(json::serialize(auth.at("policies")), R"(["app-read","default","ops"])");
    EXPECT_EQ(json::serialize(auth.at("metadata")),
              json::serialize(json::object{{"role", "app"},
                                           {"service_account_name", "app"},
                                           {"service_account_namespace", "default"},
                                           {"service_account_secret_name", ""},
                                           {"service_account_uid", "uid-1"}}));
    EXPECT_EQ(auth.at("lease_duration").as_int64(), 1200);
    // The token works and is what lookup-self says.
    const std::string token(auth.at("client_token").as_string());
    auto self = Do(Operation::kRead, "auth/token/lookup-self", {}, token);
    ASSERT_TRUE(self.ok()) << self.status();
    EXPECT_EQ(self->data->at("display_name").as_string(), "kubernetes-default-app");
    EXPECT_EQ(self->data->at("meta").at("service_account_uid").as_string(), "uid-1");
  }
  // With pem_keys the TokenReview is still asked (Vault does so too): a deleted service
  // account's token, however well signed, stops working.
  EXPECT_GT(reviewer_->Calls(), 0);
}

TEST_F(KubernetesAuthTest, EachBadTokenIsRefusedNamingTheReason) {
  ConfigureWithKeys(
      {{"disable_iss_validation", false}, {"issuer", "https://kubernetes.default.svc"}});
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/app", {{"audience", "vault"}}).ok());
  ASSERT_TRUE(Login(MakeJwt(rsa_.get(), "RS256", Claims())).ok());

  crypto::PKey stranger = MakeKey(KeyType::kRsa, 2048);
  ExpectRefused(Login(MakeJwt(stranger.get(), "RS256", Claims())), 403,
                "signature does not verify with any of the configured pem_keys");
  json::object c = Claims();
  c["exp"] = kNow - 1;
  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", c)), 403, "token is expired");
  c = Claims();
  c["nbf"] = kNow + 120;
  ExpectRefused(Login(MakeJwt(ec_.get(), "ES256", c)), 403, "token is not valid yet");
  c = Claims();
  c["iss"] = "https://evil.example";
  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", c)), 403, "invalid token issuer");
  c = Claims();
  c["aud"] = "something-else";
  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", c)), 403, "invalid audience");
  c = Claims();
  c["kubernetes.io"].as_object()["namespace"] = "kube-system";
  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", c)), 403, "namespace not authorized");
  c = Claims();
  c["kubernetes.io"].as_object()["serviceaccount"].as_object()["name"] = "admin";
  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", c)), 403, "service account name not authorized");

  // Unsigned and symmetric tokens are refused whatever their claims.
  const std::string claims = crypto::testing::B64Url(json::serialize(Claims()));
  ExpectRefused(Login(crypto::testing::B64Url(R"({"alg":"none"})") + "." + claims + "."), 400,
                "\"none\" is not accepted");
  ExpectRefused(Login(crypto::testing::B64Url(R"({"alg":"HS256"})") + "." + claims + ".c2ln"), 400,
                "\"HS256\" is not accepted");
  ExpectRefused(Login("not-a-jwt"), 400, "compact JWS format must have three parts");
  // A valid token's claims re-signed as ES256 with the RSA key's bytes: no key verifies it.
  std::string es = MakeJwt(rsa_.get(), "RS256", Claims());
  es = crypto::testing::B64Url(R"({"alg":"ES256"})") + es.substr(es.find('.'));
  ExpectRefused(Login(es), 403, "signature does not verify");

  ExpectRefused(Login(MakeJwt(rsa_.get(), "RS256", Claims()), "ghost"), 400,
                "invalid role name \"ghost\"");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/login", {{"role", "app"}}, ""), 400,
                "missing jwt");
  ExpectRefused(Do(Operation::kUpdate, "auth/kubernetes/login", {{"jwt", "x"}}, ""), 400,
                "missing role");
}

TEST_F(KubernetesAuthTest, GlobsLegacyTokensAndBoundCidrs) {
  ConfigureWithKeys();
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/dev",
                 {{"bound_service_account_names", "api-*"},
                  {"bound_service_account_namespaces", "dev-*"},
                  {"alias_name_source", "serviceaccount_name"},
                  {"token_policies", "dev"},
                  {"token_bound_cidrs", "10.1.0.0/16"}})
                  .ok());
  // A legacy (secret-based) token's claims.
  json::object legacy{{"iss", "kubernetes/serviceaccount"},
                      {"sub", "system:serviceaccount:dev-blue:api-server"},
                      {"kubernetes.io/serviceaccount/namespace", "dev-blue"},
                      {"kubernetes.io/serviceaccount/secret.name", "api-server-token-x"},
                      {"kubernetes.io/serviceaccount/service-account.name", "api-server"},
                      {"kubernetes.io/serviceaccount/service-account.uid", "uid-9"}};
  const std::string jwt = MakeJwt(ec_.get(), "ES256", legacy);
  ExpectRefused(Login(jwt, "dev"), 403, "token_bound_cidrs");
  remote_ = "10.1.2.3";
  reviewer_->Answer(ReviewResult{"api-server", "dev-blue", "uid-9"});
  auto r = Login(jwt, "dev");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->auth->at("metadata").at("service_account_secret_name").as_string(),
            "api-server-token-x");
  EXPECT_EQ(json::serialize(r->auth->at("policies")), R"(["default","dev"])");
  legacy["kubernetes.io/serviceaccount/namespace"] = "prod-blue";
  ExpectRefused(Login(MakeJwt(ec_.get(), "ES256", legacy), "dev"), 403, "namespace not authorized");

  EXPECT_TRUE(GlobMatch("dev-*", "dev-a"));
  EXPECT_FALSE(GlobMatch("dev-*", "de"));
  EXPECT_TRUE(GlobMatch("*-prod", "web-prod"));
  EXPECT_FALSE(GlobMatch("*-prod", "prod"));
  EXPECT_TRUE(GlobMatch("*mid*", "amidb"));
  // '*' anywhere, as Vault's StrListContainsGlob (go-glob): app-*-prod takes app-x-prod.
  EXPECT_TRUE(GlobMatch("a*b", "axb"));
  EXPECT_TRUE(GlobMatch("app-*-prod", "app-web-prod"));
  EXPECT_FALSE(GlobMatch("app-*-prod", "app-web-dev"));
  EXPECT_FALSE(GlobMatch("app-*-prod", "app-prod"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_FALSE(GlobMatch("a", "ab"));
  EXPECT_TRUE(GlobMatch("a*b", "a*b"));
  EXPECT_TRUE(GlobMatch("*", "x"));  // go-glob; a role cannot mix "*" with other names
}

TEST_F(KubernetesAuthTest, WithoutPemKeysTheTokenReviewApiDecides) {
  ASSERT_TRUE(
      Do(Operation::kUpdate, "auth/kubernetes/config",
         {{"kubernetes_host", "https://10.0.0.1:6443/"},
          {"kubernetes_ca_cert", "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----"},
          {"token_reviewer_jwt", "reviewer-jwt"}})
          .ok());
  ASSERT_TRUE(Do(Operation::kUpdate, "auth/kubernetes/role/app",
                 {{"bound_service_account_names", "app"},
                  {"bound_service_account_namespaces", "default"},
                  {"token_policies", "app-read"}})
                  .ok());
  // Any key: the signature is the API server's to check.
  crypto::PKey cluster_key = MakeKey(KeyType::kRsa, 2048);
  const std::string jwt = MakeJwt(cluster_key.get(), "RS256", Claims());
  auto r = Login(jwt);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(json::serialize(r->auth->at("policies")), R"(["app-read","default"])");
  ReviewRequest asked = reviewer_->Last();
  EXPECT_EQ(asked.host, "https://10.0.0.1:6443/");
  EXPECT_EQ(asked.bearer, "reviewer-jwt");
  EXPECT_EQ(asked.token, jwt);
  EXPECT_EQ(asked.audiences, std::vector<std::string>{"vault"});
  EXPECT_EQ(asked.ca_pem, "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----");

  // The API server says no: 403 with its reason.
  reviewer_->Answer(absl::PermissionDeniedError("lookup failed: token has been invalidated"));
  ExpectRefused(Login(jwt), 403, "lookup failed: token has been invalidated");
  // It names another service account than the claims do.
  reviewer_->Answer(ReviewResult{"other", "default", "uid-1"});
  ExpectRefused(Login(jwt), 403, "JWT names did not match");
  reviewer_->Answer(ReviewResult{"app", "default", "uid-2"});
  ExpectRefused(Login(jwt), 403, "JWT UIDs did not match");
  // It cannot be reached: 503, not a denial.
  reviewer_->Answer(absl::UnavailableError("the Kubernetes API server did not answer"));
  ExpectRefused(Login(jwt), 503, "did not answer");

  // Claims are checked before the API server is asked.
  const int calls = reviewer_->Calls();
  json::object c = Claims();
  c["kubernetes.io"].as_object()["namespace"] = "kube-system";
  ExpectRefused(Login(MakeJwt(cluster_key.get(), "RS256", c)), 403, "namespace not authorized");
  c = Claims();
  c["exp"] = kNow - 5;
  ExpectRefused(Login(MakeJwt(cluster_key.get(), "RS256", c)), 403, "token is expired");
  EXPECT_EQ(reviewer_->Calls(), calls);

  // Without a reviewer JWT the login JWT authorizes its own review, as in Vault.
  reviewer_->Answer(ReviewResult{"app", "default", "uid-1"});
  ASSERT_TRUE(
      Do(Operation::kUpdate, "auth/kubernetes/config", {{"kubernetes_host", "https://10.0.0.1"}})
          .ok());
  ASSERT_TRUE(Login(jwt).ok());
  EXPECT_EQ(reviewer_->Last().bearer, jwt);
  EXPECT_EQ(reviewer_->Last().ca_pem, "");
}

TEST(KubernetesTokenReviewTest, AnswersOfTheApiServerBecomeResultsOrReasons) {
  auto ok = ParseReviewAnswer(
      201, R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","status":{
        "authenticated":true,"user":{"username":"system:serviceaccount:ns1:app","uid":"u1"}}})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->name, "app");
  EXPECT_EQ(ok->namespace_name, "ns1");
  EXPECT_EQ(ok->uid, "u1");
  auto no = ParseReviewAnswer(200, R"({"status":{"authenticated":false,"error":"token expired"}})");
  EXPECT_EQ(no.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(no.status().message(), "lookup failed: token expired");
  no = ParseReviewAnswer(200, R"({"status":{"authenticated":false}})");
  EXPECT_EQ(no.status().message(), "lookup failed: service account jwt not valid");
  no = ParseReviewAnswer(401, "Unauthorized");
  EXPECT_EQ(no.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(no.status().message().find("service account unauthorized"), std::string::npos);
  no = ParseReviewAnswer(403, R"({"kind":"Status","reason":"Forbidden"})");
  EXPECT_NE(no.status().message().find("system:auth-delegator"), std::string::npos);
  no = ParseReviewAnswer(200, R"({"status":{"authenticated":true,"user":{"username":"alice"}}})");
  EXPECT_EQ(no.status().message(), "lookup failed: unexpected username format");
  no = ParseReviewAnswer(
      200, R"({"status":{"authenticated":true,"user":{"username":"system:node:a:b"}}})");
  EXPECT_EQ(no.status().message(), "lookup failed: username returned is not a service account");
  EXPECT_EQ(ParseReviewAnswer(500, "").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ParseReviewAnswer(200, "<html>").status().code(), absl::StatusCode::kUnavailable);

  ReviewRequest req;
  req.token = "t.o.k";
  req.audiences = {"vault"};
  EXPECT_EQ(ReviewBody(req), R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",)"
                             R"("spec":{"token":"t.o.k","audiences":["vault"]}})");
  EXPECT_TRUE(ValidateHost("https://10.0.0.1:6443").ok());
  EXPECT_TRUE(ValidateHost("k8s.example:6443").ok());
  EXPECT_TRUE(ValidateHost("http://127.0.0.1:8080").ok());
  EXPECT_FALSE(ValidateHost("http://10.0.0.1:8080").ok());
  EXPECT_FALSE(ValidateHost("ftp://x").ok());
  EXPECT_FALSE(ValidateHost("https://").ok());
}

}  // namespace
}  // namespace coffer::auth::kubernetes
