// login, token, policy, auth and audit commands, as the vault CLI's.

#include <fstream>
#include <iostream>

#include "cli/client_util.h"
#include "config/hcl.h"
#include "core/acl.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

struct Opts {
  ClientFlags flags;
  std::string method = "token", path, field, ttl, explicit_max_ttl, period, display_name, role,
              increment, mode, description;
  std::vector<std::string> policies, metadata, args;
  int64_t use_limit = 0;
  bool orphan = false, no_default_policy = false, no_store = false, self = false, accessor = false;
  bool renewable = true;
};

// Runs one API call; on success returns the parsed body (empty object for 204).
std::optional<json::object> Call(const ClientFlags& f, std::string_view method,
                                 const std::string& path, const json::object* body,
                                 std::string_view action, int* code,
                                 const std::string& token_override = "") {
  auto o = Resolve(f);
  if (token_override == "-")
    o.token.clear();  // an unauthenticated call (login)
  else if (!token_override.empty())
    o.token = token_override;
  std::string p = ApiPath(path);
  auto r = Request(o, method, p, body ? json::serialize(*body) : "", code);
  if (!r) return std::nullopt;
  if (r->status >= 300) {
    *code = ReportApiError(action, o, method, p, *r);
    return std::nullopt;
  }
  if (r->status == 204 || r->body.empty()) return json::object{};
  auto parsed = ParseObject(r->body);
  if (!parsed) {
    std::cerr << "Error: unexpected response from server\n";
    *code = kExitRemote;
  }
  return parsed;
}

}  // namespace

// The vault CLI's table for a response holding an auth block.
int PrintAuth(const json::object& resp, const std::string& format, const std::string& field) {
  const auto* a = resp.if_contains("auth");
  if (!a || !a->is_object()) return PrintSecret(resp, format, field);
  const auto& auth = a->as_object();
  if (!field.empty()) {
    // vault's RawField for an auth block: the token's fields by their table names, with their
    // values as the response has them (formatted with -format).
    static const std::pair<const char*, const char*> kNames[] = {
        {"token", "client_token"},
        {"token_accessor", "accessor"},
        {"token_duration", "lease_duration"},
        {"token_renewable", "renewable"},
        {"token_policies", "token_policies"},
        {"policies", "policies"}};
    const json::value* v = nullptr;
    for (const auto& [name, key] : kNames)
      if (field == name) v = auth.if_contains(key);
    if (!v && field.starts_with("token_meta_"))
      if (const auto* m = auth.if_contains("metadata"); m && m->is_object())
        v = m->as_object().if_contains(field.substr(11));
    if (!v) {
      std::cerr << "Field \"" << field << "\" not present in secret\n";
      return kExitLocal;
    }
    PrintFieldValue(*v, format);
    return kExitOk;
  }
  if (PrintStructured(resp, format)) return kExitOk;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"token", ValueText(auth.at("client_token"))},
      {"token_accessor", ValueText(auth.at("accessor"))},
      {"token_duration", auth.at("lease_duration").to_number<int64_t>() == 0
                             ? "∞"
                             : DurationText(auth.at("lease_duration").to_number<int64_t>())},
      {"token_renewable", ValueText(auth.at("renewable"))},
      {"token_policies", ValueText(auth.at("token_policies"))},
      {"identity_policies", "[]"},
      {"policies", ValueText(auth.at("policies"))}};
  if (const auto* m = auth.if_contains("metadata"); m && m->is_object())
    for (const auto& [k, v] : m->as_object())
      rows.emplace_back("token_meta_" + std::string(k), ValueText(v));
  PrintTable(rows);
  return kExitOk;
}

void RegisterAuthCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<Opts>();
  ClientFlags* flags = &o->flags;

  // ---- login -----------------------------------------------------------------------------
  auto* login = app.add_subcommand("login", "Authenticate and store the token in ~/.coffer-token");
  AddClientFlags(login, flags);
  login->add_option("--method", o->method, "token or approle")
      ->check(CLI::IsMember({"token", "approle"}));
  login->add_option("--path", o->path, "Mount path of the auth method (default: the method name)");
  login->add_option("--field", o->field, "Print only this field");
  login->add_flag("--no-store", o->no_store, "Do not write the token to ~/.coffer-token");
  login->add_option("args", o->args,
                    "TOKEN (or - for stdin) for token; role_id=... secret_id=... for approle");
  login->callback([o, exit_code] {
    std::string token;
    json::object resp;
    if (o->method == "token") {
      auto read =
          ReadSecret(o->args.empty() ? "" : o->args[0], "token", "Token (will be hidden): ");
      token = read.value_or("");
      if (token.empty()) {
        std::cerr << "Error: " << (read.ok() ? "no token given" : read.status().message()) << "\n";
        *exit_code = kExitLocal;
        return;
      }
      auto r = Call(o->flags, "GET", "auth/token/lookup-self", nullptr, "authenticating", exit_code,
                    token);
      if (!r) return;
      const auto& d = (*r)["data"].as_object();
      resp = json::object{{"auth", json::object{{"client_token", token},
                                                {"accessor", d.at("accessor")},
                                                {"lease_duration", d.at("ttl")},
                                                {"renewable", d.at("renewable")},
                                                {"token_policies", d.at("policies")},
                                                {"policies", d.at("policies")},
                                                {"metadata", d.at("meta")}}}};
    } else {
      auto data = ParseKv(o->args);
      if (!data.ok()) {
        std::cerr << "Error: " << data.status().message() << "\n";
        *exit_code = kExitLocal;
        return;
      }
      std::string mount = o->path.empty() ? "approle" : o->path;
      auto r = Call(o->flags, "PUT", "auth/" + mount + "/login", &*data, "authenticating",
                    exit_code, "-");
      if (!r) return;
      resp = std::move(*r);
      token = std::string(resp["auth"].as_object()["client_token"].as_string());
    }
    if (!o->no_store && !StoreToken(token)) {
      std::cerr << "Error: cannot write " << TokenFilePath() << "\n";
      *exit_code = kExitLocal;
      return;
    }
    if (o->field.empty() && Format(o->flags) == "table")
      std::cout << "Success! You are now authenticated."
                << (o->no_store ? "" : " The token is stored in " + TokenFilePath() + ".")
                << "\n\n";
    *exit_code = PrintAuth(resp, Format(o->flags), o->field);
  });

  // ---- token ------------------------------------------------------------------------------
  auto* token = app.add_subcommand("token", "Create, look up, renew and revoke tokens");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create a token");
  AddClientFlags(create, flags);
  create->add_option("--policy", o->policies, "Policy for the token (repeatable)");
  create->add_option("--ttl", o->ttl, "Initial TTL (e.g. 1h)");
  create->add_option("--explicit-max-ttl", o->explicit_max_ttl, "Hard maximum lifetime");
  create->add_option("--period", o->period, "Make a periodic token renewable every PERIOD forever");
  create->add_option("--display-name", o->display_name, "Name shown in audit logs");
  create->add_option("--role", o->role, "Token role to create the token against");
  create->add_option("--metadata", o->metadata, "key=value metadata (repeatable)");
  create->add_option("--use-limit", o->use_limit, "Number of uses (0: unlimited)");
  create->add_flag("--orphan", o->orphan, "Create without a parent (needs sudo)");
  create->add_flag("--no-default-policy", o->no_default_policy, "Do not attach the default policy");
  create->add_option("--renewable", o->renewable, "Whether the token can be renewed")
      ->capture_default_str();
  create->add_option("--field", o->field, "Print only this field");
  create->callback([o, exit_code] {
    json::object body{{"renewable", o->renewable},
                      {"no_parent", o->orphan},
                      {"no_default_policy", o->no_default_policy}};
    if (!o->policies.empty()) {
      json::array p;
      for (const auto& x : o->policies) p.emplace_back(x);
      body["policies"] = p;
    }
    if (!o->ttl.empty()) body["ttl"] = o->ttl;
    if (!o->explicit_max_ttl.empty()) body["explicit_max_ttl"] = o->explicit_max_ttl;
    if (!o->period.empty()) body["period"] = o->period;
    if (!o->display_name.empty()) body["display_name"] = o->display_name;
    if (o->use_limit) body["num_uses"] = o->use_limit;
    if (!o->metadata.empty()) {
      auto m = ParseKv(o->metadata);
      if (!m.ok()) {
        std::cerr << "Error: " << m.status().message() << "\n";
        *exit_code = kExitLocal;
        return;
      }
      body["meta"] = *m;
    }
    auto r = Call(o->flags, "PUT",
                  o->role.empty() ? "auth/token/create" : "auth/token/create/" + o->role, &body,
                  "creating token", exit_code);
    if (r) *exit_code = PrintAuth(*r, Format(o->flags), o->field);
  });

  auto* lookup =
      token->add_subcommand("lookup", "Show a token's properties (the current one by default)");
  AddClientFlags(lookup, flags);
  lookup->add_flag("--accessor", o->accessor, "The argument is an accessor");
  lookup->add_option("--field", o->field, "Print only this field");
  lookup->add_option("token", o->args, "Token or accessor");
  lookup->callback([o, exit_code] {
    std::optional<json::object> r;
    if (o->args.empty()) {
      r = Call(o->flags, "GET", "auth/token/lookup-self", nullptr, "looking up token", exit_code);
    } else {
      json::object body{{o->accessor ? "accessor" : "token", o->args[0]}};
      r = Call(o->flags, "PUT", o->accessor ? "auth/token/lookup-accessor" : "auth/token/lookup",
               &body, "looking up token", exit_code);
    }
    if (r) *exit_code = PrintSecret(*r, Format(o->flags), o->field);
  });

  auto* renew = token->add_subcommand("renew", "Renew a token (the current one by default)");
  AddClientFlags(renew, flags);
  renew->add_option("--increment,-i", o->increment, "Requested extension (e.g. 1h)");
  renew->add_flag("--accessor", o->accessor, "The argument is an accessor");
  renew->add_option("token", o->args, "Token or accessor");
  renew->callback([o, exit_code] {
    json::object body;
    if (!o->increment.empty()) body["increment"] = o->increment;
    std::string path = "auth/token/renew-self";
    if (!o->args.empty()) {
      body[o->accessor ? "accessor" : "token"] = o->args[0];
      path = o->accessor ? "auth/token/renew-accessor" : "auth/token/renew";
    }
    auto r = Call(o->flags, "PUT", path, &body, "renewing token", exit_code);
    if (r) *exit_code = PrintAuth(*r, Format(o->flags), "");
  });

  auto* revoke =
      token->add_subcommand("revoke", "Revoke a token and, unless -mode=orphan, its children");
  AddClientFlags(revoke, flags);
  revoke->add_flag("--self", o->self, "Revoke the current token");
  revoke->add_flag("--accessor", o->accessor, "The argument is an accessor");
  revoke->add_option("--mode", o->mode, "orphan: keep the children as orphans")
      ->check(CLI::IsMember({"", "orphan"}));
  revoke->add_option("token", o->args, "Token or accessor");
  revoke->callback([o, exit_code] {
    if (o->self == !o->args.empty()) {
      std::cerr << "Error: give a token (or -accessor ACCESSOR), or -self\n";
      *exit_code = kExitLocal;
      return;
    }
    json::object body;
    std::string path = "auth/token/revoke-self";
    if (!o->self) {
      body[o->accessor ? "accessor" : "token"] = o->args[0];
      path = o->accessor           ? "auth/token/revoke-accessor"
             : o->mode == "orphan" ? "auth/token/revoke-orphan"
                                   : "auth/token/revoke";
    }
    if (Call(o->flags, "PUT", path, &body, "revoking token", exit_code))
      std::cout << "Success! Revoked token (if it existed)\n";
  });

  auto* caps = token->add_subcommand("capabilities", "Show a token's capabilities on a path");
  AddClientFlags(caps, flags);
  caps->add_option("args", o->args, "[TOKEN] PATH")->required();
  caps->callback([o, exit_code] {
    if (o->args.size() > 2) {
      std::cerr << "Error: too many arguments: [TOKEN] PATH\n";
      *exit_code = kExitLocal;
      return;
    }
    const std::string path = o->args.back();
    json::object body{{"paths", json::array{json::value(path)}}};
    std::string api = "sys/capabilities-self";
    if (o->args.size() == 2) {
      body["token"] = o->args[0];
      api = "sys/capabilities";
    }
    auto r = Call(o->flags, "PUT", api, &body, "listing capabilities", exit_code);
    if (!r) return;
    const auto& list = (*r)["data"].as_object()[path].as_array();
    if (PrintStructured(list, Format(o->flags))) return;
    std::string out;
    for (const auto& c : list) out += (out.empty() ? "" : ", ") + ValueText(c);
    std::cout << out << "\n";
  });

  // ---- policy -----------------------------------------------------------------------------
  auto* policy = app.add_subcommand("policy", "Write, read, list, delete and format ACL policies");
  policy->require_subcommand(1);
  auto* pwrite = policy->add_subcommand("write", "Upload a policy from a file or stdin (-)");
  AddClientFlags(pwrite, flags);
  pwrite->add_option("args", o->args, "NAME FILE")->required()->expected(2);
  pwrite->callback([o, exit_code] {
    std::string text;
    if (o->args[1] == "-") {
      text = ReadAll(std::cin);
    } else {
      std::ifstream f(o->args[1]);
      if (!f) {
        std::cerr << "Error: cannot read " << o->args[1] << "\n";
        *exit_code = kExitLocal;
        return;
      }
      text = ReadAll(f);
    }
    json::object body{{"policy", text}};
    if (Call(o->flags, "PUT", "sys/policies/acl/" + o->args[0], &body, "uploading policy",
             exit_code))
      std::cout << "Success! Uploaded policy: " << o->args[0] << "\n";
  });
  auto* pread = policy->add_subcommand("read", "Print a policy");
  AddClientFlags(pread, flags);
  pread->add_option("name", o->path, "Policy name")->required();
  pread->callback([o, exit_code] {
    auto r =
        Call(o->flags, "GET", "sys/policies/acl/" + o->path, nullptr, "reading policy", exit_code);
    if (!r) return;
    if (PrintStructured(*r, Format(o->flags))) return;
    std::cout << std::string_view((*r)["data"].as_object()["policy"].as_string());
  });
  auto* plist = policy->add_subcommand("list", "List policies");
  AddClientFlags(plist, flags);
  plist->callback([o, exit_code] {
    auto r = Call(o->flags, "LIST", "sys/policies/acl", nullptr, "listing policies", exit_code);
    if (!r) return;
    const auto& keys = (*r)["data"].as_object()["keys"];
    if (PrintStructured(keys, Format(o->flags))) return;
    for (const auto& k : keys.as_array()) std::cout << ValueText(k) << "\n";
  });
  auto* pdel = policy->add_subcommand("delete", "Delete a policy");
  AddClientFlags(pdel, flags);
  pdel->add_option("name", o->path, "Policy name")->required();
  pdel->callback([o, exit_code] {
    if (Call(o->flags, "DELETE", "sys/policies/acl/" + o->path, nullptr, "deleting policy",
             exit_code))
      std::cout << "Success! Deleted policy: " << o->path << "\n";
  });
  auto* pfmt =
      policy->add_subcommand("fmt", "Check a policy file and rewrite it in canonical form");
  pfmt->add_option("file", o->path, "Policy file")->required();
  pfmt->callback([o, exit_code] {
    std::ifstream f(o->path);
    if (!f) {
      std::cerr << "Error: cannot read " << o->path << "\n";
      *exit_code = kExitLocal;
      return;
    }
    std::string text = ReadAll(f);
    auto p = core::ParsePolicy("fmt", text);
    if (!p.ok()) {
      std::cerr << "Error formatting " << o->path << ": " << p.status().message() << "\n";
      *exit_code = kExitLocal;
      return;
    }
    if (text.find('#') != std::string::npos || text.find("//") != std::string::npos ||
        text.find("/*") != std::string::npos)
      std::cerr << "Warning: comments are not kept by fmt\n";
    std::ofstream out(o->path, std::ios::trunc);
    out << core::FormatPolicy(*p);
    if (!out.flush()) {
      std::cerr << "Error: cannot write " << o->path << "\n";
      *exit_code = kExitLocal;
      return;
    }
    std::cout << "Success! Formatted policy: " << o->path << "\n";
  });

  // ---- auth and audit ---------------------------------------------------------------------
  for (const char* kind : {"auth", "audit"}) {
    const bool is_auth = std::string_view(kind) == "auth";
    auto* g = app.add_subcommand(kind, is_auth ? "Enable, disable and list auth methods"
                                               : "Enable, disable and list audit devices");
    g->require_subcommand(1);
    const std::string base = is_auth ? "sys/auth/" : "sys/audit/";
    auto* en = g->add_subcommand(
        "enable", is_auth ? "Enable an auth method"
                          : "Enable an audit device: audit enable file file_path=PATH");
    AddClientFlags(en, flags);
    en->add_option("--path", o->path, "Mount path (default: the type)");
    en->add_option("--description", o->description, "Description");
    en->add_option("args", o->args, is_auth ? "TYPE" : "TYPE [option=value ...]")->required();
    en->callback([o, exit_code, is_auth, base] {
      std::string type = o->args[0];
      json::object body{{"type", type}, {"description", o->description}};
      if (!is_auth) {
        auto opts = ParseKv(std::vector<std::string>(o->args.begin() + 1, o->args.end()));
        if (!opts.ok()) {
          std::cerr << "Error: " << opts.status().message() << "\n";
          *exit_code = kExitLocal;
          return;
        }
        body["options"] = *opts;
      } else if (o->args.size() > 1) {
        std::cerr << "Error: too many arguments\n";
        *exit_code = kExitLocal;
        return;
      }
      std::string mp = o->path.empty() ? type : o->path;
      while (!mp.empty() && mp.back() == '/') mp.pop_back();
      if (Call(o->flags, "PUT", base + mp, &body,
               is_auth ? "enabling auth method" : "enabling audit device", exit_code))
        std::cout << "Success! Enabled the " << type << (is_auth ? " auth method" : " audit device")
                  << " at: " << mp << "/\n";
    });
    auto* dis = g->add_subcommand("disable", is_auth ? "Disable an auth method (deletes its data)"
                                                     : "Disable an audit device");
    AddClientFlags(dis, flags);
    dis->add_option("path", o->path, "Path")->required();
    dis->callback([o, exit_code, is_auth, base] {
      std::string mp = o->path;
      while (!mp.empty() && mp.back() == '/') mp.pop_back();
      if (Call(o->flags, "DELETE", base + mp, nullptr, "disabling", exit_code))
        std::cout << "Success! Disabled the " << (is_auth ? "auth method" : "audit device")
                  << " (if it existed) at: " << mp << "/\n";
    });
    auto* ls = g->add_subcommand("list", is_auth ? "List auth methods" : "List audit devices");
    AddClientFlags(ls, flags);
    ls->callback([o, exit_code, is_auth] {
      auto r =
          Call(o->flags, "GET", is_auth ? "sys/auth" : "sys/audit", nullptr, "listing", exit_code);
      if (!r) return;
      const auto& data = (*r)["data"].as_object();
      if (PrintStructured(data, Format(o->flags))) return;
      if (data.empty()) {
        std::cout << "No " << (is_auth ? "auth methods" : "audit devices") << " are enabled.\n";
        return;
      }
      std::vector<std::pair<std::string, std::string>> rows;
      for (const auto& [k, v] : data) {
        const auto& e = v.as_object();
        std::string detail = ValueText(e.at("type"));
        if (!is_auth && e.contains("options") && e.at("options").is_object() &&
            e.at("options").as_object().contains("file_path"))
          detail += "    file_path=" + ValueText(e.at("options").as_object().at("file_path"));
        rows.emplace_back(std::string(k), detail);
      }
      PrintTable(rows, "Path", "Type");
    });
  }
}

}  // namespace coffer::cli
