// `coffer kv put|get|patch|list|delete|undelete|destroy|rollback|metadata get|put|delete|
// enable-versioning`: vault kv's commands over either kv version. Each finds the mount that
// holds the path and its version with GET sys/internal/ui/mounts/<path> (as vault does), then
// calls version 1's plain paths or version 2's data/, metadata/, delete/ ... paths; -mount=
// names the mount explicitly. Output follows vault's: "Secret Path" and "Metadata" sections for
// version 2 tables, the whole response with -format=json, one value with -field=.

#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <memory>

#include "cli/cli.h"
#include "cli/client_util.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

struct KvArgs {
  ClientFlags flags;
  std::string mount;  // -mount: the mount's path; the positional path is then relative to it
  std::string path;
  std::vector<std::string> data;  // key=value arguments
  std::string field;
  int64_t version = -1;  // -version (get, rollback)
  std::string versions;  // -versions (delete, undelete, destroy)
  int64_t cas = -1;      // -cas (put, patch); -1: not given
  std::string method;    // -method (patch): patch or rw
  // kv metadata put
  int64_t max_versions = -1;
  std::string cas_required;  // "" (not given), "true" or "false"
  std::string delete_version_after;
  std::vector<std::string> custom_metadata;
};

// Where a kv path lives: the mount's path ("secret/", "" when unknown) and its version.
struct Target {
  std::string mount;
  int version = 1;
  std::string partial;  // the secret's path with the mount, as the user named it

  // The API path of `partial` under one of version 2's prefixes ("data", "metadata" ...).
  std::string Under(std::string_view prefix) const {
    std::string rest = partial;
    if (!mount.empty() && (rest + "/" == mount || rest == mount)) {
      rest.clear();
    } else if (!mount.empty() && rest.starts_with(mount)) {
      rest = rest.substr(mount.size());
    }
    std::string out = mount + std::string(prefix);
    if (!rest.empty()) out += "/" + rest;
    return out;
  }
};

std::string Sanitize(std::string p, bool keep_trailing_slash = false) {
  while (!p.empty() && (p.front() == '/' || p.front() == ' ')) p.erase(0, 1);
  while (!p.empty() && p.back() == ' ') p.pop_back();
  if (!keep_trailing_slash)
    while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

void Fail(int* code, int value, std::string_view message) {
  std::cerr << message << "\n";
  *code = value;
}

// The mount holding the path and its version, as vault's kv preflight request finds them. A
// server that does not answer (403, 404) is taken for version 1 with the path as given.
std::optional<Target> Locate(const http::ClientOptions& o, const KvArgs& a, bool list, int* code) {
  Target t;
  std::string p = Sanitize(a.path, list);
  if (!a.mount.empty()) {
    const std::string m = Sanitize(a.mount);
    p = p.empty() ? m + "/" : m + "/" + p;
  }
  t.partial = p;
  const std::string url = ApiPath("sys/internal/ui/mounts/" + Sanitize(p));
  // With -output-curl-string the preflight is still sent: it decides the request shown (vault).
  CurlSuspended send;
  auto r = Request(o, "GET", url, "", code);
  if (!r) return std::nullopt;
  if (r->status == 403 || r->status == 404) return t;
  if (r->status != 200) {
    *code = ReportApiError("determining the kv version", o, "GET", url, *r);
    return std::nullopt;
  }
  auto body = ParseObject(r->body);
  const json::value* data = body ? body->if_contains("data") : nullptr;
  if (!data || !data->is_object()) {
    Fail(code, kExitRemote, "Error: nil response from pre-flight request");
    return std::nullopt;
  }
  const json::object& d = data->as_object();
  if (const auto* m = d.if_contains("path"); m && m->is_string())
    t.mount = std::string(m->as_string());
  if (const auto* opts = d.if_contains("options"); opts && opts->is_object())
    if (const auto* v = opts->as_object().if_contains("version"); v && v->is_string())
      t.version = v->as_string() == "2" ? 2 : 1;
  if (!t.mount.empty() && t.mount.back() != '/') t.mount += '/';
  return t;
}

// A value in a table, as vault prints one: "<nil>" for null, "n/a" for "", maps as Go does.
std::string Text(const json::value& v) {
  if (v.is_null()) return "<nil>";
  if (v.is_string()) return v.as_string().empty() ? "n/a" : std::string(v.as_string());
  if (v.is_object()) {
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& [k, x] : v.as_object()) items.emplace_back(std::string(k), Text(x));
    std::sort(items.begin(), items.end());
    std::string out = "map[";
    for (size_t i = 0; i < items.size(); ++i)
      out += (i ? " " : "") + items[i].first + ":" + items[i].second;
    return out + "]";
  }
  return json::serialize(v);
}

// vault's "==== Title ====" line: as wide as the table under it, or the path it names.
std::string Header(std::string_view title, size_t width) {
  int64_t signs = static_cast<int64_t>(width) - static_cast<int64_t>(title.size() + 2);
  if (signs <= 0) signs = 4;
  if (signs % 2) ++signs;
  const std::string side(signs / 2, '=');
  return Cat(side, " ", title, " ", side);
}
std::string HeaderForMap(std::string_view title, const json::object& m) {
  size_t longest = 0;
  for (const auto& [k, _] : m) longest = std::max(longest, k.size());
  return Header(title, longest + 4 + 5);  // the column gap and "Value"
}
void PrintMap(const json::object& m) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.reserve(m.size());
  for (const auto& [k, v] : m) rows.emplace_back(std::string(k), Text(v));
  std::sort(rows.begin(), rows.end());
  PrintTable(rows);
}
void PrintPath(std::string_view title, std::string_view path) {
  std::cout << Header(title, path.size()) << "\n" << path << "\n\n";
}
void PrintWarnings(const json::object& resp) {
  if (const auto* w = resp.if_contains("warnings"); w && w->is_array() && !w->as_array().empty()) {
    std::cout << "WARNING! The following warnings were returned:\n\n";
    for (const auto& x : w->as_array()) std::cout << "  * " << ValueText(x) << "\n";
    std::cout << "\n";
  }
}
// One field of `m` (strings as they are with -format=table, else in the format); exit 1 when
// absent, as vault's PrintRawField.
int PrintField(const json::object& m, const std::string& field, const std::string& format) {
  const json::value* v = m.if_contains(field);
  if (!v) {
    std::cerr << "Field \"" << field << "\" not present in secret\n";
    return kExitLocal;
  }
  PrintFieldValue(*v, format);
  return kExitOk;
}
// A wrapped response (-wrap-ttl): its data is in the wrapping token, shown as `coffer read`
// shows one.
bool Wrapped(const json::object& resp) {
  const json::value* w = resp.if_contains("wrap_info");
  return w && w->is_object();
}
const json::object* DataOf(const json::object& resp) {
  const json::value* d = resp.if_contains("data");
  return d && d->is_object() ? &d->as_object() : nullptr;
}

// The response of a version 2 write (put, patch, rollback): the new version's metadata.
int PrintWritten(const KvArgs& a, const std::string& full_path, const http::ClientResponse& r) {
  auto body = r.status == 204 ? std::nullopt : ParseObject(r.body);
  if (body && Wrapped(*body)) return PrintSecret(*body, Format(a.flags), a.field);
  const json::object* data = body ? DataOf(*body) : nullptr;
  if (!data) {
    if (Format(a.flags) == "table") std::cout << "Success! Data written to: " << full_path << "\n";
    return kExitOk;
  }
  if (!a.field.empty()) return PrintField(*data, a.field, Format(a.flags));
  if (PrintStructured(*body, Format(a.flags))) return kExitOk;
  PrintWarnings(*body);
  PrintPath("Secret Path", full_path);
  std::cout << HeaderForMap("Metadata", *data) << "\n";
  PrintMap(*data);
  return kExitOk;
}

absl::StatusOr<json::array> ParseVersionList(const std::string& s) {
  json::array out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string item =
        Sanitize(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!item.empty()) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
      if (ec != std::errc() || end != item.data() + item.size() || n < 1)
        return absl::InvalidArgumentError(Cat("invalid version \"", item, "\" in -versions"));
      out.emplace_back(n);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Runs `fn` with the client options and the located target; handles the common failures.
template <typename Fn>
void WithTarget(KvArgs* a, bool list, int* code, Fn fn) {
  auto o = Resolve(a->flags);
  auto t = Locate(o, *a, list, code);
  if (!t) return;
  fn(o, *t);
}

// Vault's "No value found at ..." for a 404 without a body (or an empty errors list).
bool IsEmpty404(const http::ClientResponse& r) {
  if (r.status != 404) return false;
  auto body = ParseObject(r.body);
  if (!body) return true;
  const json::value* data = body->if_contains("data");
  return !data || data->is_null();
}

// ---- commands ----

void Put(KvArgs* a, int* code) {
  if (a->data.empty()) return Fail(code, kExitLocal, "Must supply data");
  auto data = ParseKv(a->data);
  if (!data.ok())
    return Fail(code, kExitLocal, Cat("Failed to parse K=V data: ", Msg(data.status())));
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    std::string path = t.partial;
    json::object body = *data;
    if (t.version == 2) {
      path = t.Under("data");
      body = json::object{{"data", std::move(*data)}};
      if (a->cas >= 0) body["options"] = json::object{{"cas", a->cas}};
    }
    const std::string url = ApiPath(path);
    auto r = Request(o, "PUT", url, json::serialize(body), code);
    if (!r) return;
    if (r->status >= 300) {
      *code = ReportApiError(Cat("writing data to ", path), o, "PUT", url, *r);
      return;
    }
    *code = PrintWritten(*a, path, *r);
  });
}

void Get(KvArgs* a, int* code) {
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    const bool v2 = t.version == 2;
    const std::string path = v2 ? t.Under("data") : t.partial;
    std::string url = ApiPath(path);
    if (v2 && a->version > 0) url += Cat("?version=", a->version);
    auto r = Request(o, "GET", url, "", code);
    if (!r) return;
    if (r->status == 204 || IsEmpty404(*r)) {
      Fail(code, kExitRemote,
           a->version > 0 && v2 ? Cat("No value found at ", path, " for version ", a->version)
                                : Cat("No value found at ", path));
      return;
    }
    // A deleted or destroyed version is a 404 with its metadata: shown like any other.
    if (r->status >= 300 && r->status != 404) {
      *code = ReportApiError(Cat("reading ", path), o, "GET", url, *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (body && Wrapped(*body)) {
      *code = PrintSecret(*body, Format(a->flags), a->field);
      return;
    }
    const json::object* data = body ? DataOf(*body) : nullptr;
    if (!data) return Fail(code, kExitRemote, Cat("No value found at ", path));
    const json::value* secret = v2 ? data->if_contains("data") : nullptr;
    if (!a->field.empty()) {
      if (!v2) {
        *code = PrintField(*data, a->field, Format(a->flags));
      } else if (secret && secret->is_object()) {
        *code = PrintField(secret->as_object(), a->field, Format(a->flags));
      } else {
        Fail(code, kExitRemote, Cat("No data found at ", path));
      }
      return;
    }
    if (PrintStructured(*body, Format(a->flags))) return;
    PrintWarnings(*body);
    if (!v2) {
      std::cout << HeaderForMap("Data", *data) << "\n";
      PrintMap(*data);
      return;
    }
    PrintPath("Secret Path", path);
    if (const auto* md = data->if_contains("metadata"); md && md->is_object()) {
      std::cout << HeaderForMap("Metadata", md->as_object()) << "\n";
      PrintMap(md->as_object());
    }
    if (secret && secret->is_object()) {
      std::cout << "\n" << HeaderForMap("Data", secret->as_object()) << "\n";
      PrintMap(secret->as_object());
    }
  });
}

void Patch(KvArgs* a, int* code) {
  if (a->data.empty()) return Fail(code, kExitLocal, "Must supply data");
  auto data = ParseKv(a->data);
  if (!data.ok())
    return Fail(code, kExitLocal, Cat("Failed to parse K=V data: ", Msg(data.status())));
  if (a->method != "patch" && a->method != "rw")
    return Fail(code, kExitLocal, Cat("Unsupported method provided to -method flag: ", a->method));
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2)
      return Fail(code, kExitRemote, "K/V engine mount must be version 2 for patch support");
    const std::string path = t.Under("data");
    const std::string url = ApiPath(path);
    json::object body{{"data", *data}};
    int64_t cas = a->cas;
    std::string method = "PATCH";
    if (a->method == "rw") {
      // Read the latest version, merge the top-level keys, write it back with check-and-set.
      auto r = Request(o, "GET", url, "", code);
      if (!r) return;
      if (r->status == 404) return Fail(code, kExitRemote, Cat("No value found at ", path));
      if (r->status >= 300) {
        *code = ReportApiError(Cat("reading ", path), o, "GET", url, *r);
        return;
      }
      auto current = ParseObject(r->body);
      const json::object* d = current ? DataOf(*current) : nullptr;
      const json::value* secret = d ? d->if_contains("data") : nullptr;
      if (!secret || !secret->is_object())
        return Fail(code, kExitRemote, Cat("No data found at ", path));
      json::object merged = secret->as_object();
      for (auto& [k, v] : *data) merged[k] = v;
      body = json::object{{"data", std::move(merged)}};
      if (cas < 0) cas = d->at("metadata").as_object().at("version").to_number<int64_t>();
      method = "PUT";
    }
    if (cas >= 0) body["options"] = json::object{{"cas", cas}};
    auto r = Request(o, method, url, json::serialize(body), code);
    if (!r) return;
    if (r->status == 404) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (r->status >= 300) {
      *code = ReportApiError(Cat("writing data to ", path), o, method, url, *r);
      return;
    }
    *code = PrintWritten(*a, path, *r);
  });
}

void List(KvArgs* a, int* code) {
  WithTarget(a, true, code, [&](const http::ClientOptions& o, const Target& t) {
    const std::string path = t.version == 2 ? t.Under("metadata") : t.partial;
    std::string url = ApiPath(path);
    if (url.back() != '/') url += '/';
    auto r = Request(o, "LIST", url, "", code);
    if (!r) return;
    if (r->status == 404) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (r->status >= 300) {
      *code = ReportApiError(Cat("listing ", path), o, "LIST", url, *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (body && Wrapped(*body)) {
      *code = PrintSecret(*body, Format(a->flags), "");
      return;
    }
    const json::object* data = body ? DataOf(*body) : nullptr;
    const json::value* keys = data ? data->if_contains("keys") : nullptr;
    if (!keys || !keys->is_array()) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (PrintStructured(*keys, Format(a->flags))) return;
    std::cout << "Keys\n----\n";
    for (const auto& k : keys->as_array()) std::cout << ValueText(k) << "\n";
  });
}

void Delete(KvArgs* a, int* code) {
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    std::string method = "DELETE", url, body;
    std::string path = t.version == 2 ? t.Under("data") : t.partial;
    if (!a->versions.empty()) {
      if (t.version != 2)
        return Fail(code, kExitLocal, "Versioned deletes are not supported on K/V version 1");
      auto versions = ParseVersionList(a->versions);
      if (!versions.ok()) return Fail(code, kExitLocal, Msg(versions.status()));
      method = "PUT";
      url = ApiPath(t.Under("delete"));
      body = json::serialize(json::object{{"versions", std::move(*versions)}});
    } else {
      url = ApiPath(path);
    }
    auto r = Request(o, method, url, body, code);
    if (!r) return;
    if (r->status >= 300) {
      *code = ReportApiError(Cat("deleting ", path), o, method, url, *r);
      return;
    }
    std::cout << "Success! Data deleted (if it existed) at: " << path << "\n";
  });
}

// undelete and destroy: version 2 only, -versions required.
void VersionsOp(KvArgs* a, int* code, std::string_view op, std::string_view v1_error) {
  if (a->versions.empty())
    return Fail(code, kExitLocal,
                Cat("No versions provided, use the \"-versions\" flag to specify the version to ",
                    op, "."));
  auto versions = ParseVersionList(a->versions);
  if (!versions.ok()) return Fail(code, kExitLocal, Msg(versions.status()));
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2) return Fail(code, kExitRemote, v1_error);
    const std::string path = t.Under(op);
    const std::string url = ApiPath(path);
    auto r = Request(o, "PUT", url, json::serialize(json::object{{"versions", *versions}}), code);
    if (!r) return;
    if (r->status >= 300) {
      *code = ReportApiError(Cat("writing data to ", path), o, "PUT", url, *r);
      return;
    }
    std::cout << "Success! Data written to: " << path << "\n";
  });
}

void Rollback(KvArgs* a, int* code) {
  if (a->version < 1)
    return Fail(code, kExitLocal, "Must specify a version to roll back to with -version");
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2) return Fail(code, kExitRemote, "Rollback not supported on KV Version 1");
    const std::string path = t.Under("data");
    // The current version, for check-and-set: nobody may write in between.
    const std::string meta_url = ApiPath(t.Under("metadata"));
    auto m = Request(o, "GET", meta_url, "", code);
    if (!m) return;
    if (m->status == 404) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (m->status >= 300) {
      *code = ReportApiError(Cat("reading ", t.Under("metadata")), o, "GET", meta_url, *m);
      return;
    }
    auto meta = ParseObject(m->body);
    const json::object* md = meta ? DataOf(*meta) : nullptr;
    if (!md || !md->contains("current_version"))
      return Fail(code, kExitRemote, "Error: no metadata in the response");
    const int64_t current = md->at("current_version").to_number<int64_t>();
    const std::string url = ApiPath(path);
    auto r = Request(o, "GET", Cat(url, "?version=", a->version), "", code);
    if (!r) return;
    if (IsEmpty404(*r)) return Fail(code, kExitRemote, "Cannot roll back to an invalid version");
    auto body = ParseObject(r->body);
    const json::object* d = body ? DataOf(*body) : nullptr;
    if (r->status == 404 && d) {
      const json::value& vm = d->at("metadata");
      const bool destroyed = vm.as_object().at("destroyed").as_bool();
      return Fail(code, kExitRemote,
                  destroyed ? "Cannot roll back to a version that has been destroyed"
                            : "Cannot roll back to a version that has been deleted");
    }
    if (r->status >= 300 || !d || !d->at("data").is_object()) {
      *code = ReportApiError(Cat("reading ", path), o, "GET", url, *r);
      return;
    }
    json::object w{{"data", d->at("data")}, {"options", json::object{{"cas", current}}}};
    auto wr = Request(o, "PUT", url, json::serialize(w), code);
    if (!wr) return;
    if (wr->status >= 300) {
      *code = ReportApiError(Cat("writing data to ", path), o, "PUT", url, *wr);
      return;
    }
    *code = PrintWritten(*a, path, *wr);
  });
}

void MetadataGet(KvArgs* a, int* code) {
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2) return Fail(code, kExitRemote, "Metadata not supported on KV Version 1");
    const std::string path = t.Under("metadata");
    const std::string url = ApiPath(path);
    auto r = Request(o, "GET", url, "", code);
    if (!r) return;
    if (r->status == 404) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (r->status >= 300) {
      *code = ReportApiError(Cat("reading ", path), o, "GET", url, *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (body && Wrapped(*body)) {
      *code = PrintSecret(*body, Format(a->flags), a->field);
      return;
    }
    const json::object* data = body ? DataOf(*body) : nullptr;
    if (!data) return Fail(code, kExitRemote, Cat("No value found at ", path));
    if (!a->field.empty()) {
      *code = PrintField(*data, a->field, Format(a->flags));
      return;
    }
    if (PrintStructured(*body, Format(a->flags))) return;
    json::object settings = *data;
    json::object versions;
    if (auto* v = settings.if_contains("versions"); v && v->is_object()) versions = v->as_object();
    settings.erase("versions");
    PrintWarnings(*body);
    PrintPath("Metadata Path", path);
    std::cout << HeaderForMap("Metadata", settings) << "\n";
    PrintMap(settings);
    std::vector<std::pair<int64_t, std::string>> order;
    for (const auto& [k, _] : versions) {
      int64_t n = 0;
      std::from_chars(k.data(), k.data() + k.size(), n);
      order.emplace_back(n, std::string(k));
    }
    std::sort(order.begin(), order.end());
    for (const auto& [n, k] : order) {
      const json::value& v = versions.at(k);
      if (!v.is_object()) continue;
      std::cout << "\n" << HeaderForMap(Cat("Version ", n), v.as_object()) << "\n";
      PrintMap(v.as_object());
    }
  });
}

void MetadataPut(KvArgs* a, int* code) {
  json::object body;
  if (a->max_versions >= 0) body["max_versions"] = a->max_versions;
  if (!a->cas_required.empty()) {
    if (a->cas_required != "true" && a->cas_required != "false")
      return Fail(code, kExitLocal, "-cas-required takes true or false");
    body["cas_required"] = a->cas_required == "true";
  }
  if (!a->delete_version_after.empty()) body["delete_version_after"] = a->delete_version_after;
  if (!a->custom_metadata.empty()) {
    json::object custom;
    for (const auto& kv : a->custom_metadata) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        return Fail(code, kExitLocal,
                    Cat("Invalid custom metadata \"", kv, "\": use -custom-metadata=key=value"));
      custom[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    body["custom_metadata"] = std::move(custom);
  }
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2) return Fail(code, kExitRemote, "Metadata not supported on KV Version 1");
    const std::string path = t.Under("metadata");
    const std::string url = ApiPath(path);
    auto r = Request(o, "PUT", url, json::serialize(body), code);
    if (!r) return;
    if (r->status >= 300) {
      *code = ReportApiError(Cat("writing data to ", path), o, "PUT", url, *r);
      return;
    }
    if (auto resp = r->status == 204 ? std::nullopt : ParseObject(r->body)) PrintWarnings(*resp);
    std::cout << "Success! Data written to: " << path << "\n";
  });
}

void MetadataDelete(KvArgs* a, int* code) {
  WithTarget(a, false, code, [&](const http::ClientOptions& o, const Target& t) {
    if (t.version != 2) return Fail(code, kExitRemote, "Metadata not supported on KV Version 1");
    const std::string path = t.Under("metadata");
    const std::string url = ApiPath(path);
    auto r = Request(o, "DELETE", url, "", code);
    if (!r) return;
    if (r->status >= 300) {
      *code = ReportApiError(Cat("deleting ", path), o, "DELETE", url, *r);
      return;
    }
    std::cout << "Success! Data deleted (if it existed) at: " << path << "\n";
  });
}

void EnableVersioning(KvArgs* a, int* code) {
  auto o = Resolve(a->flags);
  const std::string mount = Sanitize(a->path);
  const std::string url = ApiPath("sys/mounts/" + mount + "/tune");
  auto r = Request(o, "POST", url, R"({"options":{"version":"2"}})", code);
  if (!r) return;
  if (r->status >= 300) {
    *code = ReportApiError("tuning secrets engine", o, "POST", url, *r);
    return;
  }
  std::cout << "Success! Tuned the secrets engine at: " << mount << "/\n";
}

// ---- registration ----

CLI::App* Command(CLI::App* parent, const char* name, const char* help, KvArgs* a,
                  bool needs_path = true) {
  auto* c = parent->add_subcommand(name, help);
  AddClientFlags(c, &a->flags);
  if (needs_path) {
    c->add_option("--mount", a->mount,
                  "The mount's path; the path argument is then relative to it");
  }
  return c;
}

}  // namespace

void RegisterKvCommands(CLI::App& app, int* exit_code) {
  auto* kv = app.add_subcommand("kv", "Read and write secrets of kv mounts (version 1 or 2)");
  kv->require_subcommand(1);
  auto make = [] { return std::make_shared<KvArgs>(); };

  {
    auto a = make();
    auto* c = Command(kv, "put", "Write a secret (a new version on kv version 2)", a.get());
    c->add_option("--cas", a->cas,
                  "Check-and-set: write only if the current version is this one (0: only if the "
                  "secret does not exist)");
    c->add_option("--field", a->field, "Print only this field of the response");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->add_option("data", a->data, "key=value, key=@file, key=- (stdin), - (JSON on stdin)");
    c->callback([a, exit_code] { Put(a.get(), exit_code); });
  }
  {
    auto a = make();
    auto* c = Command(kv, "get", "Read a secret (a chosen version with -version)", a.get());
    c->add_option("--version", a->version, "The version to read (kv version 2)");
    c->add_option("--field", a->field, "Print only this field of the secret");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->callback([a, exit_code] { Get(a.get(), exit_code); });
  }
  {
    auto a = make();
    a->method = "patch";
    auto* c = Command(kv, "patch", "Change some keys of a secret (kv version 2)", a.get());
    c->add_option("--cas", a->cas, "Check-and-set: the current version");
    c->add_option("--method", a->method,
                  "patch (an HTTP PATCH, the default) or rw (read, merge, write)");
    c->add_option("--field", a->field, "Print only this field of the response");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->add_option("data", a->data, "key=value, key=@file, key=- (stdin), - (JSON on stdin)");
    c->callback([a, exit_code] { Patch(a.get(), exit_code); });
  }
  {
    auto a = make();
    auto* c = Command(kv, "list", "List the secrets and folders under a path", a.get());
    c->add_option("path", a->path, "The folder to list");
    c->callback([a, exit_code] { List(a.get(), exit_code); });
  }
  {
    auto a = make();
    auto* c = Command(kv, "delete",
                      "Delete a secret (version 1), or soft-delete versions (version 2)", a.get());
    c->add_option("--versions", a->versions,
                  "The versions to delete, comma-separated (default: the latest)");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->callback([a, exit_code] { Delete(a.get(), exit_code); });
  }
  {
    auto a = make();
    auto* c = Command(kv, "undelete", "Restore deleted versions (kv version 2)", a.get());
    c->add_option("--versions", a->versions, "The versions to undelete, comma-separated");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->callback([a, exit_code] {
      VersionsOp(a.get(), exit_code, "undelete", "Undelete not supported on KV Version 1");
    });
  }
  {
    auto a = make();
    auto* c = Command(kv, "destroy", "Remove versions' data for good (kv version 2)", a.get());
    c->add_option("--versions", a->versions, "The versions to destroy, comma-separated");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->callback([a, exit_code] {
      VersionsOp(a.get(), exit_code, "destroy", "Destroy not supported on KV Version 1");
    });
  }
  {
    auto a = make();
    auto* c = Command(kv, "rollback",
                      "Write an older version's data as the new version (kv version 2)", a.get());
    c->add_option("--version", a->version, "The version to roll back to")->required();
    c->add_option("--field", a->field, "Print only this field of the response");
    c->add_option("path", a->path, "Path of the secret")->required();
    c->callback([a, exit_code] { Rollback(a.get(), exit_code); });
  }
  {
    auto* md = kv->add_subcommand("metadata", "A secret's settings and versions (kv version 2)");
    md->require_subcommand(1);
    auto g = make();
    auto* get =
        Command(md, "get", "Read a secret's settings and the state of its versions", g.get());
    get->add_option("--field", g->field, "Print only this field");
    get->add_option("path", g->path, "Path of the secret")->required();
    get->callback([g, exit_code] { MetadataGet(g.get(), exit_code); });

    auto p = make();
    auto* put = Command(md, "put", "Write a secret's settings", p.get());
    put->add_option("--max-versions", p->max_versions, "The number of versions to keep");
    put->add_option("--cas-required", p->cas_required,
                    "true: every write must give -cas; false: the mount's setting applies");
    put->add_option("--delete-version-after", p->delete_version_after,
                    "How long a version lives after it is written (e.g. 720h); 0s clears it");
    put->add_option("--custom-metadata", p->custom_metadata,
                    "key=value to describe the secret (repeatable)");
    put->add_option("path", p->path, "Path of the secret")->required();
    put->callback([p, exit_code] { MetadataPut(p.get(), exit_code); });

    auto d = make();
    auto* del = Command(md, "delete", "Delete a secret: every version and its metadata", d.get());
    del->add_option("path", d->path, "Path of the secret")->required();
    del->callback([d, exit_code] { MetadataDelete(d.get(), exit_code); });
  }
  {
    auto a = make();
    auto* c = Command(kv, "enable-versioning",
                      "Turn a kv version 1 mount into version 2 (its secrets become version 1)",
                      a.get(), /*needs_path=*/false);
    c->add_option("path", a->path, "The mount's path")->required();
    c->callback([a, exit_code] { EnableVersioning(a.get(), exit_code); });
  }
}

}  // namespace coffer::cli
