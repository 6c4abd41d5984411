#include "auth/compat_backend.h"

#include <algorithm>

#include "boost/json.hpp"
#include "util/status.h"

namespace coffer::auth {
namespace json = boost::json;
using core::Operation;
using core::Request;
using core::Response;
using core::framework::FieldType;
using core::framework::Path;

namespace {

std::vector<Path> WithBareUnsupported(std::vector<Path> paths) {
  for (auto& p : paths) p.unsupported = "";
  return paths;
}

bool Captured(const CompatBackend::Captures& captures, std::string_view name) {
  return std::any_of(captures.begin(), captures.end(),
                     [&](const auto& c) { return c.first == name; });
}

}  // namespace

CompatBackend::CompatBackend(std::string help, std::vector<Path> paths, core::SpecialPaths special,
                             LegacyFieldRules rules)
    : FrameworkBackend(std::move(help), WithBareUnsupported(std::move(paths)), std::move(special)),
      rules_(std::move(rules)) {}

absl::Status CompatBackend::CheckRawFields(const Request& req, const Path& p,
                                           const Captures& captures) const {
  for (const auto& [name, schema] : p.fields) {
    const json::value* v = req.data.if_contains(name);
    if (!v || v->is_null() || Captured(captures, name)) continue;  // the URL's value wins
    switch (schema.type) {
      case FieldType::kCommaStringSlice:
        if (rules_.list) RETURN_IF_ERROR(rules_.list(name, *v));
        break;
      case FieldType::kMap:
        if (rules_.map) RETURN_IF_ERROR(rules_.map(name, *v));
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Response> CompatBackend::Handle(Request& req) {
  RETURN_IF_ERROR(CheckPath(req));
  Captures captures;
  const Path* p = Match(req.path, &captures, req.op == Operation::kList);
  if (!p) return NotFound(req);
  if (req.op == Operation::kRead) {
    auto help = req.QueryParam("help");
    if (help && (*help == "1" || *help == "true")) return FrameworkBackend::Handle(req);
  }
  RETURN_IF_ERROR(BeforeOperation(req, *p, captures));
  const bool served = p->operations.count(req.op) > 0 ||
                      (req.op == Operation::kCreate && p->operations.count(Operation::kUpdate) > 0);
  if (!served) return UnsupportedOperation();  // as the framework answers, but for HEAD too
  RETURN_IF_ERROR(CheckRawFields(req, *p, captures));

  // An empty duration is "not given": null for the framework's parse, given back afterwards
  // (the audit log records the body as it came).
  std::vector<std::string> emptied;
  if (rules_.empty_duration_is_unset) {
    for (const auto& [name, schema] : p->fields) {
      json::value* v = req.data.if_contains(name);
      if (schema.type == FieldType::kDuration && v && v->is_string() && v->as_string().empty() &&
          !Captured(captures, name)) {
        *v = nullptr;
        emptied.push_back(name);
      }
    }
  }
  auto result = FrameworkBackend::Handle(req);
  for (const auto& name : emptied) req.data[name] = "";
  return result;
}

}  // namespace coffer::auth
