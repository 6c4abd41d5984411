// `coffer transit encrypt|decrypt|rewrap|rewrap-all`: the Transit engine for files and pipes.
//
//   coffer transit encrypt KEY [FILE|-]      prints vault:v<N>:... for the file's bytes (stdin
//                                            without FILE or with -)
//   coffer transit decrypt KEY [FILE|-]      prints the plaintext bytes (or writes -out, 0600)
//   coffer transit rewrap KEY [FILE|-]       prints the ciphertext under the newest key version
//   coffer transit rewrap-all KEY PATH...    re-encrypts in place every Transit ciphertext found in
//                                            the files (folders walked), stale versions only
//
// rewrap-all rewrites text, not structures, so a Kubernetes Secret manifest in YAML or JSON (one
// or many documents, a List), a .env file or a bare ciphertext file keep their layout, comments
// and key order byte for byte: a value is rewritten when it is a ciphertext ("vault:v3:...", as
// in stringData) or the base64 of one (as in a Secret's data). Each changed file is replaced
// atomically with its mode kept. Ciphertexts go to the server in batches of 500 through
// rewrap/KEY; the plaintexts never reach this process.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/client_util.h"
#include "util/encoding.h"
#include "util/files.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

constexpr size_t kMaxFileBytes = size_t{64} << 20;
constexpr size_t kBatch = 500;

struct TransitArgs {
  ClientFlags flags;
  std::string mount = "transit";
  std::string key;
  std::string context;  // raw; sent base64
  std::string out;      // -out FILE
  std::vector<std::string> inputs;
  bool dry_run = false;
  bool all_versions = false;
};

std::string Api(const TransitArgs& a, std::string_view op) {
  std::string m = a.mount;
  while (!m.empty() && m.back() == '/') m.pop_back();
  while (!m.empty() && m.front() == '/') m.erase(0, 1);
  return Cat("/v1/", m, "/", op, "/", a.key);
}

// The input bytes: FILE, or stdin for "-" or nothing.
std::optional<std::string> ReadInput(const TransitArgs& a, int* code) {
  if (a.inputs.empty() || a.inputs[0] == "-") return ReadAll(std::cin);
  auto r = files::ReadIfExists(a.inputs[0]);
  if (!r.ok() || !r->has_value()) {
    std::cerr << "Error: cannot read " << a.inputs[0] << ": "
              << (r.ok() ? "no such file" : std::string(r.status().message())) << "\n";
    *code = kExitLocal;
    return std::nullopt;
  }
  return std::move(**r);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

// POSTs `body` to transit/<op>/<key>; the response's data, or nullopt with *code set.
std::optional<json::object> Call(const TransitArgs& a, std::string_view op, json::object body,
                                 int* code) {
  auto o = Resolve(a.flags);
  if (!a.context.empty()) body["context"] = Base64Encode(a.context);
  std::string path = Api(a, op);
  auto r = Request(o, "POST", path, json::serialize(body), code);
  if (!r) return std::nullopt;
  if (r->status >= 400 && r->status != 400) {
    *code = ReportApiError(Cat("calling ", op), o, "POST", path, *r);
    return std::nullopt;
  }
  auto v = ParseObject(r->body);
  if (r->status == 400 && !(v && v->contains("data"))) {
    *code = ReportApiError(Cat("calling ", op), o, "POST", path, *r);
    return std::nullopt;
  }
  if (!v || !v->contains("data") || !v->at("data").is_object()) {
    std::cerr << "Error: the server's answer has no data\n";
    *code = kExitRemote;
    return std::nullopt;
  }
  return v->at("data").as_object();
}

// A string field of the server's data; nullopt (with *code set and the reason shown) if absent.
std::optional<std::string> Field(const json::object& d, std::string_view key, int* code) {
  const json::value* v = d.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    std::cerr << "Error: the server's answer has no \"" << key << "\"\n";
    *code = kExitRemote;
    return std::nullopt;
  }
  return std::string(v->as_string());
}

void Emit(const TransitArgs& a, std::string_view bytes, bool secret, int* code) {
  if (a.out.empty() || a.out == "-") {
    std::cout << bytes;
    if (!secret) std::cout << "\n";
    std::cout.flush();
    return;
  }
  auto s = files::WriteAtomic(a.out, bytes, secret ? 0600 : 0644);
  if (!s.ok()) {
    std::cerr << "Error: writing " << a.out << ": " << s.message() << "\n";
    *code = kExitLocal;
  }
}

void Encrypt(const TransitArgs& a, int* code) {
  auto in = ReadInput(a, code);
  if (!in) return;
  auto d = Call(a, "encrypt", {{"plaintext", Base64Encode(*in)}}, code);
  if (!d) return;
  auto c = Field(*d, "ciphertext", code);
  if (c) Emit(a, *c, false, code);
}

void Decrypt(const TransitArgs& a, int* code) {
  auto in = ReadInput(a, code);
  if (!in) return;
  auto d = Call(a, "decrypt", {{"ciphertext", Trim(*in)}}, code);
  if (!d) return;
  auto b64 = Field(*d, "plaintext", code);
  if (!b64) return;
  auto plain = Base64Decode(*b64);
  if (!plain) {
    std::cerr << "Error: the server's plaintext is not base64\n";
    *code = kExitRemote;
    return;
  }
  Emit(a, *plain, true, code);
}

void Rewrap(const TransitArgs& a, int* code) {
  auto in = ReadInput(a, code);
  if (!in) return;
  auto d = Call(a, "rewrap", {{"ciphertext", Trim(*in)}}, code);
  if (!d) return;
  auto c = Field(*d, "ciphertext", code);
  if (c) Emit(a, *c, false, code);
}

// ---- rewrap-all -------------------------------------------------------------------------------

bool B64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

// One ciphertext found in a file: where, and whether it is base64-wrapped (a Secret's data).
struct Found {
  size_t begin = 0;
  size_t end = 0;
  bool wrapped = false;
  std::string ciphertext;
  int version = 0;
};

int VersionOf(std::string_view c) {
  // "vault:v<N>:"
  size_t colon = c.find(':', 7);
  int v = 0;
  for (size_t i = 7; i < colon && i < c.size(); ++i) {
    if (c[i] < '0' || c[i] > '9' || v > 100000000) return 0;
    v = v * 10 + (c[i] - '0');
  }
  return v;
}

bool LooksLikeCiphertext(std::string_view s) {
  if (s.substr(0, 7) != "vault:v") return false;
  size_t colon = s.find(':', 7);
  if (colon == std::string_view::npos || colon == 7 || colon > 16) return false;
  for (size_t i = 7; i < colon; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  if (colon + 1 >= s.size()) return false;
  for (size_t i = colon + 1; i < s.size(); ++i)
    if (!B64Char(s[i])) return false;
  return true;
}

// Every ciphertext in `text`, bare or base64-wrapped ("dmF1bHQ6d" is base64 of "vault:v").
std::vector<Found> Scan(const std::string& text) {
  std::vector<Found> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t bare = text.find("vault:v", i);
    size_t wrapped = text.find("dmF1bHQ6d", i);
    size_t at = std::min(bare, wrapped);
    if (at == std::string::npos) break;
    // A token starts at a non-token character ('=' ends a .env key, so it may precede one).
    if (at > 0 && ((B64Char(text[at - 1]) && text[at - 1] != '=') || text[at - 1] == ':')) {
      i = at + 1;
      continue;
    }
    size_t end = at;
    if (at == bare) {
      end = at + 7;
      while (end < text.size() && (B64Char(text[end]) || text[end] == ':')) ++end;
      std::string_view tok(text.data() + at, end - at);
      if (LooksLikeCiphertext(tok))
        out.push_back({at, end, false, std::string(tok), VersionOf(tok)});
    } else {
      while (end < text.size() && B64Char(text[end])) ++end;
      auto dec = Base64Decode(std::string_view(text.data() + at, end - at));
      if (dec && LooksLikeCiphertext(*dec)) out.push_back({at, end, true, *dec, VersionOf(*dec)});
    }
    i = std::max(end, at + 1);
  }
  return out;
}

void Collect(const std::string& p, std::vector<std::string>* files, int* code) {
  std::error_code ec;
  auto st = std::filesystem::symlink_status(p, ec);
  if (ec) {
    std::cerr << "Error: " << p << ": " << ec.message() << "\n";
    *code = kExitLocal;
    return;
  }
  if (std::filesystem::is_directory(st)) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(p, ec)) names.push_back(e.path());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      auto s = std::filesystem::symlink_status(n, ec);
      if (std::filesystem::is_directory(s) || std::filesystem::is_regular_file(s))
        Collect(n, files, code);
    }
  } else if (std::filesystem::is_regular_file(st)) {
    files->push_back(p);
  }
}

void RewrapAll(const TransitArgs& a, int* code) {
  if (a.inputs.empty()) {
    std::cerr << "Error: give the files or folders to rewrap\n";
    *code = kExitLocal;
    return;
  }
  // The newest version: only older ciphertexts are rewrapped (a second run changes nothing).
  int latest = 0;
  if (!a.all_versions) {
    auto o = Resolve(a.flags);
    std::string path = Api(a, "keys");
    auto r = Request(o, "GET", path, "", code);
    if (!r) return;
    if (r->status != 200) {
      *code = ReportApiError("reading the key", o, "GET", path, *r);
      std::cerr << "(rewrap-all needs read on " << path.substr(4)
                << "; -all-versions rewraps every ciphertext without it)\n";
      return;
    }
    auto v = ParseObject(r->body);
    const json::value* data = v ? v->if_contains("data") : nullptr;
    const json::value* lv = data != nullptr && data->is_object()
                                ? data->as_object().if_contains("latest_version")
                                : nullptr;
    if (lv == nullptr || !lv->is_int64()) {
      std::cerr << "Error: the server's answer for " << path << " has no latest_version\n";
      *code = kExitRemote;
      return;
    }
    latest = static_cast<int>(lv->as_int64());
  }
  std::vector<std::string> files;
  for (const auto& p : a.inputs) Collect(p, &files, code);
  if (*code != kExitOk) return;
  size_t changed_files = 0, changed_values = 0, current = 0;
  for (const auto& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) > kMaxFileBytes) continue;
    auto text = files::ReadIfExists(f);
    if (!text.ok() || !text->has_value()) continue;
    std::vector<Found> found = Scan(**text);
    std::vector<Found*> stale;
    for (auto& x : found) {
      if (a.all_versions || x.version < latest) {
        stale.push_back(&x);
      } else {
        ++current;
      }
    }
    if (stale.empty()) continue;
    if (a.dry_run) {
      std::cout << f << ": " << stale.size() << " ciphertext(s) to rewrap\n";
      changed_values += stale.size();
      ++changed_files;
      continue;
    }
    for (size_t b = 0; b < stale.size(); b += kBatch) {
      json::array batch;
      size_t n = std::min(kBatch, stale.size() - b);
      for (size_t i = 0; i < n; ++i) {
        json::object item{{"ciphertext", stale[b + i]->ciphertext}};
        if (!a.context.empty()) item["context"] = Base64Encode(a.context);
        batch.push_back(std::move(item));
      }
      auto d = Call(a, "rewrap", {{"batch_input", std::move(batch)}}, code);
      if (!d) {
        std::cerr << "(stopped at " << f << "; files before it were rewritten)\n";
        return;
      }
      const json::value* results = d->if_contains("batch_results");
      if (results == nullptr || !results->is_array() || results->as_array().size() != n) {
        std::cerr << "Error: " << f
                  << ": the server's answer has no batch_results for every item\n";
        *code = kExitRemote;
        return;
      }
      for (size_t i = 0; i < n; ++i) {
        const json::value& item = results->as_array()[i];
        const json::value* err = item.is_object() ? item.as_object().if_contains("error") : nullptr;
        if (err != nullptr || !item.is_object()) {
          std::cerr << "Error: " << f << ": " << (err ? ValueText(*err) : "malformed answer")
                    << "\n";
          *code = kExitRemote;
          return;
        }
        auto c = Field(item.as_object(), "ciphertext", code);
        if (!c) return;
        stale[b + i]->ciphertext = std::move(*c);
      }
    }
    // Rebuild the file, replacing from the back so earlier offsets stay valid.
    std::string out = **text;
    for (size_t k = stale.size(); k-- > 0;) {
      const Found* x = stale[k];
      out.replace(x->begin, x->end - x->begin,
                  x->wrapped ? Base64Encode(x->ciphertext) : x->ciphertext);
    }
    auto s = files::WriteAtomic(f, out, st.st_mode & 07777);
    if (!s.ok()) {
      std::cerr << "Error: writing " << f << ": " << s.message() << "\n";
      *code = kExitLocal;
      return;
    }
    changed_values += stale.size();
    ++changed_files;
  }
  std::cout << (a.dry_run ? "Would rewrap " : "Rewrapped ") << changed_values
            << " ciphertext(s) in " << changed_files << " file(s)";
  if (!a.all_versions)
    std::cout << " to version " << latest << "; " << current << " already current";
  std::cout << "\n";
}

CLI::App* Command(CLI::App* parent, const char* name, const char* help,
                  const std::shared_ptr<TransitArgs>& a) {
  auto* c = parent->add_subcommand(name, help);
  AddClientFlags(c, &a->flags);
  c->add_option("--mount", a->mount, "The transit mount's path (default transit)");
  c->add_option("--context", a->context, "Context for a derived key (sent base64-encoded)");
  c->add_option("key", a->key, "The transit key's name")->required();
  return c;
}

}  // namespace

void RegisterTransitCommands(CLI::App& app, int* exit_code) {
  auto* t = app.add_subcommand("transit", "Encrypt, decrypt and rewrap files with a Transit key");
  t->require_subcommand(1);
  {
    auto a = std::make_shared<TransitArgs>();
    auto* c = Command(t, "encrypt", "Encrypt a file or stdin; prints vault:v<N>:...", a);
    c->add_option("--out", a->out, "Write the ciphertext here instead of stdout");
    c->add_option("input", a->inputs, "The file (stdin without it, or with -)")->expected(0, 1);
    c->callback([a, exit_code] { Encrypt(*a, exit_code); });
  }
  {
    auto a = std::make_shared<TransitArgs>();
    auto* c = Command(t, "decrypt", "Decrypt a ciphertext from a file or stdin", a);
    c->add_option("--out", a->out, "Write the plaintext to this file (mode 0600)");
    c->add_option("input", a->inputs, "The file (stdin without it, or with -)")->expected(0, 1);
    c->callback([a, exit_code] { Decrypt(*a, exit_code); });
  }
  {
    auto a = std::make_shared<TransitArgs>();
    auto* c = Command(t, "rewrap", "Re-encrypt a ciphertext with the key's newest version", a);
    c->add_option("--out", a->out, "Write the ciphertext here instead of stdout");
    c->add_option("input", a->inputs, "The file (stdin without it, or with -)")->expected(0, 1);
    c->callback([a, exit_code] { Rewrap(*a, exit_code); });
  }
  {
    auto a = std::make_shared<TransitArgs>();
    auto* c = Command(t, "rewrap-all",
                      "Re-encrypt in place every older ciphertext in files, folders or "
                      "Kubernetes Secret manifests (YAML or JSON)",
                      a);
    c->add_flag("--dry-run", a->dry_run, "Only say which files hold older ciphertexts");
    c->add_flag("--all-versions", a->all_versions,
                "Rewrap every ciphertext found, not only older ones (needs no read on keys/)");
    c->add_option("paths", a->inputs, "Files or folders")->required();
    c->callback([a, exit_code] { RewrapAll(*a, exit_code); });
  }
}

}  // namespace coffer::cli
