#include "auth/kubernetes/token_review.h"

#include "boost/json.hpp"
#include "http/client.h"
#include "util/json.h"
#include "util/json_parse.h"
#include "util/status.h"

namespace coffer::auth::kubernetes {
namespace json = boost::json;

namespace {

constexpr std::string_view kReviewPath = "apis/authentication.k8s.io/v1/tokenreviews";

// kubernetes_host split for http::Call: scheme://host[:port] and the path prefix ending in '/'.
struct Target {
  std::string address, prefix;
};

absl::StatusOr<Target> SplitHost(std::string_view host) {
  std::string_view rest = host;
  std::string scheme = "https://";
  if (rest.substr(0, 8) == "https://") {
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    scheme = "http://";
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return absl::InvalidArgumentError(
        Cat("kubernetes_host \"", host, "\" must be an https:// URL, a host or a host:port"));
  }
  const size_t slash = rest.find('/');
  Target t;
  t.address = Cat(scheme, rest.substr(0, slash));
  t.prefix = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (t.prefix.back() != '/') t.prefix.push_back('/');
  if (rest.substr(0, slash).empty())
    return absl::InvalidArgumentError(Cat("kubernetes_host \"", host, "\" has no host"));
  return t;
}

class HttpTokenReviewer final : public TokenReviewer {
 public:
  absl::StatusOr<ReviewResult> Review(const ReviewRequest& req) override {
    ASSIGN_OR_RETURN(Target t, SplitHost(req.host));
    http::ClientOptions o;
    o.address = t.address;
    o.ca_pem = req.ca_pem;
    o.timeout = std::chrono::seconds(15);
    o.max_response_bytes = size_t{1} << 20;
    o.headers = {{"Authorization", "Bearer " + req.bearer}, {"Accept", "application/json"}};
    auto r = http::Call(o, "POST", Cat(t.prefix, kReviewPath), ReviewBody(req));
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kInvalidArgument)
        return absl::InvalidArgumentError(
            Cat("kubernetes_host or kubernetes_ca_cert is not usable: ", Msg(r.status())));
      return absl::UnavailableError(
          Cat("the Kubernetes API server did not answer the TokenReview: ", Msg(r.status())));
    }
    return ParseReviewAnswer(r->status, r->body);
  }
};

}  // namespace

absl::Status ValidateHost(std::string_view host) {
  ASSIGN_OR_RETURN(Target t, SplitHost(host));
  if (t.address.substr(0, 7) == "http://") {
    std::string_view authority = std::string_view(t.address).substr(7);
    std::string_view name = authority.front() == '[' ? authority.substr(0, authority.find(']') + 1)
                                                     : authority.substr(0, authority.find(':'));
    if (name != "127.0.0.1" && name != "localhost" && name != "[::1]")
      return absl::InvalidArgumentError(
          "kubernetes_host must use https:// (plain http:// is only allowed to 127.0.0.1 or "
          "localhost): the service account tokens under review would cross the network in "
          "clear");
  }
  return absl::OkStatus();
}

std::shared_ptr<TokenReviewer> NewHttpTokenReviewer() {
  return std::make_shared<HttpTokenReviewer>();
}

std::string ReviewBody(const ReviewRequest& req) {
  json::object spec{{"token", req.token}};
  if (!req.audiences.empty()) {
    json::array aud;
    for (const auto& a : req.audiences) aud.emplace_back(a);
    spec["audiences"] = std::move(aud);
  }
  return json::serialize(json::object{{"apiVersion", "authentication.k8s.io/v1"},
                                      {"kind", "TokenReview"},
                                      {"spec", std::move(spec)}});
}

absl::StatusOr<ReviewResult> ParseReviewAnswer(int http_status, std::string_view body) {
  if (http_status == 401)
    return absl::PermissionDeniedError(
        "lookup failed: service account unauthorized; this could mean it has been deleted or "
        "recreated with a new token");
  if (http_status == 403)
    return absl::PermissionDeniedError(
        "lookup failed: the Kubernetes API server refused the TokenReview (HTTP 403): the "
        "reviewer (token_reviewer_jwt, or the login JWT when none is configured) needs the "
        "system:auth-delegator ClusterRole");
  if (http_status < 200 || http_status > 206)
    return absl::UnavailableError(
        Cat("the Kubernetes API server answered the TokenReview with HTTP ", http_status));
  auto v = ParseUntrustedJson(body);
  if (!v.ok() || !v->is_object())
    return absl::UnavailableError("the Kubernetes API server's TokenReview answer is not JSON");
  const json::object& o = v->as_object();
  // A metav1.Status in place of the TokenReview is an error the API server reports.
  if (JsonStringOr(o, "kind") == "Status" && JsonStringOr(o, "status") != "Success")
    return absl::PermissionDeniedError(Cat("lookup failed: ", JsonStringOr(o, "message")));
  const json::object* status = JsonObjectOr(o, "status");
  if (!status) return absl::PermissionDeniedError("lookup failed: service account jwt not valid");
  if (std::string err = JsonStringOr(*status, "error"); !err.empty())
    return absl::PermissionDeniedError(Cat("lookup failed: ", err));
  const auto* authenticated = status->if_contains("authenticated");
  if (!authenticated || !authenticated->is_bool() || !authenticated->as_bool())
    return absl::PermissionDeniedError("lookup failed: service account jwt not valid");
  const json::object* user = JsonObjectOr(*status, "user");
  const std::string username = user ? JsonStringOr(*user, "username") : "";
  // system:serviceaccount:<namespace>:<name>
  std::vector<std::string_view> parts;
  std::string_view rest = username;
  for (size_t colon; (colon = rest.find(':')) != std::string_view::npos;) {
    parts.push_back(rest.substr(0, colon));
    rest.remove_prefix(colon + 1);
  }
  parts.push_back(rest);
  if (parts.size() != 4)
    return absl::PermissionDeniedError("lookup failed: unexpected username format");
  if (parts[0] != "system" || parts[1] != "serviceaccount")
    return absl::PermissionDeniedError("lookup failed: username returned is not a service account");
  return ReviewResult{std::string(parts[3]), std::string(parts[2]),
                      user ? JsonStringOr(*user, "uid") : ""};
}

}  // namespace coffer::auth::kubernetes
