// sys/policies/acl, sys/policy (legacy), sys/capabilities{,-self,-accessor} and sys/auth listing.
#include "boost/json.hpp"
#include "core/core.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::core {
namespace json = boost::json;
namespace {
json::array Names(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}
}  // namespace

absl::StatusOr<Response> Core::HandlePolicies(Request& req, std::string_view p) {
  const bool legacy = p == "policy" || p.substr(0, 7) == "policy/";
  std::string_view name =
      legacy ? (p.size() > 7 ? p.substr(7) : "") : (p.size() > 13 ? p.substr(13) : "");
  if (name.empty()) {
    if (!(req.op == Operation::kList || (legacy && req.op == Operation::kRead)))
      return UnsupportedOperation();
    ASSIGN_OR_RETURN(auto names, policies_->List());
    json::object d{{"keys", Names(names)}};
    if (legacy) d["policies"] = Names(names);
    auto r = Response::Data(std::move(d));
    r.duplicate_data_at_top = legacy;
    return r;
  }
  switch (req.op) {
    case Operation::kRead: {
      ASSIGN_OR_RETURN(auto pol, policies_->Get(name));
      if (!pol) return absl::NotFoundError("");
      auto r = Response::Data(
          json::object{{"name", pol->name}, {legacy ? "rules" : "policy", pol->raw}});
      r.duplicate_data_at_top = legacy;
      return r;
    }
    case Operation::kCreate:
    case Operation::kUpdate: {
      ASSIGN_OR_RETURN(auto text, JsonString(req.data, "policy"));
      if (!text && legacy) {
        ASSIGN_OR_RETURN(text, JsonString(req.data, "rules"));
      }
      if (!text || text->empty())
        return absl::InvalidArgumentError("'policy' parameter not supplied or empty");
      RETURN_IF_ERROR(policies_->Put(name, *text));
      return Response::Empty();
    }
    case Operation::kDelete:
      RETURN_IF_ERROR(policies_->Delete(name));
      return Response::Empty();
    default:
      return UnsupportedOperation();
  }
}

absl::StatusOr<Response> Core::HandleCapabilities(Request& req, std::string_view p) {
  if (req.op != Operation::kUpdate && req.op != Operation::kCreate) return UnsupportedOperation();
  std::vector<std::string> paths;
  if (const auto* v = req.data.if_contains("paths"); v && !v->is_null()) {
    if (v->is_string()) {
      paths.emplace_back(v->as_string());
    } else if (v->is_array()) {
      for (const auto& e : v->as_array()) {
        if (!e.is_string()) return absl::InvalidArgumentError("paths must be a list of strings");
        paths.emplace_back(e.as_string());
      }
    } else {
      return absl::InvalidArgumentError("paths must be a list of strings");
    }
  }
  ASSIGN_OR_RETURN(auto path, JsonString(req.data, "path"));
  if (path) paths.push_back(*path);
  if (paths.empty()) return absl::InvalidArgumentError("'paths' parameter not supplied");
  std::optional<TokenEntry> subject;
  if (p == "capabilities-self") {
    subject = req.token;
  } else if (p == "capabilities") {
    ASSIGN_OR_RETURN(auto tok, JsonString(req.data, "token"));
    if (!tok || tok->empty()) return absl::InvalidArgumentError("'token' parameter not supplied");
    ASSIGN_OR_RETURN(subject, tokens_->Lookup(*tok));
  } else {
    ASSIGN_OR_RETURN(auto acc, JsonString(req.data, "accessor"));
    if (!acc || acc->empty())
      return absl::InvalidArgumentError("'accessor' parameter not supplied");
    ASSIGN_OR_RETURN(subject, tokens_->LookupByAccessor(*acc));
  }
  json::object d;
  json::array all;
  for (auto& path_str : paths) {
    while (!path_str.empty() && path_str.front() == '/') path_str.erase(0, 1);
    std::vector<std::string> caps{"deny"};
    if (subject) {
      ASSIGN_OR_RETURN(auto acl, policies_->AclFor(subject->policies));
      caps = acl->root() ? std::vector<std::string>{"root"}
                         : CapabilityNames(acl->Capabilities(path_str, false));
    }
    d[path_str] = Names(caps);
    if (paths.size() == 1) all = Names(caps);
  }
  if (paths.size() == 1) d["capabilities"] = all;
  auto r = Response::Data(std::move(d));
  r.duplicate_data_at_top = true;
  return r;
}

absl::StatusOr<Response> Core::AuthList() {
  json::object d;
  ReaderMutexLock l(&mounts_mu_);
  for (const auto& [path, m] : mounts_)
    if (path.substr(0, 5) == "auth/") d[path.substr(5)] = m->entry.ToJson();
  auto r = Response::Data(std::move(d));
  r.duplicate_data_at_top = true;
  return r;
}

}  // namespace coffer::core
