// The backend framework (OpenBao's sdk/framework, the Coffer way): a backend is a table of
// declared paths. Each Path has one or more patterns with named segments, the fields it takes
// with their types, defaults and descriptions, and a handler per operation. The framework
//   - matches the request path against the table,
//   - parses and type-checks the body, the query and the URL's named segments once (400 with
//     the field's name on a wrong type),
//   - answers 405 for an operation the path does not declare,
//   - serves `?help=1` and OpenAPI descriptions from the same table.
//
// Pattern syntax, segment by segment ('/' separates segments):
//   roles            a literal segment
//   {name}           one non-empty segment, given to the handler as field `name`
//   {name:pem|der}   one segment from the listed values
//   {name*}          the rest of the path, slashes included, possibly empty (last segment only)
// Paths match exactly, except that a LIST may end in one '/' ("roles/"); a pattern ending in
// {name*} keeps that slash in the capture (kv lists "a/b/"). Patterns whose first segment is a
// literal are tried before patterns that start with a capture; within each group, table order.
//
// A FrameworkBackend is immutable after construction apart from what handlers keep themselves;
// Handle() is safe to call from several threads when the handlers are.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/json/value.hpp"
#include "core/backend.h"

namespace coffer::core::framework {

enum class FieldType {
  kString,            // a JSON string only (docs/compatibility.md: "String fields")
  kInt,               // integer, or a string holding one
  kBool,              // boolean, or "true"/"false"/"1"/"0"
  kDuration,          // seconds: a number, "30", "90s", "1h30m", "2d"; stored as seconds
  kCommaStringSlice,  // array of strings, or one comma-separated string ("a, b")
  kStringSlice,       // array of strings, or one string (a list of one)
  kMap,               // JSON object
  kAny,               // any JSON value, unchecked
};
std::string_view FieldTypeName(FieldType t);

struct FieldSchema {
  FieldType type = FieldType::kString;
  std::string description;
  boost::json::value default_value;  // null: none
  bool required = false;             // 400 when absent
  bool sensitive = false;            // a secret: never shown in help examples or logs
};

// The parsed fields of one request. Values are normalized: durations and ints are int64,
// slices are arrays of strings.
class FieldData {
 public:
  // Whether the caller gave the field (in the body, the query or the URL).
  bool Has(std::string_view name) const;
  std::string String(std::string_view name) const;
  int64_t Int(std::string_view name) const;
  bool Bool(std::string_view name) const;
  int64_t Duration(std::string_view name) const;
  std::vector<std::string> Strings(std::string_view name) const;
  boost::json::object Map(std::string_view name) const;
  // The normalized value, given or default; null when neither.
  const boost::json::value& Get(std::string_view name) const;

  // Parses `raw` (body plus query) and the URL captures against `schema`.
  static absl::StatusOr<FieldData> Parse(
      const std::map<std::string, FieldSchema>& schema, const boost::json::object& raw,
      const std::vector<std::pair<std::string, std::string>>& captures);

 private:
  std::map<std::string, boost::json::value, std::less<>> given_;
  const std::map<std::string, FieldSchema>* schema_ = nullptr;
};

// Converts one value to `type` (the rules FieldData uses); `name` appears in errors.
absl::StatusOr<boost::json::value> ConvertField(std::string_view name, FieldType type,
                                                const boost::json::value& v);

using Handler = std::function<absl::StatusOr<Response>(Request&, const FieldData&)>;
using ExistenceCheck =
    std::function<absl::StatusOr<std::optional<bool>>(Request&, const FieldData&)>;

struct OperationSpec {
  Handler handler;
  std::string summary;
};

struct Path {
  std::vector<std::string> patterns;  // one or more, same fields and handlers
  std::map<std::string, FieldSchema> fields;
  std::map<Operation, OperationSpec> operations;
  ExistenceCheck exists;  // optional
  // The 405 message's detail for an operation the path lacks; "{op}" and "{path}" are replaced.
  // Unset: "<op> on "<path>"; this path supports: <ops>". Empty: Vault's bare message.
  std::optional<std::string> unsupported;
  std::string synopsis;
  std::string description;
  // The body is free-form (a kv version 1 secret, a cubbyhole value, sys/wrapping/wrap): any
  // field is accepted. Otherwise a field the path does not declare is a 400 naming it, as a
  // parameter Coffer does not implement must never be silently ignored.
  bool any_field = false;
};

// A backend built from a path table. Engines either derive from it (and override the
// lifecycle hooks) or construct it directly.
class FrameworkBackend : public Backend {
 public:
  FrameworkBackend(std::string help, std::vector<Path> paths, SpecialPaths special = {});

  absl::StatusOr<Response> Handle(Request& req) override;
  absl::StatusOr<std::optional<bool>> Exists(Request& req) override;
  const SpecialPaths& Special() const override { return special_; }
  void OpenApi(std::string_view mount_path, boost::json::object& paths) const override;

  // The path of the table matching `path` and its captures, or null (exposed for tests).
  const Path* Match(std::string_view path,
                    std::vector<std::pair<std::string, std::string>>* captures,
                    bool list = false) const;
  const std::vector<Path>& paths() const { return paths_; }

 protected:
  // The operations a matched path has, for 405 messages.
  static std::string OperationList(const Path& p);
  // The 404 for a path no pattern matches.
  virtual absl::Status NotFound(const Request& req) const;
  // 400 for a body or query field `p` does not declare (unless p.any_field).
  static absl::Status RefuseUnknownFields(const Request& req, const Path& p);

 private:
  struct Segment {
    enum Kind { kLiteral, kCapture, kChoice, kRest } kind = kLiteral;
    std::string text;                  // literal text or capture name
    std::vector<std::string> choices;  // kChoice
  };
  struct Compiled {
    std::vector<Segment> segments;
    size_t path_index = 0;
  };
  static Compiled Compile(std::string_view pattern, size_t index);
  static bool MatchOne(const Compiled& c, std::string_view path,
                       std::vector<std::pair<std::string, std::string>>* captures, bool list);
  absl::StatusOr<Response> Help(const Request& req, const Path& p) const;
  // OpenAPI path items for one Path (all its patterns) into `out`.
  static void PathOpenApi(const Path& p, std::string_view mount_path, boost::json::object& out);

  std::string help_;
  std::vector<Path> paths_;
  SpecialPaths special_;
  // Compiled patterns bucketed by their first literal segment; the rest in `wild_`.
  std::map<std::string, std::vector<Compiled>, std::less<>> by_first_;
  std::vector<Compiled> wild_;
};

}  // namespace coffer::core::framework
