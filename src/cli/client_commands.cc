// Client commands: operator, status, read/write/list/delete, secrets.
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "boost/json.hpp"
#include "cli/cli.h"
#include "cli/client_util.h"
#include "http/client.h"
#include "util/duration.h"
#include "util/human_time.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;

int FailStatus(const absl::Status& st) {
  std::cerr << "Error: " << std::string(st.message()) << "\n";
  const bool remote = std::string(st.message()).find(": HTTP ") != std::string::npos ||
                      absl::IsUnavailable(st) || absl::IsPermissionDenied(st);
  return remote ? kExitRemote : kExitLocal;
}

std::string Env(const char* primary, const char* fallback) {
  if (const char* v = std::getenv(primary); v && *v) return v;
  if (const char* v = std::getenv(fallback); v && *v) return v;
  return "";
}

std::string TokenFilePath() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.coffer-token";
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string t;
  std::getline(f, t);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

// ~/.coffer-token, else the vault CLI's ~/.vault-token (a machine where `vault login` was run).
std::string ReadTokenFile() {
  std::string t = ReadFirstLine(TokenFilePath());
  if (!t.empty()) return t;
  const char* home = std::getenv("HOME");
  return ReadFirstLine(std::string(home && *home ? home : "/root") + "/.vault-token");
}

bool StoreToken(const std::string& token) {
  std::string path = TokenFilePath();
  std::string tmp = path + ".tmp";
  {
    mode_t old = umask(077);
    std::ofstream f(tmp, std::ios::trunc);
    umask(old);
    if (!f) return false;
    f << token << "\n";
    if (!f.flush()) return false;
  }
  ::chmod(tmp.c_str(), 0600);
  return ::rename(tmp.c_str(), path.c_str()) == 0;
}

http::ClientOptions Resolve(const ClientFlags& f) {
  http::ClientOptions o;
  o.address = !f.address.empty() ? f.address : Env("COFFER_ADDR", "VAULT_ADDR");
  if (o.address.empty()) o.address = "https://127.0.0.1:8200";
  o.ca_cert = !f.ca_cert.empty() ? f.ca_cert : Env("COFFER_CACERT", "VAULT_CACERT");
  std::string skip = Env("COFFER_SKIP_VERIFY", "VAULT_SKIP_VERIFY");
  o.skip_verify = f.skip_verify || skip == "1" || skip == "true";
  o.client_cert_file =
      !f.client_cert.empty() ? f.client_cert : Env("COFFER_CLIENT_CERT", "VAULT_CLIENT_CERT");
  o.client_key_file =
      !f.client_key.empty() ? f.client_key : Env("COFFER_CLIENT_KEY", "VAULT_CLIENT_KEY");
  o.token = Env("COFFER_TOKEN", "VAULT_TOKEN");
  if (o.token.empty()) o.token = ReadTokenFile();
  // Only the single-request commands that take -wrap-ttl (AddWrapFlag) wrap: a command that
  // makes several requests (kv, pki, cluster) must read its own answers.
  if (f.wrap_flag)
    o.wrap_ttl = !f.wrap_ttl.empty() ? f.wrap_ttl : Env("COFFER_WRAP_TTL", "VAULT_WRAP_TTL");
  return o;
}

http::ClientOptions ResolveWrapped(const ClientFlags& f) {
  ClientFlags wrapped = f;
  wrapped.wrap_flag = true;
  return Resolve(wrapped);
}

std::string Format(const ClientFlags& f) {
  std::string fmt = !f.format.empty() ? f.format : Env("COFFER_FORMAT", "VAULT_FORMAT");
  if (fmt == "yml") return "yaml";
  return fmt.empty() ? "table" : fmt;
}

// Vault's "Error making API request" block; returns the exit code for remote errors.
int ReportApiError(std::string_view action, const http::ClientOptions& o, std::string_view method,
                   std::string_view path, const http::ClientResponse& r) {
  std::cerr << "Error " << action << ": Error making API request.\n\nURL: " << method << " "
            << o.address << path << "\nCode: " << r.status << ". Errors:\n\n";
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("errors") &&
      v.as_object()["errors"].is_array()) {
    for (const auto& e : v.as_object()["errors"].as_array())
      if (e.is_string()) std::cerr << "* " << std::string_view(e.as_string()) << "\n";
  } else if (!ec && v.is_object() && v.as_object().contains("warnings") &&
             v.as_object()["warnings"].is_array()) {
    // An error answered with an envelope (kv version 2 on a path of version 1): its warnings.
    for (const auto& w : v.as_object()["warnings"].as_array())
      if (w.is_string()) std::cerr << "* " << std::string_view(w.as_string()) << "\n";
  } else if (!r.body.empty()) {
    std::cerr << "* " << r.body.substr(0, 1024) << "\n";
  }
  return kExitRemote;
}

std::optional<http::ClientResponse> Request(const http::ClientOptions& o, std::string_view method,
                                            std::string_view path, std::string_view body,
                                            int* code) {
  if (CurlMode() || CurlPrinted()) {
    if (!CurlPrinted()) PrintCurl(o, method, path, body);
    *code = kExitOk;
    return std::nullopt;
  }
  auto r = http::Call(o, method, path, body);
  if (r.ok()) r = http::FollowRedirects(o, method, body, std::move(*r));
  if (!r.ok()) {
    std::cerr << "Error: " << r.status().message() << "\n";
    *code = r.status().code() == absl::StatusCode::kInvalidArgument ? kExitLocal : kExitRemote;
    return std::nullopt;
  }
  return std::move(*r);
}

std::string ValueText(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "n/a";
  return json::serialize(v);
}

std::string DurationText(int64_t s) {
  if (s % 3600 == 0 && s > 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0 && s > 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

void PrintTable(const std::vector<std::pair<std::string, std::string>>& rows, std::string_view h1,
                std::string_view h2) {
  size_t w = std::max(h1.size(), std::string_view("---").size());
  for (const auto& [k, _] : rows) w = std::max(w, k.size());
  auto pad = [&](std::string_view s) {
    return std::string(s) + std::string(w - s.size() + 4, ' ');
  };
  std::cout << pad(h1) << h2 << "\n"
            << pad(std::string(h1.size(), '-')) << std::string(h2.size(), '-') << "\n";
  for (const auto& [k, v] : rows) std::cout << pad(k) << v << "\n";
}

// Prints a secret response as vault does: JSON as-is, or a Key/Value table (or one -field).
int PrintSecret(const json::object& resp, const std::string& format, const std::string& field) {
  const json::value* data = resp.if_contains("data");
  // A wrapped response: what the vault CLI shows of it (and -field=wrapping_token).
  json::value wrapped;
  if (const auto* w = resp.if_contains("wrap_info");
      w && w->is_object() && (format == "table" || format == "raw" || !field.empty())) {
    const auto& wi = w->as_object();
    json::object rows;
    auto copy = [&](std::string_view to, std::string_view from) {
      if (const auto* v = wi.if_contains(from)) rows[to] = *v;
    };
    copy("wrapping_token", "token");
    copy("wrapping_accessor", "accessor");
    copy("wrapping_token_ttl", "ttl");
    copy("wrapping_token_creation_time", "creation_time");
    copy("wrapping_token_creation_path", "creation_path");
    copy("wrapped_accessor", "wrapped_accessor");
    wrapped = std::move(rows);
    data = &wrapped;
  }
  if (!field.empty()) {
    if (data && data->is_object()) {
      if (const auto* v = data->as_object().if_contains(field)) {
        PrintFieldValue(*v, format);
        return kExitOk;
      }
    }
    // The envelope's own fields, as vault's RawField has them.
    const std::string_view from =
        field == "refresh_interval" ? std::string_view("lease_duration") : std::string_view(field);
    if (from == "lease_duration" || from == "lease_id" || from == "request_id" ||
        from == "renewable") {
      if (const auto* v = resp.if_contains(from)) {
        PrintFieldValue(*v, format);
        return kExitOk;
      }
    }
    std::cerr << "Field \"" << field << "\" not present in secret\n";
    return kExitLocal;
  }
  if (PrintStructured(resp, format)) return kExitOk;
  std::vector<std::pair<std::string, std::string>> rows;
  rows.reserve(8);  // also keeps GCC 12's -Warray-bounds false positive on the first insert away
  const auto* lease_id = resp.if_contains("lease_id");
  const auto* lease_dur = resp.if_contains("lease_duration");
  if (lease_dur && lease_dur->is_int64() && lease_dur->as_int64() > 0) {
    if (lease_id && lease_id->is_string() && !lease_id->as_string().empty()) {
      rows.emplace_back("lease_id", std::string(lease_id->as_string()));
      rows.emplace_back("lease_duration", DurationText(lease_dur->as_int64()));
    } else {
      rows.emplace_back("refresh_interval", DurationText(lease_dur->as_int64()));
    }
  }
  if (data && data->is_object()) {
    std::vector<std::pair<std::string, std::string>> fields;
    // Times a person reads (the table only; json/yaml keep the API's numbers): TTLs as
    // durations as vault's table shows them, expiries as a date plus what remains.
    static const std::set<std::string_view> kTtls = {
        "ttl",       "creation_ttl",      "explicit_max_ttl",       "period",
        "token_ttl", "token_max_ttl",     "token_explicit_max_ttl", "token_period",
        "max_ttl",   "wrapping_token_ttl"};
    static const std::set<std::string_view> kExpiries = {"expiration", "not_after",
                                                         "revocation_time"};
    const int64_t now = std::time(nullptr);
    for (const auto& [k, v] : data->as_object()) {
      std::string text = ValueText(v);
      if (v.is_int64() && kTtls.count(k)) text = TtlText(v.as_int64());
      if (v.is_int64() && v.as_int64() > 0 && kExpiries.count(k))
        text = ExpiryText(v.as_int64(), now);
      fields.emplace_back(std::string(k), std::move(text));
    }
    std::sort(fields.begin(), fields.end());
    rows.insert(rows.end(), fields.begin(), fields.end());
  }
  if (const auto* w = resp.if_contains("warnings"); w && w->is_array() && !w->as_array().empty()) {
    std::cout << "WARNING! The following warnings were returned:\n\n";
    for (const auto& x : w->as_array()) std::cout << "  * " << ValueText(x) << "\n";
    std::cout << "\n";
  }
  PrintTable(rows);
  return kExitOk;
}

std::string ReadAll(std::istream& in) {
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Turns vault-style args into a JSON body: k=v, k=@file, k=- (stdin), "-" (JSON object on
// stdin) or "@file.json" (JSON object in a file).
absl::StatusOr<json::object> ParseKv(const std::vector<std::string>& args) {
  json::object out;
  bool stdin_used = false;
  auto read_stdin = [&]() -> absl::StatusOr<std::string> {
    if (stdin_used) return absl::InvalidArgumentError("stdin can only be used once");
    stdin_used = true;
    return ReadAll(std::cin);
  };
  auto parse_obj = [&](const std::string& text, std::string_view from) -> absl::Status {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object())
      return absl::InvalidArgumentError(Cat("failed to parse JSON object from ", from));
    for (auto& [k, val] : v.as_object()) out[k] = val;
    return absl::OkStatus();
  };
  for (const auto& a : args) {
    if (a == "-") {
      ASSIGN_OR_RETURN(std::string text, read_stdin());
      RETURN_IF_ERROR(parse_obj(text, "stdin"));
      continue;
    }
    if (!a.empty() && a[0] == '@') {
      std::ifstream f(a.substr(1));
      if (!f) return absl::InvalidArgumentError(Cat("cannot read file ", a.substr(1)));
      RETURN_IF_ERROR(parse_obj(ReadAll(f), a.substr(1)));
      continue;
    }
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      return absl::InvalidArgumentError(
          Cat("invalid key/value pair \"", a, "\": use key=value, key=@file or key=-"));
    std::string k = a.substr(0, eq), v = a.substr(eq + 1);
    if (v == "-") {
      ASSIGN_OR_RETURN(v, read_stdin());
    } else if (!v.empty() && v[0] == '@') {
      std::ifstream f(v.substr(1), std::ios::binary);
      if (!f)
        return absl::InvalidArgumentError(Cat("cannot read file ", v.substr(1), " for key ", k));
      v = ReadAll(f);
    }
    out[k] = v;
  }
  return out;
}

std::string ApiPath(std::string p) {
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  return "/v1/" + p;
}

std::optional<json::object> ParseObject(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

namespace {

struct Shared {
  ClientFlags flags;
};

// ---- operator / status ------------------------------------------------------------------

int PrintSealStatus(const json::object& s, const std::string& format) {
  // vault's status output adds the leader's ha_enabled to the seal status.
  json::object full = s;
  if (!full.contains("ha_enabled")) full["ha_enabled"] = false;
  if (!PrintStructured(full, format)) {
    auto get = [&](const char* k) { return s.contains(k) ? ValueText(s.at(k)) : std::string(); };
    std::vector<std::pair<std::string, std::string>> rows;
    const bool recovery = get("recovery_seal") == "true";
    for (const char* k : {"type", "recovery_seal", "initialized", "sealed", "n", "t"}) {
      static const std::map<std::string_view, std::string_view> kLabels = {
          {"type", "Seal Type"},          {"recovery_seal", "Recovery Seal Type"},
          {"initialized", "Initialized"}, {"sealed", "Sealed"},
          {"n", "Total Shares"},          {"t", "Threshold"}};
      if (std::string_view(k) == "recovery_seal" && !recovery) continue;
      std::string label(kLabels.at(k));
      if (recovery && (label == "Total Shares" || label == "Threshold"))
        label = label == "Threshold" ? "Recovery Threshold" : "Total Recovery Shares";
      rows.emplace_back(label, std::string_view(k) == "recovery_seal" ? "shamir" : get(k));
    }
    if (s.contains("sealed") && s.at("sealed").is_bool() && s.at("sealed").as_bool()) {
      rows.emplace_back("Unseal Progress", get("progress") + "/" + get("t"));
      rows.emplace_back("Unseal Nonce", get("nonce"));
      if (get("migration") == "true") rows.emplace_back("Seal Migration in Progress", "true");
      if (s.contains("seal_error")) rows.emplace_back("Seal Error", get("seal_error"));
    }
    rows.emplace_back("Version", get("version"));
    rows.emplace_back("Storage Type", get("storage_type"));
    if (s.contains("cluster_name")) rows.emplace_back("Cluster Name", get("cluster_name"));
    if (s.contains("cluster_id")) rows.emplace_back("Cluster ID", get("cluster_id"));
    const bool ha =
        s.contains("ha_enabled") && s.at("ha_enabled").is_bool() && s.at("ha_enabled").as_bool();
    rows.emplace_back("HA Enabled", ha ? "true" : "false");
    if (ha) {
      const bool self = get("is_self") == "true";
      rows.emplace_back("HA Mode", self ? "active" : "standby");
      rows.emplace_back("Active Node Address", get("leader_address"));
      if (self) rows.emplace_back("Active Since", get("active_time"));
    }
    PrintTable(rows);
  }
  return kExitOk;
}

}  // namespace

void AddClientFlags(CLI::App* app, ClientFlags* f) {
  app->add_option("--address", f->address, "Server address (env COFFER_ADDR, VAULT_ADDR)");
  app->add_option("--ca-cert", f->ca_cert, "CA certificate file (env COFFER_CACERT, VAULT_CACERT)");
  app->add_flag("--tls-skip-verify", f->skip_verify,
                "Do not verify the server certificate (insecure)");
  app->add_option("--client-cert", f->client_cert,
                  "Client certificate (PEM) for a server that asks for one (env "
                  "COFFER_CLIENT_CERT, VAULT_CLIENT_CERT)");
  app->add_option("--client-key", f->client_key,
                  "The client certificate's key (env COFFER_CLIENT_KEY, VAULT_CLIENT_KEY)");
  app->add_option("--format", f->format,
                  "Output format: table, json, yaml or pretty (env COFFER_FORMAT, VAULT_FORMAT)");
  app->add_flag("--output-curl-string", f->output_curl_string,
                "Print the equivalent curl command instead of making the request");
  // Checked once this command's flags are parsed, before it makes any request.
  app->parse_complete_callback([f] {
    CheckFormat(*f, /*raw_allowed=*/false);
    SetCurlMode(f->output_curl_string);
  });
}

void AddWrapFlag(CLI::App* app, ClientFlags* f) {
  app->add_option("--wrap-ttl", f->wrap_ttl,
                  "Wrap the response in a single-use token with this TTL (e.g. 60s; env "
                  "COFFER_WRAP_TTL, VAULT_WRAP_TTL); `coffer unwrap` reads it");
}

void RegisterClientCommands(CLI::App& app, int* exit_code) {
  auto shared = std::make_shared<Shared>();
  ClientFlags* flags = &shared->flags;

  // coffer status
  auto* status =
      app.add_subcommand("status", "Print the seal status (exit 0 unsealed, 2 sealed, 1 error)");
  AddClientFlags(status, flags);
  status->callback([shared, exit_code] {
    // Vault's contract: 0 unsealed, 2 sealed, 1 for anything else (unreachable, TLS, an error),
    // so a script never takes a dead server for a sealed one.
    auto o = Resolve(shared->flags);
    auto r = Request(o, "GET", "/v1/sys/seal-status", "", exit_code);
    if (!r) {
      if (!CurlPrinted()) *exit_code = kExitLocal;
      return;
    }
    if (r->status != 200) {
      ReportApiError("checking seal status", o, "GET", "/v1/sys/seal-status", *r);
      *exit_code = kExitLocal;
      return;
    }
    auto s = ParseObject(r->body);
    if (!s) {
      std::cerr << "Error: unexpected response from server\n";
      *exit_code = kExitLocal;
      return;
    }
    // As vault's status: the HA state from sys/leader (ha_enabled, mode, the active node).
    if (auto l = http::Call(o, "GET", "/v1/sys/leader"); l.ok() && l->status == 200) {
      if (auto lo = ParseObject(l->body)) {
        const json::value* ha = lo->if_contains("ha_enabled");
        if (ha && ha->is_bool() && ha->as_bool())
          for (const char* k : {"ha_enabled", "is_self", "leader_address", "active_time"})
            if (lo->contains(k)) (*s)[k] = lo->at(k);
      }
    }
    PrintSealStatus(*s, Format(shared->flags));
    *exit_code = (*s)["sealed"].is_bool() && (*s)["sealed"].as_bool() ? kExitRemote : kExitOk;
  });

  // coffer print token: the token the other commands send (what -output-curl-string's
  // $(coffer print token) stands for).
  auto* print = app.add_subcommand("print", "Print a value the CLI uses (vault print)");
  print->require_subcommand(1);
  print->add_subcommand("token", "Print the token the CLI would send (env, then ~/.coffer-token)")
      ->callback([] { std::cout << Resolve(ClientFlags{}).token << "\n"; });

  // coffer operator ...
  auto* op = app.add_subcommand("operator", "Init, unseal, seal and rotate the server");
  op->require_subcommand(1);

  auto* init = op->add_subcommand("init", "Initialize a new server");
  AddClientFlags(init, flags);
  auto shares = std::make_shared<int>(5), threshold = std::make_shared<int>(3);
  init->add_option("--key-shares", *shares, "Number of unseal key shares")->capture_default_str();
  init->add_option("--key-threshold", *threshold, "Shares needed to unseal")->capture_default_str();
  auto rshares = std::make_shared<int>(5), rthreshold = std::make_shared<int>(3);
  init->add_option("--recovery-shares", *rshares, "Number of recovery key shares (auto seals)")
      ->capture_default_str();
  init->add_option("--recovery-threshold", *rthreshold,
                   "Recovery shares needed to authorize root generation and rekey (auto seals)")
      ->capture_default_str();
  auto init_status = std::make_shared<bool>(false);
  init->add_flag("--status", *init_status,
                 "Only report whether the server is initialized: exit 0 if it is, 2 if not, 1 on "
                 "error (as vault)");
  init->callback([shared, shares, threshold, rshares, rthreshold, init_status, exit_code] {
    auto o = Resolve(shared->flags);
    if (*init_status) {
      auto r = Request(o, "GET", "/v1/sys/init", "", exit_code);
      if (!r) {
        if (!CurlPrinted())
          *exit_code = kExitLocal;  // unreachable: an error, not "not initialized"
        return;
      }
      auto res = r->status == 200 ? ParseObject(r->body) : std::nullopt;
      if (!res || !(*res)["initialized"].is_bool()) {
        if (r->status != 200)
          ReportApiError("reading the init status", o, "GET", "/v1/sys/init", *r);
        *exit_code = kExitLocal;
        return;
      }
      const bool yes = (*res)["initialized"].as_bool();
      std::cout << (yes ? "Coffer is initialized" : "Coffer is not initialized") << "\n";
      *exit_code = yes ? kExitOk : kExitRemote;
      return;
    }
    // Both sets, as vault's CLI sends them: the server uses the one its seal takes.
    std::string body = json::serialize(json::object{{"secret_shares", *shares},
                                                    {"secret_threshold", *threshold},
                                                    {"recovery_shares", *rshares},
                                                    {"recovery_threshold", *rthreshold}});
    auto r = Request(o, "PUT", "/v1/sys/init", body, exit_code);
    if (!r) return;
    if (r->status != 200) {
      *exit_code = ReportApiError("initializing", o, "PUT", "/v1/sys/init", *r);
      return;
    }
    auto res = ParseObject(r->body);
    if (!res) {
      *exit_code = kExitRemote;
      return;
    }
    if (Format(shared->flags) != "table") {
      (*res)["unseal_keys_b64"] = (*res)["keys_base64"];
      (*res)["unseal_keys_hex"] = (*res)["keys"];
      (*res)["unseal_shares"] = *shares;
      (*res)["unseal_threshold"] = *threshold;
      if (PrintStructured(*res, Format(shared->flags))) return;
    }
    const json::value* recovery = res->if_contains("recovery_keys_base64");
    if (recovery && recovery->is_array()) {
      int i = 1;
      for (const auto& k : recovery->as_array())
        std::cout << "Recovery Key " << i++ << ": " << std::string_view(k.as_string()) << "\n";
      std::cout << "\nInitial Root Token: " << std::string_view((*res)["root_token"].as_string())
                << "\n\n"
                << "Success! Coffer is initialized and unsealed by its seal. Recovery key "
                   "initialized with "
                << *rshares << " key shares and a key threshold of " << *rthreshold
                << ". The recovery keys do not open the root key: the seal does. They authorize "
                   "generating a root token, rekeying and a manual unseal while the seal is "
                   "reachable, and become the unseal keys if the server migrates back to "
                   "Shamir. Keep them apart and safe.\n";
      return;
    }
    int i = 1;
    for (const auto& k : (*res)["keys_base64"].as_array())
      std::cout << "Unseal Key " << i++ << ": " << std::string_view(k.as_string()) << "\n";
    std::cout << "\nInitial Root Token: " << std::string_view((*res)["root_token"].as_string())
              << "\n\n"
              << "Coffer initialized with " << *shares << " key shares and a key threshold of "
              << *threshold << ". Keep the keys apart and safe: " << *threshold
              << " of them are needed each time the server starts.\n";
  });

  auto* unseal = op->add_subcommand("unseal", "Submit one unseal key share");
  AddClientFlags(unseal, flags);
  auto key = std::make_shared<std::string>();
  auto reset = std::make_shared<bool>(false);
  unseal->add_option("key", *key, "Key share (hex or base64); read from stdin when omitted or '-'");
  unseal->add_flag("--reset", *reset, "Discard the shares submitted so far");
  auto migrate = std::make_shared<bool>(false);
  unseal->add_flag("--migrate", *migrate,
                   "Move the server to the configured seal (Shamir <-> auto seal) with the keys "
                   "of the seal it was sealed with");
  unseal->callback([shared, key, reset, migrate, exit_code] {
    auto o = Resolve(shared->flags);
    json::object body;
    if (*reset) {
      body["reset"] = true;
    } else {
      auto k = ReadSecret(*key, "unseal key",
                          *migrate ? "Key (unseal or recovery key, will be hidden): "
                                   : "Unseal Key (will be hidden): ");
      if (!k.ok()) {
        std::cerr << "Error: " << k.status().message() << "\n";
        *exit_code = kExitLocal;
        return;
      }
      body["key"] = *k;
      if (*migrate) body["migrate"] = true;
    }
    auto r = Request(o, "PUT", "/v1/sys/unseal", json::serialize(body), exit_code);
    if (!r) return;
    if (r->status != 200) {
      *exit_code = ReportApiError("unsealing", o, "PUT", "/v1/sys/unseal", *r);
      return;
    }
    auto s = ParseObject(r->body);
    if (!s) {
      *exit_code = kExitRemote;
      return;
    }
    PrintSealStatus(*s, Format(shared->flags));
  });

  auto simple = [&](CLI::App* parent, const char* name, const char* help, const char* method,
                    const char* path, const char* action, const char* ok) {
    auto* c = parent->add_subcommand(name, help);
    AddClientFlags(c, flags);
    c->callback([shared, exit_code, method, path, action, ok] {
      auto o = Resolve(shared->flags);
      auto r = Request(o, method, path, "", exit_code);
      if (!r) return;
      if (r->status >= 300) {
        *exit_code = ReportApiError(action, o, method, path, *r);
        return;
      }
      std::cout << ok << "\n";
    });
  };
  simple(op, "seal", "Seal the server (wipes keys from memory)", "PUT", "/v1/sys/seal", "sealing",
         "Success! Coffer is sealed.");
  simple(op, "rotate", "Add a new barrier encryption key term", "PUT", "/v1/sys/rotate",
         "rotating key", "Success! Rotated key");
  simple(op, "step-down", "Make the active server of an HA cluster give way to a standby", "PUT",
         "/v1/sys/step-down", "stepping down", "Success! Stepped down: ");
  RegisterOperatorKeyCommands(op, exit_code);

  // coffer read / write / list / delete
  auto field = std::make_shared<std::string>();
  auto path = std::make_shared<std::string>();
  auto kv = std::make_shared<std::vector<std::string>>();

  auto* read = app.add_subcommand("read", "Read data at a path");
  AddClientFlags(read, flags);
  AddWrapFlag(read, flags);
  read->add_option("--field", *field, "Print only this field's value");
  read->add_option("path", *path, "Path to read")->required();
  read->add_option("args", *kv, "Query parameters as key=value");
  read->parse_complete_callback([shared] {
    CheckFormat(shared->flags, /*raw_allowed=*/true);  // -format=raw: the response body as is
    SetCurlMode(shared->flags.output_curl_string);
  });
  read->callback([shared, field, path, kv, exit_code] {
    auto o = ResolveWrapped(shared->flags);
    std::string p = ApiPath(*path);
    std::string q;
    for (const auto& a : *kv) q += (q.empty() ? "?" : "&") + a;
    auto r = Request(o, "GET", p + q, "", exit_code);
    if (!r) return;
    if (r->status == 404) {
      auto body = ParseObject(r->body);
      bool empty_errors = body && body->contains("errors") && (*body)["errors"].is_array() &&
                          (*body)["errors"].as_array().empty();
      if (empty_errors) {
        std::cerr << "No value found at " << *path << "\n";
        *exit_code = kExitRemote;
        return;
      }
    }
    if (r->status >= 300) {
      *exit_code = ReportApiError(Cat("reading ", *path), o, "GET", p, *r);
      return;
    }
    if (r->status == 204) {
      std::cerr << "No value found at " << *path << "\n";
      *exit_code = kExitRemote;
      return;
    }
    auto body = ParseObject(r->body);
    if (!body || (Format(shared->flags) == "raw" && field->empty())) {
      std::cout << r->body << "\n";
      return;
    }
    if (!body->contains("data") && !body->contains("request_id")) {
      // A raw (un-enveloped) response such as sys/health: show it as the data.
      json::object wrapped{{"data", *body}};
      *exit_code = PrintSecret(wrapped, Format(shared->flags), *field);
      return;
    }
    *exit_code = PrintSecret(*body, Format(shared->flags), *field);
  });

  auto* write = app.add_subcommand("write", "Write data to a path");
  AddClientFlags(write, flags);
  AddWrapFlag(write, flags);
  write->add_option("--field", *field, "Print only this field of the response");
  auto force = std::make_shared<bool>(false);
  write->add_flag("-f,--force", *force,
                  "Write with no data (for paths that expect none, such as sys/rotate)");
  write->add_option("path", *path, "Path to write")->required();
  write->add_option("data", *kv,
                    "key=value, key=@file, key=- (stdin), - (JSON on stdin), @file.json");
  write->callback([shared, field, path, kv, force, exit_code] {
    // As the vault CLI: a write without data is most often a forgotten argument.
    if (kv->empty() && !*force) {
      std::cerr << "Error: Must supply data or use -force\n";
      *exit_code = kExitLocal;
      return;
    }
    auto o = ResolveWrapped(shared->flags);
    auto data = ParseKv(*kv);
    if (!data.ok()) {
      std::cerr << "Error: " << data.status().message() << "\n";
      *exit_code = kExitLocal;
      return;
    }
    std::string p = ApiPath(*path);
    auto r = Request(o, "PUT", p, json::serialize(*data), exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError(Cat("writing data to ", *path), o, "PUT", p, *r);
      return;
    }
    auto body = r->status == 204 ? std::nullopt : ParseObject(r->body);
    if (!body) {
      std::cout << "Success! Data written to: " << *path << "\n";
      return;
    }
    *exit_code = PrintSecret(*body, Format(shared->flags), *field);
  });

  auto* unwrap = app.add_subcommand(
      "unwrap", "Unwrap a wrapped response: the token given, or the client token itself");
  auto unwrap_token = std::make_shared<std::string>();
  AddClientFlags(unwrap, flags);
  unwrap->add_option("--field", *field, "Print only this field of the unwrapped data");
  unwrap->add_option("token", *unwrap_token, "The wrapping token (default: the client token)");
  unwrap->callback([shared, field, unwrap_token, exit_code] {
    auto o = Resolve(shared->flags);
    json::object body;
    if (!unwrap_token->empty()) body["token"] = *unwrap_token;
    auto r = Request(o, "PUT", "/v1/sys/wrapping/unwrap", json::serialize(body), exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("unwrapping", o, "PUT", "/v1/sys/wrapping/unwrap", *r);
      return;
    }
    auto parsed = r->status == 204 ? std::nullopt : ParseObject(r->body);
    if (!parsed) {
      std::cout << "Success! The wrapped response was empty\n";
      return;
    }
    // A wrapped token (auth/token/create, a login) is shown as its auth block.
    if (const auto* a = parsed->if_contains("auth");
        a && a->is_object() && (!parsed->contains("data") || parsed->at("data").is_null())) {
      *exit_code = PrintAuth(*parsed, Format(shared->flags), *field);
      return;
    }
    *exit_code = PrintSecret(*parsed, Format(shared->flags), *field);
  });

  auto* list = app.add_subcommand("list", "List keys under a path");
  AddClientFlags(list, flags);
  AddWrapFlag(list, flags);
  list->add_option("path", *path, "Path to list")->required();
  list->callback([shared, path, exit_code] {
    auto o = ResolveWrapped(shared->flags);
    std::string p = ApiPath(*path);
    auto r = Request(o, "LIST", p, "", exit_code);
    if (!r) return;
    if (r->status == 404) {
      std::cerr << "No value found at " << *path << "\n";
      *exit_code = kExitRemote;
      return;
    }
    if (r->status >= 300) {
      *exit_code = ReportApiError(Cat("listing ", *path), o, "LIST", p, *r);
      return;
    }
    auto body = ParseObject(r->body);
    const json::value* keys = nullptr;
    if (body && (*body)["data"].is_object()) keys = (*body)["data"].as_object().if_contains("keys");
    if (!keys || !keys->is_array()) {
      std::cerr << "No value found at " << *path << "\n";
      *exit_code = kExitRemote;
      return;
    }
    if (PrintStructured(*keys, Format(shared->flags))) return;
    std::cout << "Keys\n----\n";
    for (const auto& k : keys->as_array()) std::cout << ValueText(k) << "\n";
  });

  auto* del = app.add_subcommand("delete", "Delete data at a path");
  AddClientFlags(del, flags);
  AddWrapFlag(del, flags);
  del->add_option("path", *path, "Path to delete")->required();
  del->callback([shared, path, exit_code] {
    auto o = ResolveWrapped(shared->flags);
    std::string p = ApiPath(*path);
    auto r = Request(o, "DELETE", p, "", exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError(Cat("deleting ", *path), o, "DELETE", p, *r);
      return;
    }
    std::cout << "Success! Data deleted (if it existed) at: " << *path << "\n";
  });

  // coffer secrets ...
  auto* secrets = app.add_subcommand("secrets", "Enable, disable, list and tune secrets engines");
  secrets->require_subcommand(1);
  auto mpath = std::make_shared<std::string>();
  auto desc = std::make_shared<std::string>();
  auto dttl = std::make_shared<std::string>();
  auto mttl = std::make_shared<std::string>();
  auto options = std::make_shared<std::vector<std::string>>();
  auto type = std::make_shared<std::string>();

  auto* enable = secrets->add_subcommand("enable", "Enable a secrets engine");
  AddClientFlags(enable, flags);
  enable->add_option("--path", *mpath, "Mount path (default: the type)");
  enable->add_option("--description", *desc, "Human-friendly description");
  enable->add_option("--default-lease-ttl", *dttl, "Default lease TTL (e.g. 1h)");
  enable->add_option("--max-lease-ttl", *mttl, "Maximum lease TTL (e.g. 720h)");
  enable->add_option("--options", *options, "Engine options as key=value (repeatable)");
  auto version = std::make_shared<std::string>();
  enable->add_option("--version", *version,
                     "The engine's version: -version=2 on kv is versioned kv (options version=2)");
  enable->add_option("type", *type, "Engine type (kv, generic ...)")->required();
  enable->callback([shared, mpath, desc, dttl, mttl, options, version, type, exit_code] {
    auto o = Resolve(shared->flags);
    std::string mp = mpath->empty() ? *type : *mpath;
    json::object body{{"type", *type}, {"description", *desc}};
    json::object cfg;
    if (!dttl->empty()) cfg["default_lease_ttl"] = *dttl;
    if (!mttl->empty()) cfg["max_lease_ttl"] = *mttl;
    if (!cfg.empty()) body["config"] = cfg;
    json::object opts;
    for (const auto& kvp : *options) {
      size_t eq = kvp.find('=');
      if (eq == std::string::npos) {
        std::cerr << "Error: -options takes key=value\n";
        *exit_code = kExitLocal;
        return;
      }
      opts[kvp.substr(0, eq)] = kvp.substr(eq + 1);
    }
    if (!version->empty()) opts["version"] = *version;
    if (!opts.empty()) body["options"] = opts;
    std::string p = ApiPath("sys/mounts/" + mp);
    auto r = Request(o, "POST", p, json::serialize(body), exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError(Cat("enabling"), o, "POST", p, *r);
      return;
    }
    while (!mp.empty() && mp.back() == '/') mp.pop_back();
    std::cout << "Success! Enabled the " << *type << " secrets engine at: " << mp << "/\n";
  });

  auto* disable = secrets->add_subcommand("disable", "Disable a secrets engine (deletes its data)");
  AddClientFlags(disable, flags);
  disable->add_option("path", *mpath, "Mount path")->required();
  disable->callback([shared, mpath, exit_code] {
    auto o = Resolve(shared->flags);
    std::string p = ApiPath("sys/mounts/" + *mpath);
    auto r = Request(o, "DELETE", p, "", exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("disabling secrets engine", o, "DELETE", p, *r);
      return;
    }
    std::string mp = *mpath;
    while (!mp.empty() && mp.back() == '/') mp.pop_back();
    std::cout << "Success! Disabled the secrets engine (if it existed) at: " << mp << "/\n";
  });

  auto* slist = secrets->add_subcommand("list", "List enabled secrets engines");
  AddClientFlags(slist, flags);
  auto detailed = std::make_shared<bool>(false);
  slist->add_flag("--detailed", *detailed,
                  "Also show TTLs, options, local, seal wrap and the mount's UUID");
  slist->callback([shared, detailed, exit_code] {
    auto o = Resolve(shared->flags);
    auto r = Request(o, "GET", "/v1/sys/mounts", "", exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("listing secrets engines", o, "GET", "/v1/sys/mounts", *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (!body || !(*body)["data"].is_object()) {
      *exit_code = kExitRemote;
      return;
    }
    const auto& data = (*body)["data"].as_object();
    if (PrintStructured(data, Format(shared->flags))) return;
    std::vector<std::string> paths;
    for (const auto& [k, _] : data) paths.emplace_back(k);
    std::sort(paths.begin(), paths.end());
    size_t w = 4;
    for (const auto& p : paths) w = std::max(w, p.size());
    auto pad = [&](const std::string& s, size_t width) {
      return s + std::string(width - std::min(width, s.size()) + 4, ' ');
    };
    if (*detailed) {
      // Vault's -detailed columns that Coffer has; a TTL of 0 follows the system's ("system").
      auto ttl = [](const json::object& e, const char* key) -> std::string {
        const json::value* c = e.if_contains("config");
        const json::value* v = c && c->is_object() ? c->as_object().if_contains(key) : nullptr;
        if (!v || !v->is_int64() || v->as_int64() == 0) return "system";
        return Cat(v->as_int64() / 3600, "h", v->as_int64() % 3600 / 60, "m", v->as_int64() % 60,
                   "s");
      };
      auto options = [](const json::object& e) {
        const json::value* v = e.if_contains("options");
        if (!v || !v->is_object() || v->as_object().empty()) return std::string("n/a");
        std::string out = "map[";
        bool first = true;
        for (const auto& [k, val] : v->as_object()) {
          out += Cat(first ? "" : " ", std::string_view(k), ":", ValueText(val));
          first = false;
        }
        return out + "]";
      };
      std::vector<std::vector<std::string>> rows = {
          {"Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Local", "Seal Wrap", "Options",
           "Description", "UUID"},
          {"----", "------", "--------", "-----------", "-------", "-----", "---------", "-------",
           "-----------", "----"}};
      for (const auto& p : paths) {
        const auto& e = data.at(p).as_object();
        rows.push_back(
            {p, ValueText(e.at("type")), ValueText(e.at("accessor")), ttl(e, "default_lease_ttl"),
             ttl(e, "max_lease_ttl"), e.contains("local") ? ValueText(e.at("local")) : "false",
             e.contains("seal_wrap") ? ValueText(e.at("seal_wrap")) : "false", options(e),
             ValueText(e.at("description")), e.contains("uuid") ? ValueText(e.at("uuid")) : ""});
      }
      std::vector<size_t> width(rows[0].size(), 0);
      for (const auto& r : rows)
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
      for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i)
          line += i + 1 == r.size() ? r[i] : pad(r[i], width[i]);
        std::cout << line << "\n";
      }
      return;
    }
    std::cout << pad("Path", w) << pad("Type", 8) << pad("Accessor", 16) << "Description\n"
              << pad("----", w) << pad("----", 8) << pad("--------", 16) << "-----------\n";
    for (const auto& p : paths) {
      const auto& e = data.at(p).as_object();
      std::cout << pad(p, w) << pad(ValueText(e.at("type")), 8)
                << pad(ValueText(e.at("accessor")), 16) << ValueText(e.at("description")) << "\n";
    }
  });

  auto* tune = secrets->add_subcommand("tune", "Tune a secrets engine's TTLs or description");
  AddClientFlags(tune, flags);
  tune->add_option("--default-lease-ttl", *dttl, "Default lease TTL (e.g. 1h)");
  tune->add_option("--max-lease-ttl", *mttl, "Maximum lease TTL (e.g. 720h)");
  tune->add_option("--description", *desc, "Description");
  auto tune_options = std::make_shared<std::vector<std::string>>();
  tune->add_option("--options", *tune_options,
                   "Engine options as key=value (repeatable); version=2 converts a kv mount");
  tune->add_option("path", *mpath, "Mount path")->required();
  tune->callback([shared, mpath, desc, dttl, mttl, tune_options, exit_code] {
    auto o = Resolve(shared->flags);
    json::object body;
    if (!dttl->empty()) body["default_lease_ttl"] = *dttl;
    if (!mttl->empty()) body["max_lease_ttl"] = *mttl;
    if (!desc->empty()) body["description"] = *desc;
    json::object opts;
    for (const auto& kvp : *tune_options) {
      size_t eq = kvp.find('=');
      if (eq == std::string::npos) {
        std::cerr << "Error: -options takes key=value\n";
        *exit_code = kExitLocal;
        return;
      }
      opts[kvp.substr(0, eq)] = kvp.substr(eq + 1);
    }
    if (!opts.empty()) body["options"] = opts;
    std::string mp = *mpath;
    while (!mp.empty() && mp.back() == '/') mp.pop_back();
    std::string p = ApiPath("sys/mounts/" + mp + "/tune");
    auto r = Request(o, "POST", p, json::serialize(body), exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("tuning secrets engine", o, "POST", p, *r);
      return;
    }
    if (auto resp = ParseObject(r->body))
      if (const auto* w = resp->if_contains("warnings"); w && w->is_array())
        for (const auto& x : w->as_array()) std::cout << "WARNING! " << ValueText(x) << "\n";
    std::cout << "Success! Tuned the secrets engine at: " << mp << "/\n";
  });
}

}  // namespace coffer::cli
