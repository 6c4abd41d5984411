#include "agent/config.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <vector>

#include "config/hcl.h"
#include "util/duration.h"
#include "util/files.h"
#include "util/status.h"
#include "util/suggest.h"

namespace coffer::agent {
namespace json = boost::json;
namespace {

json::value ToJson(const hcl::Value& v) {
  switch (v.kind) {
    case hcl::Value::Kind::kNull:
      return nullptr;
    case hcl::Value::Kind::kBool:
      return v.boolean;
    case hcl::Value::Kind::kNumber:
      // Whole numbers within +-2^53 become integers; anything else stays a double (and is
      // refused where an integer is needed). Casting a huge double to int64 would be undefined.
      if (std::abs(v.number) <= 9007199254740992.0 && v.number == std::trunc(v.number))
        return static_cast<int64_t>(v.number);
      return v.number;
    case hcl::Value::Kind::kString:
      return json::string(v.str);
    case hcl::Value::Kind::kList: {
      json::array a;
      for (const auto& e : v.list) a.push_back(ToJson(e));
      return a;
    }
    case hcl::Value::Kind::kObject: {
      json::object o;
      for (const auto& it : v.object) o[it.key] = ToJson(it.value);
      return o;
    }
  }
  return nullptr;
}

struct Reader {
  Reader(const json::object& obj, std::string w) : o(obj), where(std::move(w)) {}
  const json::object& o;
  std::string where;
  absl::Status err;

  std::string Str(std::string_view k, bool required = false) {
    const json::value* v = o.if_contains(k);
    if (!v || v->is_null()) {
      if (required && err.ok())
        err = absl::InvalidArgumentError(Cat(where, ": \"", k, "\" is required"));
      return {};
    }
    if (v->is_string()) return std::string(v->as_string());
    if (err.ok()) err = absl::InvalidArgumentError(Cat(where, ": \"", k, "\" must be a string"));
    return {};
  }
  int64_t Int(std::string_view k, int64_t def) {
    const json::value* v = o.if_contains(k);
    if (!v || v->is_null()) return def;
    if (v->is_int64()) return v->as_int64();
    if (v->is_string()) {
      try {
        return std::stoll(std::string(v->as_string()));
      } catch (...) {
      }
    }
    if (err.ok()) err = absl::InvalidArgumentError(Cat(where, ": \"", k, "\" must be a number"));
    return def;
  }
  int64_t Duration(std::string_view k, int64_t def_seconds) {
    const json::value* v = o.if_contains(k);
    if (!v || v->is_null()) return def_seconds;
    auto d = ParseDurationSeconds(*v);
    if (!d.ok()) {
      if (err.ok())
        err = absl::InvalidArgumentError(
            Cat(where, ": \"", k, "\": ", std::string(d.status().message())));
      return def_seconds;
    }
    return *d;
  }
  std::vector<std::string> List(std::string_view k) {
    std::vector<std::string> out;
    const json::value* v = o.if_contains(k);
    if (!v || v->is_null()) return out;
    if (v->is_string()) {  // "a,b"
      std::string_view s = v->as_string();
      size_t start = 0;
      while (start <= s.size()) {
        size_t end = s.find(',', start);
        if (end == std::string_view::npos) end = s.size();
        if (end > start) out.emplace_back(s.substr(start, end - start));
        start = end + 1;
      }
      return out;
    }
    if (!v->is_array()) {
      if (err.ok()) err = absl::InvalidArgumentError(Cat(where, ": \"", k, "\" must be a list"));
      return out;
    }
    for (const auto& e : v->as_array()) {
      if (e.is_string()) {
        out.emplace_back(e.as_string());
      } else if (err.ok()) {
        err = absl::InvalidArgumentError(Cat(where, ": \"", k, "\" must be a list of strings"));
      }
    }
    return out;
  }
  uint32_t Mode(std::string_view k, uint32_t def) {
    std::string s = Str(k);
    if (s.empty()) return def;
    auto m = files::ParseMode(s);
    if (!m.ok()) {
      if (err.ok())
        err = absl::InvalidArgumentError(Cat(where, ": ", std::string(m.status().message())));
      return def;
    }
    return *m;
  }
};

absl::StatusOr<CertSpec> ParseCert(const std::string& name, const json::object& o) {
  CertSpec c;
  Reader r{o, Cat("certificate \"", name, "\"")};
  c.name = name.empty() ? r.Str("name") : name;
  r.where = Cat("certificate \"", c.name, "\"");
  c.role = r.Str("role", true);
  c.common_name = r.Str("common_name", true);
  c.dns_sans = r.List("dns_sans");
  c.ip_sans = r.List("ip_sans");
  c.key_type = o.contains("key_type") ? r.Str("key_type") : "ec";
  c.key_bits = static_cast<int>(r.Int("key_bits", c.key_type == "rsa"  ? 2048
                                                  : c.key_type == "ec" ? 256
                                                                       : 0));
  c.ttl = r.Duration("ttl", 0);
  c.cert_file = r.Str("cert_file");
  c.key_file = r.Str("key_file");
  c.ca_file = r.Str("ca_file");
  c.owner = r.Str("owner");
  c.group = r.Str("group");
  c.mode = r.Mode("mode", 0644);
  c.exec = r.Str("exec");
  if (const json::value* k = o.if_contains("kubeconfig"); k && k->is_object()) {
    Reader kr{k->as_object(), Cat(r.where, " kubeconfig")};
    c.kubeconfig.path = kr.Str("path", true);
    c.kubeconfig.server = kr.Str("server", true);
    c.kubeconfig.cluster = kr.Str("cluster");
    c.kubeconfig.user = kr.Str("user");
    if (c.kubeconfig.cluster.empty()) c.kubeconfig.cluster = "kubernetes";
    if (c.kubeconfig.user.empty()) c.kubeconfig.user = c.common_name;
    RETURN_IF_ERROR(kr.err);
  }
  RETURN_IF_ERROR(r.err);
  if (c.cert_file.empty() && c.kubeconfig.path.empty())
    return absl::InvalidArgumentError(
        Cat(r.where, ": give cert_file and key_file, or a kubeconfig, or both"));
  if (!c.cert_file.empty() && c.key_file.empty())
    return absl::InvalidArgumentError(Cat(r.where, ": cert_file needs a key_file"));
  if (c.role.find("/sign/") == std::string::npos)
    return absl::InvalidArgumentError(Cat(r.where, ": role \"", c.role,
                                          "\" must be a sign path like pki/sign/ROLE (the key is "
                                          "made here and never leaves the node)"));
  return c;
}

absl::Status Each(const json::value* v,
                  const std::function<absl::Status(std::string, const json::object&)>& f,
                  std::string_view what, std::string_view marker) {
  if (!v || v->is_null()) return absl::OkStatus();
  if (v->is_array()) {
    for (const auto& e : v->as_array()) {
      if (!e.is_object()) return absl::InvalidArgumentError(Cat(what, " entries must be objects"));
      RETURN_IF_ERROR(f("", e.as_object()));
    }
    return absl::OkStatus();
  }
  if (!v->is_object()) return absl::InvalidArgumentError(Cat(what, " must be a block or a list"));
  const auto& o = v->as_object();
  if (o.contains(marker)) return f("", o);  // an unlabeled block
  for (const auto& [label, body] : o) {
    if (!body.is_object())
      return absl::InvalidArgumentError(
          Cat(what, " \"", std::string_view(label), "\" must be a block"));
    RETURN_IF_ERROR(f(std::string(label), body.as_object()));
  }
  return absl::OkStatus();
}

// Unknown keys are errors with the line and, when one is close, a suggestion: a misspelt key
// would otherwise pass `agent check` and a certificate silently lose its file.
absl::Status CheckKeys(const std::vector<hcl::Item>& items,
                       std::initializer_list<std::string_view> known, std::string_view where) {
  for (const auto& it : items) {
    if (std::find(known.begin(), known.end(), it.key) != known.end()) continue;
    const std::string best = ClosestMatch(it.key, std::vector<std::string_view>(known));
    std::string list;
    for (std::string_view k : known) list += Cat(list.empty() ? "" : ", ", k);
    return absl::InvalidArgumentError(
        Cat("line ", it.line, ": unknown key \"", it.key, "\" in ", where,
            best.empty() ? std::string() : Cat("; did you mean \"", best, "\"?"),
            " (known keys: ", list, ")"));
  }
  return absl::OkStatus();
}

const std::initializer_list<std::string_view> kCertKeys = {
    "name",     "role", "common_name", "dns_sans",  "ip_sans", "key_type",
    "key_bits", "ttl",  "cert_file",   "key_file",  "ca_file", "owner",
    "group",    "mode", "exec",        "kubeconfig"};
const std::initializer_list<std::string_view> kSecretKeys = {"path",  "field", "dest",
                                                             "owner", "group", "mode"};

// The bodies of certificate/secret blocks, in every shape Each() accepts.
absl::Status CheckBlocks(const hcl::Item& it) {
  const bool cert = it.key.rfind("cert", 0) == 0;
  const std::string_view marker = cert ? "role" : "path";
  auto body = [&](const hcl::Value& v, std::string_view label) -> absl::Status {
    if (v.kind != hcl::Value::Kind::kObject) return absl::OkStatus();  // Each() reports it
    const std::string where = Cat(cert ? "certificate" : "secret",
                                  label.empty() ? std::string() : Cat(" \"", label, "\""));
    RETURN_IF_ERROR(CheckKeys(v.object, cert ? kCertKeys : kSecretKeys, where));
    if (cert)
      for (const auto& f : v.object)
        if (f.key == "kubeconfig" && f.value.kind == hcl::Value::Kind::kObject)
          RETURN_IF_ERROR(CheckKeys(f.value.object, {"path", "server", "cluster", "user"},
                                    Cat(where, " kubeconfig")));
    return absl::OkStatus();
  };
  auto one = [&](const hcl::Value& v) -> absl::Status {
    if (v.kind != hcl::Value::Kind::kObject) return absl::OkStatus();
    for (const auto& f : v.object)
      if (f.key == marker) return body(v, "");  // an unlabeled block
    for (const auto& labelled : v.object) RETURN_IF_ERROR(body(labelled.value, labelled.key));
    return absl::OkStatus();
  };
  if (it.value.kind == hcl::Value::Kind::kList) {
    for (const auto& e : it.value.list) RETURN_IF_ERROR(body(e, ""));
    return absl::OkStatus();
  }
  return one(it.value);
}

}  // namespace

absl::StatusOr<Config> ParseConfig(std::string_view text) {
  ASSIGN_OR_RETURN(auto items, hcl::Parse(text));
  RETURN_IF_ERROR(
      CheckKeys(items,
                {"server", "node_name", "token_path", "init_token_path", "token_role", "retry_min",
                 "retry_max", "certificate", "certificates", "secret", "secrets", "node_registry",
                 "heartbeat", "rotation_poll", "rotation_wait", "hook_timeout"},
                "the agent config"));
  for (const auto& it : items) {
    if (it.key == "server" && it.value.kind == hcl::Value::Kind::kObject)
      RETURN_IF_ERROR(CheckKeys(it.value.object, {"address", "ca_cert"}, "server"));
    if (it.key == "certificate" || it.key == "certificates" || it.key == "secret" ||
        it.key == "secrets")
      RETURN_IF_ERROR(CheckBlocks(it));
  }
  Config c;
  json::object top;
  for (const auto& it : items) {
    if (it.key == "certificate" || it.key == "certificates" || it.key == "secret" ||
        it.key == "secrets") {
      auto v = ToJson(it.value);
      auto f = [&](const std::string& name, const json::object& o) -> absl::Status {
        if (it.key.rfind("cert", 0) == 0) {
          ASSIGN_OR_RETURN(CertSpec cs, ParseCert(name, o));
          if (cs.name.empty()) cs.name = cs.common_name;
          c.certificates.push_back(std::move(cs));
          return absl::OkStatus();
        }
        SecretSpec s;
        Reader r{o, Cat("secret ", name)};
        s.path = r.Str("path", true);
        s.field = r.Str("field", true);
        s.dest = r.Str("dest", true);
        s.owner = r.Str("owner");
        s.group = r.Str("group");
        s.mode = r.Mode("mode", 0600);
        RETURN_IF_ERROR(r.err);
        c.secrets.push_back(std::move(s));
        return absl::OkStatus();
      };
      RETURN_IF_ERROR(Each(&v, f, it.key, it.key.rfind("cert", 0) == 0 ? "role" : "path"));
      continue;
    }
    top[it.key] = ToJson(it.value);
  }
  Reader r{top, "agent config"};
  if (const json::value* s = top.if_contains("server"); s && s->is_object()) {
    Reader sr{s->as_object(), "server"};
    c.address = sr.Str("address", true);
    c.ca_cert = sr.Str("ca_cert");
    RETURN_IF_ERROR(sr.err);
  } else {
    return absl::InvalidArgumentError("agent config: a server block with the address is required");
  }
  c.node_name = r.Str("node_name");
  c.token_path = r.Str("token_path", true);
  c.init_token_path = r.Str("init_token_path");
  c.token_role = r.Str("token_role");
  c.node_registry = r.Str("node_registry");
  if (const json::value* hb = top.if_contains("heartbeat")) {
    auto d = ParseDurationSeconds(*hb);
    if (!d.ok() || *d < 1)
      return absl::InvalidArgumentError("heartbeat: a duration of at least 1s, such as \"60s\"");
    c.heartbeat_ms = *d * 1000;
  }
  if (const json::value* rp = top.if_contains("rotation_poll")) {
    auto d = ParseDurationSeconds(*rp);
    if (!d.ok() || *d < 1)
      return absl::InvalidArgumentError(
          "rotation_poll: a duration of at least 1s, such as \"10s\"");
    c.rotation_poll_ms = *d * 1000;
  }
  if (const json::value* rw = top.if_contains("rotation_wait")) {
    auto d = ParseDurationSeconds(*rw);
    if (!d.ok() || *d < 1 || *d > 300)
      return absl::InvalidArgumentError("rotation_wait: a duration from 1s to 5m, such as \"20s\"");
    c.rotation_wait_ms = *d * 1000;
  }
  if (!c.node_registry.empty() && c.node_name.empty())
    return absl::InvalidArgumentError("agent config: node_registry needs node_name");
  if (const json::value* ht = top.if_contains("hook_timeout")) {
    auto d = ParseDurationSeconds(*ht);
    if (!d.ok() || *d < 1 || *d > 86400)
      return absl::InvalidArgumentError("hook_timeout: a duration from 1s to 24h, such as \"5m\"");
    c.hook_timeout_ms = *d * 1000;
  }
  const json::value* rmin = top.if_contains("retry_min");
  const json::value* rmax = top.if_contains("retry_max");
  if (rmin) {
    auto d = ParseDurationSeconds(*rmin);
    if (!d.ok())
      return absl::InvalidArgumentError(Cat("retry_min: ", std::string(d.status().message())));
    c.retry_min_ms = std::max<int64_t>(*d * 1000, 100);
  }
  if (rmax) {
    auto d = ParseDurationSeconds(*rmax);
    if (!d.ok())
      return absl::InvalidArgumentError(Cat("retry_max: ", std::string(d.status().message())));
    c.retry_max_ms = std::max<int64_t>(*d * 1000, c.retry_min_ms);
  }
  RETURN_IF_ERROR(r.err);
  if (!c.init_token_path.empty() && c.token_role.empty())
    return absl::InvalidArgumentError(
        "agent config: init_token_path needs token_role (the token role the init token may use)");
  for (size_t i = 0; i < c.certificates.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.certificates[i].name == c.certificates[j].name)
        return absl::InvalidArgumentError(
            Cat("agent config: certificate \"", c.certificates[i].name, "\" is listed twice"));
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(auto text, files::ReadIfExists(path));
  if (!text) return absl::NotFoundError(Cat("agent config ", path, " does not exist"));
  auto c = ParseConfig(*text);
  if (!c.ok())
    return absl::InvalidArgumentError(Cat(path, ": ", std::string(c.status().message())));
  return c;
}

}  // namespace coffer::agent
