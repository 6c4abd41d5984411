#include "core/framework/framework.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "boost/json.hpp"
#include "util/duration.h"
#include "util/json.h"
#include "util/status.h"

namespace coffer::core::framework {
namespace json = boost::json;

std::string_view FieldTypeName(FieldType t) {
  switch (t) {
    case FieldType::kString:
      return "string";
    case FieldType::kInt:
      return "int";
    case FieldType::kBool:
      return "bool";
    case FieldType::kDuration:
      return "duration";
    case FieldType::kCommaStringSlice:
      return "comma-string-slice";
    case FieldType::kStringSlice:
      return "string-slice";
    case FieldType::kMap:
      return "map";
    case FieldType::kAny:
      return "any";
  }
  return "unknown";
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A scalar as a string for string fields and list items (Vault's weak decoding).
std::optional<std::string> ScalarString(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_bool()) return std::string(v.as_bool() ? "true" : "false");
  if (v.is_double()) return json::serialize(v);
  return std::nullopt;
}

std::string_view OpenApiType(FieldType t) {
  switch (t) {
    case FieldType::kInt:
      return "integer";
    case FieldType::kBool:
      return "boolean";
    case FieldType::kCommaStringSlice:
    case FieldType::kStringSlice:
      return "array";
    case FieldType::kMap:
      return "object";
    default:
      return "string";
  }
}

}  // namespace

absl::StatusOr<json::value> ConvertField(std::string_view name, FieldType type,
                                         const json::value& v) {
  json::object one;
  one[name] = v;
  switch (type) {
    case FieldType::kString:
      // Strict, unlike Vault's weak decoding: a number where a string belongs is a mistake to
      // surface, not to guess at (docs/compatibility.md, "String fields").
      if (!v.is_string())
        return absl::InvalidArgumentError(
            Cat("field \"", name, "\" must be a string, got ", JsonTypeName(v)));
      return v;
    case FieldType::kInt: {
      ASSIGN_OR_RETURN(auto i, JsonInt(one, name));
      return json::value(i.value_or(0));
    }
    case FieldType::kBool: {
      ASSIGN_OR_RETURN(auto b, JsonBool(one, name));
      return json::value(b.value_or(false));
    }
    case FieldType::kDuration: {
      auto d = ParseDurationSeconds(v);
      if (!d.ok()) return absl::InvalidArgumentError(Cat(name, ": ", Msg(d.status())));
      return json::value(*d);
    }
    case FieldType::kCommaStringSlice:
    case FieldType::kStringSlice: {
      json::array out;
      if (v.is_string()) {
        std::string_view s = v.as_string();
        if (type == FieldType::kStringSlice) {
          out.emplace_back(s);
        } else {
          size_t start = 0;
          while (start <= s.size()) {
            size_t comma = s.find(',', start);
            std::string_view item = Trim(s.substr(
                start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
            if (!item.empty()) out.emplace_back(item);
            if (comma == std::string_view::npos) break;
            start = comma + 1;
          }
        }
        return json::value(std::move(out));
      }
      if (v.is_array()) {
        for (const auto& item : v.as_array()) {
          auto s = ScalarString(item);
          if (!s)
            return absl::InvalidArgumentError(Cat("field \"", name,
                                                  "\" must be a list of strings, got an item of "
                                                  "type ",
                                                  JsonTypeName(item)));
          if (type == FieldType::kCommaStringSlice) {
            std::string_view t = Trim(*s);
            if (!t.empty()) out.emplace_back(t);
          } else {
            out.emplace_back(*s);
          }
        }
        return json::value(std::move(out));
      }
      return absl::InvalidArgumentError(
          Cat("field \"", name, "\" must be a list of strings or a comma-separated string, got ",
              JsonTypeName(v)));
    }
    case FieldType::kMap:
      if (!v.is_object())
        return absl::InvalidArgumentError(
            Cat("field \"", name, "\" must be an object, got ", JsonTypeName(v)));
      return v;
    case FieldType::kAny:
      return v;
  }
  return absl::InternalError("unknown field type");
}

absl::StatusOr<FieldData> FieldData::Parse(
    const std::map<std::string, FieldSchema>& schema, const json::object& raw,
    const std::vector<std::pair<std::string, std::string>>& captures) {
  FieldData d;
  d.schema_ = &schema;
  for (const auto& [name, value] : captures) {
    auto it = schema.find(name);
    FieldType t = it == schema.end() ? FieldType::kString : it->second.type;
    ASSIGN_OR_RETURN(auto v, ConvertField(name, t, json::value(value)));
    d.given_[name] = std::move(v);
  }
  for (const auto& [name, spec] : schema) {
    if (d.given_.find(name) != d.given_.end()) continue;
    const json::value* v = raw.if_contains(name);
    if (v && !v->is_null()) {
      ASSIGN_OR_RETURN(auto c, ConvertField(name, spec.type, *v));
      d.given_[name] = std::move(c);
    } else if (spec.required) {
      return absl::InvalidArgumentError(Cat("missing required field \"", name, "\""));
    }
  }
  return d;
}

const json::value& FieldData::Get(std::string_view name) const {
  static const json::value kNull;
  auto it = given_.find(name);
  if (it != given_.end()) return it->second;
  if (schema_) {
    auto s = schema_->find(std::string(name));
    if (s != schema_->end()) return s->second.default_value;
  }
  return kNull;
}

bool FieldData::Has(std::string_view name) const { return given_.find(name) != given_.end(); }

std::string FieldData::String(std::string_view name) const {
  const auto& v = Get(name);
  if (v.is_string()) return std::string(v.as_string());
  auto s = ScalarString(v);
  return s.value_or("");
}

int64_t FieldData::Int(std::string_view name) const {
  const auto& v = Get(name);
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<int64_t>(v.as_uint64());
  return 0;
}

bool FieldData::Bool(std::string_view name) const {
  const auto& v = Get(name);
  return v.is_bool() && v.as_bool();
}

int64_t FieldData::Duration(std::string_view name) const {
  const auto& v = Get(name);
  if (v.is_int64()) return v.as_int64();
  if (v.is_string()) {
    auto d = ParseDurationSeconds(std::string_view(v.as_string()));
    return d.ok() ? *d : 0;
  }
  return 0;
}

std::vector<std::string> FieldData::Strings(std::string_view name) const {
  std::vector<std::string> out;
  const auto& v = Get(name);
  if (v.is_array()) {
    for (const auto& item : v.as_array())
      if (item.is_string()) out.emplace_back(item.as_string());
  } else if (v.is_string() && !v.as_string().empty()) {
    out.emplace_back(v.as_string());
  }
  return out;
}

json::object FieldData::Map(std::string_view name) const {
  const auto& v = Get(name);
  return v.is_object() ? v.as_object() : json::object();
}

// ---------------------------------------------------------------------------------------------

FrameworkBackend::Compiled FrameworkBackend::Compile(std::string_view pattern, size_t index) {
  Compiled c;
  c.path_index = index;
  size_t start = 0;
  while (start <= pattern.size()) {
    size_t slash = pattern.find('/', start);
    std::string_view seg = pattern.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    Segment s;
    if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}') {
      std::string_view inner = seg.substr(1, seg.size() - 2);
      if (!inner.empty() && inner.back() == '*') {
        s.kind = Segment::kRest;
        s.text = std::string(inner.substr(0, inner.size() - 1));
      } else if (size_t colon = inner.find(':'); colon != std::string_view::npos) {
        s.kind = Segment::kChoice;
        s.text = std::string(inner.substr(0, colon));
        std::string_view rest = inner.substr(colon + 1);
        size_t b = 0;
        while (b <= rest.size()) {
          size_t bar = rest.find('|', b);
          s.choices.emplace_back(
              rest.substr(b, bar == std::string_view::npos ? std::string_view::npos : bar - b));
          if (bar == std::string_view::npos) break;
          b = bar + 1;
        }
      } else {
        s.kind = Segment::kCapture;
        s.text = std::string(inner);
      }
    } else {
      s.text = std::string(seg);
    }
    const bool rest = s.kind == Segment::kRest;
    c.segments.push_back(std::move(s));
    if (slash == std::string_view::npos) break;
    if (rest) {
      // Path tables are code: a rest segment anywhere but last is a programming error.
      std::fprintf(stderr, "framework: {name*} must be the last segment of \"%.*s\"\n",
                   static_cast<int>(pattern.size()), pattern.data());
      std::abort();
    }
    start = slash + 1;
  }
  return c;
}

bool FrameworkBackend::MatchOne(const Compiled& c, std::string_view path,
                                std::vector<std::pair<std::string, std::string>>* captures,
                                bool list) {
  const size_t n = c.segments.size();
  const bool rest_last = n > 0 && c.segments.back().kind == Segment::kRest;
  // Only a LIST may end in '/' ("roles/"), as Vault's "roles/?$" patterns allow. Anything else
  // matches exactly: "root/" is not "root", so it can neither reach root's handler without the
  // sudo check nor slip past an exact ACL rule.
  if (list && !rest_last && !path.empty() && path.back() == '/') path.remove_suffix(1);
  const size_t mark = captures->size();
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    const Segment& s = c.segments[i];
    if (s.kind == Segment::kRest) {
      captures->emplace_back(s.text, std::string(path.substr(pos)));
      return true;
    }
    const size_t slash = path.find('/', pos);
    const std::string_view seg =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    bool ok = false;
    if (s.kind == Segment::kLiteral) {
      ok = seg == s.text;
    } else if (s.kind == Segment::kCapture) {
      ok = !seg.empty();
    } else {
      ok = std::find(s.choices.begin(), s.choices.end(), seg) != s.choices.end();
    }
    if (!ok) break;
    if (s.kind != Segment::kLiteral) captures->emplace_back(s.text, std::string(seg));
    if (slash == std::string_view::npos) {
      if (i + 1 == n) return true;
      // "a" against "a/{p*}": the rest is empty.
      if (i + 2 == n && rest_last) {
        captures->emplace_back(c.segments.back().text, "");
        return true;
      }
      break;
    }
    if (i + 1 == n) break;  // the path goes on past the pattern
    pos = slash + 1;
  }
  captures->resize(mark);
  return false;
}

FrameworkBackend::FrameworkBackend(std::string help, std::vector<Path> paths, SpecialPaths special)
    : help_(std::move(help)), paths_(std::move(paths)), special_(std::move(special)) {
  for (size_t i = 0; i < paths_.size(); ++i) {
    for (const auto& pattern : paths_[i].patterns) {
      Compiled c = Compile(pattern, i);
      if (!c.segments.empty() && c.segments.front().kind == Segment::kLiteral)
        by_first_[c.segments.front().text].push_back(std::move(c));
      else
        wild_.push_back(std::move(c));
    }
  }
}

const Path* FrameworkBackend::Match(std::string_view path,
                                    std::vector<std::pair<std::string, std::string>>* captures,
                                    bool list) const {
  std::string_view first = path.substr(0, path.find('/'));
  if (auto it = by_first_.find(first); it != by_first_.end())
    for (const auto& c : it->second)
      if (MatchOne(c, path, captures, list)) return &paths_[c.path_index];
  for (const auto& c : wild_)
    if (MatchOne(c, path, captures, list)) return &paths_[c.path_index];
  return nullptr;
}

std::string FrameworkBackend::OperationList(const Path& p) {
  std::string out;
  for (const auto& [op, spec] : p.operations) {
    if (!out.empty()) out += ", ";
    out += OperationName(op);
  }
  return out;
}

absl::StatusOr<Response> FrameworkBackend::Help(const Request& req, const Path& p) const {
  json::object fields;
  for (const auto& [name, f] : p.fields) {
    json::object o{{"type", FieldTypeName(f.type)}, {"description", f.description}};
    if (!f.default_value.is_null() && !f.sensitive) o["default"] = f.default_value;
    if (f.required) o["required"] = true;
    fields[name] = std::move(o);
  }
  json::array ops;
  for (const auto& [op, spec] : p.operations) ops.emplace_back(OperationName(op));
  json::array patterns;
  for (const auto& pat : p.patterns) patterns.emplace_back(pat);
  std::string text = help_ + "\n\n## PATH\n\n" + p.patterns.front() + "\n\n" + p.synopsis;
  if (!p.description.empty()) text += "\n\n" + p.description;
  // Vault's help response carries an OpenAPI document of the path as well.
  json::object oa_paths;
  PathOpenApi(p, "/" + req.mount_point, oa_paths);
  return Response::Data(
      json::object{{"help", text},
                   {"see_also", nullptr},
                   {"openapi", json::object{{"openapi", "3.0.2"}, {"paths", std::move(oa_paths)}}},
                   {"patterns", std::move(patterns)},
                   {"operations", std::move(ops)},
                   {"fields", std::move(fields)}});
}

absl::Status FrameworkBackend::NotFound(const Request& req) const {
  return absl::NotFoundError(Cat("unsupported path \"", req.path, "\" on the ", req.mount_type,
                                 " mount at \"", req.mount_point, "\""));
}

absl::StatusOr<std::optional<bool>> FrameworkBackend::Exists(Request& req) {
  std::vector<std::pair<std::string, std::string>> captures;
  const Path* p = Match(req.path, &captures, req.op == Operation::kList);
  if (!p || !p->exists) return std::optional<bool>();
  auto fields = FieldData::Parse(p->fields, req.data, captures);
  if (!fields.ok()) return std::optional<bool>();  // the handler reports the error
  return p->exists(req, *fields);
}

absl::Status FrameworkBackend::RefuseUnknownFields(const Request& req, const Path& p) {
  for (const auto& [k, v] : req.data) {
    // Clients send every parameter they know, unset ones as null or as their zero value
    // (hvac's `"migrate": false`): those ask for nothing. help is the framework's own.
    const bool zero =
        v.is_null() || (v.is_bool() && !v.as_bool()) || (v.is_string() && v.as_string().empty()) ||
        (v.is_int64() && v.as_int64() == 0) || (v.is_uint64() && v.as_uint64() == 0) ||
        (v.is_double() && v.as_double() == 0) || (v.is_array() && v.as_array().empty()) ||
        (v.is_object() && v.as_object().empty());
    if (zero || k == "help" || p.fields.contains(std::string(k))) continue;
    std::string known;
    for (const auto& [name, f] : p.fields) known += (known.empty() ? "" : ", ") + name;
    return absl::InvalidArgumentError(
        Cat("unknown field \"", std::string_view(k).substr(0, 64), "\" for \"", req.mount_point,
            req.path, "\": Coffer does not implement it",
            known.empty() ? std::string(" (this path takes no fields)")
                          : Cat("; this path takes: ", known)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Response> FrameworkBackend::Handle(Request& req) {
  std::vector<std::pair<std::string, std::string>> captures;
  const Path* p = Match(req.path, &captures, req.op == Operation::kList);
  if (!p) return NotFound(req);
  if (req.op == Operation::kRead) {
    auto help = req.QueryParam("help");
    if (help && (*help == "1" || *help == "true")) return Help(req, *p);
  }
  auto it = p->operations.find(req.op);
  if (it == p->operations.end() && req.op == Operation::kCreate)
    it = p->operations.find(Operation::kUpdate);
  if (it == p->operations.end() && req.op == Operation::kHead)
    it = p->operations.find(Operation::kRead);
  if (it == p->operations.end()) {
    if (!p->unsupported)
      return UnsupportedOperation(Cat(OperationName(req.op), " on \"", req.path,
                                      "\"; this path supports: ", OperationList(*p)));
    std::string detail = *p->unsupported;
    for (auto [key, value] :
         {std::pair<std::string_view, std::string_view>{"{op}", OperationName(req.op)},
          {"{path}", req.path}}) {
      size_t at = detail.find(key);
      if (at != std::string::npos) detail.replace(at, key.size(), value);
    }
    return UnsupportedOperation(detail);
  }
  if (!p->any_field) RETURN_IF_ERROR(RefuseUnknownFields(req, *p));
  ASSIGN_OR_RETURN(auto fields, FieldData::Parse(p->fields, req.data, captures));
  return it->second.handler(req, fields);
}

void FrameworkBackend::OpenApi(std::string_view mount_path, json::object& out) const {
  for (const auto& p : paths_) PathOpenApi(p, mount_path, out);
}

void FrameworkBackend::PathOpenApi(const Path& p, std::string_view mount_path, json::object& out) {
  {
    for (const auto& pattern : p.patterns) {
      json::object item{{"description", p.synopsis}};
      json::array params;
      json::object props;
      Compiled c = Compile(pattern, 0);
      std::string oa_path(mount_path);
      for (size_t i = 0; i < c.segments.size(); ++i) {
        const auto& s = c.segments[i];
        if (i) oa_path += '/';
        if (s.kind == Segment::kLiteral) {
          oa_path += s.text;
          continue;
        }
        oa_path += "{" + s.text + "}";
        auto f = p.fields.find(s.text);
        params.push_back(
            json::object{{"name", s.text},
                         {"in", "path"},
                         {"required", true},
                         {"description", f == p.fields.end() ? "" : f->second.description},
                         {"schema", json::object{{"type", "string"}}}});
      }
      for (const auto& [name, f] : p.fields) {
        bool in_path = false;
        for (const auto& s : c.segments)
          in_path = in_path || (s.kind != Segment::kLiteral && s.text == name);
        if (in_path) continue;
        json::object prop{{"type", OpenApiType(f.type)}, {"description", f.description}};
        if (!f.default_value.is_null() && !f.sensitive) prop["default"] = f.default_value;
        props[name] = std::move(prop);
      }
      if (!params.empty()) item["parameters"] = std::move(params);
      for (const auto& [op, spec] : p.operations) {
        json::object o{{"summary", spec.summary.empty() ? p.synopsis : spec.summary},
                       {"responses", json::object{{"200", json::object{{"description", "OK"}}}}}};
        std::string_view method = "post";
        switch (op) {
          case Operation::kRead:
          case Operation::kHead:
            method = "get";
            break;
          case Operation::kList:
            method = "list";  // Vault's OpenAPI marks LIST as get with ?list=true
            o["parameters"] = json::array{json::object{
                {"name", "list"},
                {"in", "query"},
                {"required", true},
                {"schema", json::object{{"type", "string"}, {"enum", json::array{"true"}}}}}};
            break;
          case Operation::kDelete:
            method = "delete";
            break;
          case Operation::kPatch:
            method = "patch";
            break;
          default:
            if (!props.empty())
              o["requestBody"] = json::object{
                  {"content",
                   json::object{{"application/json",
                                 json::object{{"schema", json::object{{"type", "object"},
                                                                      {"properties", props}}}}}}}};
        }
        if (method == "list") {
          // Vault publishes LIST as a GET with the list query parameter.
          if (item.contains("get")) continue;
          method = "get";
        }
        item[method] = std::move(o);
      }
      out[oa_path] = std::move(item);
    }
  }
}

}  // namespace coffer::core::framework
