// A FrameworkBackend for the auth methods that existed before the framework (token, AppRole):
// their path tables declare Vault's field types, and this class keeps the answers they gave
// before (tests/e2e/test_golden_responses.py) where the framework alone would answer otherwise:
//   - field values are first checked on the raw body by the rules the methods applied
//     (LegacyFieldRules) where the framework's conversion of the same declared type refuses
//     more or words its error differently;
//   - a method may refuse a request before any route is chosen (CheckPath: a malformed name in
//     the path, a trailing '/' where there was no route) and, once it is, before the operation
//     and the fields are looked at (BeforeOperation: the role the request names does not
//     exist);
//   - every 405 is Vault's bare "unsupported operation", and HEAD is one of them (the framework
//     would serve HEAD as a read; these methods never did).
// What the framework parses afterwards (FieldData) is what the handlers use. Two differences
// remain, both the framework's way: a request with a wrong field type and a fault a handler used
// to find before reading that field (no token in renew, no role_id in login) now gets the type
// error; and list items lose tabs at their ends as well as spaces.
//
// Immutable after construction; Handle() is safe to call from several threads when the
// handlers and the hooks are.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"
#include "core/framework/framework.h"

namespace coffer::auth {

// Checks the raw value of one field (never null); `name` is the field's name.
using RawCheck = std::function<absl::Status(std::string_view name, const boost::json::value& v)>;

// How a method checked its fields before the framework, by declared type. Types not named here
// (kString, kInt, kBool) convert with the messages the methods always used (util/json.h).
struct LegacyFieldRules {
  // kDuration: "" is "not given" (the framework refuses it).
  bool empty_duration_is_unset = false;
  // kCommaStringSlice and kMap: the method's own check; unset, the framework's.
  RawCheck list;
  RawCheck map;
};

class CompatBackend : public core::framework::FrameworkBackend {
 public:
  using Captures = std::vector<std::pair<std::string, std::string>>;

  CompatBackend(std::string help, std::vector<core::framework::Path> paths,
                core::SpecialPaths special, LegacyFieldRules rules);

  absl::StatusOr<core::Response> Handle(core::Request& req) final;

 protected:
  // Refusals made before any route was chosen, for every operation (first of all).
  virtual absl::Status CheckPath(const core::Request& req) const { return absl::OkStatus(); }
  // Refusals made once the route `p` is chosen, before the operation (405) and the fields.
  virtual absl::Status BeforeOperation(core::Request& req, const core::framework::Path& p,
                                       const Captures& captures) {
    return absl::OkStatus();
  }

 private:
  absl::Status CheckRawFields(const core::Request& req, const core::framework::Path& p,
                              const Captures& captures) const;

  const LegacyFieldRules rules_;
};

}  // namespace coffer::auth
