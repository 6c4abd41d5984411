// `coffer operator generate-root` and `coffer operator rekey`, as vault's:
//
//   coffer operator generate-root -init [-otp=OTP]     start (the server makes an OTP without one)
//   coffer operator generate-root [-nonce=N] KEY|-     submit a key share; the last one prints the
//                                                      encoded token
//   coffer operator generate-root -decode=ENC -otp=OTP the root token (no server needed)
//   coffer operator generate-root -status | -cancel
//   coffer operator rekey -init -key-shares=N -key-threshold=T [-verify]
//   coffer operator rekey [-verify] [-nonce=N] KEY|-   submit a current share (or, with -verify,
//                                                      a new one); the last prints the new keys
//   coffer operator rekey -status | -cancel [-verify]
#include <iostream>
#include <memory>

#include "cli/cli.h"
#include "cli/client_util.h"
#include "cli/output.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

struct KeyArgs {
  ClientFlags flags;
  bool init = false, status = false, cancel = false, verify = false;
  std::string otp, decode, nonce, key;
  std::string target = "barrier";
  int shares = 5, threshold = 3;
};

// Calls the server; the parsed answer ({} for 204), or nullopt with *code set.
std::optional<json::object> Call(const KeyArgs& a, const char* method, const std::string& path,
                                 const json::object& body, const char* action, int* code) {
  auto o = Resolve(a.flags);
  auto r = Request(o, method, path, body.empty() ? "" : json::serialize(body), code);
  if (!r) return std::nullopt;
  if (r->status >= 300) {
    *code = ReportApiError(action, o, method, path, *r);
    return std::nullopt;
  }
  if (r->status == 204 || r->body.empty()) return json::object();
  auto v = ParseObject(r->body);
  if (!v) {
    std::cerr << "Error: the server's answer is not JSON\n";
    *code = kExitRemote;
  }
  return v;
}

void Print(const KeyArgs& a, const json::object& o,
           const std::vector<std::pair<std::string, std::string>>& rows) {
  if (PrintStructured(o, Format(a.flags))) return;
  PrintTable(rows);
}

std::string S(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v == nullptr ? "" : ValueText(*v);
}

void GenerateRoot(const KeyArgs& a, int* code) {
  if (!a.decode.empty()) {
    if (a.otp.empty()) {
      std::cerr << "Error: -decode needs the -otp the attempt was started with\n";
      *code = kExitLocal;
      return;
    }
    std::string enc = a.decode;
    while (enc.size() % 4 != 0) enc += '=';
    auto raw = Base64Decode(enc);
    if (!raw || raw->size() != a.otp.size()) {
      std::cerr << "Error: the encoded token is not base64 of the OTP's length (" << a.otp.size()
                << " bytes)\n";
      *code = kExitLocal;
      return;
    }
    for (size_t i = 0; i < raw->size(); ++i)
      (*raw)[i] = static_cast<char>(static_cast<unsigned char>((*raw)[i]) ^
                                    static_cast<unsigned char>(a.otp[i]));
    std::cout << *raw << "\n";
    return;
  }
  const std::string attempt = "/v1/sys/generate-root/attempt";
  auto status_rows = [](const json::object& o) {
    std::vector<std::pair<std::string, std::string>> rows{
        {"Nonce", S(o, "nonce")},
        {"Started", S(o, "started")},
        {"Progress", S(o, "progress") + "/" + S(o, "required")},
        {"Complete", S(o, "complete")},
        {"OTP Length", S(o, "otp_length")}};
    if (!S(o, "otp").empty()) rows.emplace_back("OTP", S(o, "otp"));
    if (!S(o, "encoded_token").empty()) rows.emplace_back("Encoded Token", S(o, "encoded_token"));
    return rows;
  };
  if (a.cancel) {
    if (Call(a, "DELETE", attempt, {}, "canceling root generation", code))
      std::cout << "Success! Root token generation canceled (if it was started)\n";
    return;
  }
  if (a.status || a.init) {
    json::object body;
    if (a.init && !a.otp.empty()) body["otp"] = a.otp;
    auto o = a.init ? Call(a, "PUT", attempt, body, "starting root generation", code)
                    : Call(a, "GET", attempt, {}, "reading root generation status", code);
    if (o) Print(a, *o, status_rows(*o));
    return;
  }
  std::string nonce = a.nonce;
  if (nonce.empty()) {
    auto st = Call(a, "GET", attempt, {}, "reading root generation status", code);
    if (!st) return;
    nonce = S(*st, "nonce");
  }
  auto k = ReadSecret(a.key, "key share", "Unseal Key (will be hidden): ");
  if (!k.ok()) {
    std::cerr << "Error: " << k.status().message() << "\n";
    *code = kExitLocal;
    return;
  }
  auto o = Call(a, "PUT", "/v1/sys/generate-root/update", {{"key", *k}, {"nonce", nonce}},
                "submitting the key share", code);
  if (o) Print(a, *o, status_rows(*o));
}

void Rekey(const KeyArgs& a, int* code) {
  if (a.target != "barrier" && a.target != "recovery") {
    std::cerr << "Error: -target must be \"barrier\" or \"recovery\", got \"" << a.target << "\"\n";
    *code = kExitLocal;
    return;
  }
  // Vault's -target=recovery rekeys an auto seal's recovery key at its own path.
  const std::string root =
      a.target == "recovery" ? "/v1/sys/rekey-recovery-key/" : "/v1/sys/rekey/";
  const std::string base = root + (a.verify ? "verify" : "init");
  auto status_rows = [](const json::object& o) {
    return std::vector<std::pair<std::string, std::string>>{
        {"Nonce", S(o, "nonce")},
        {"Started", S(o, "started")},
        {"Rekey Progress",
         S(o, "progress") + (o.contains("required") ? "/" + S(o, "required") : "")},
        {"New Shares", S(o, "n")},
        {"New Threshold", S(o, "t")},
        {"Verification Required", S(o, "verification_required")}};
  };
  if (a.cancel) {
    if (Call(a, "DELETE", base, {}, "canceling the rekey", code))
      std::cout << (a.verify ? "Success! Rekey verification restarted (new nonce)\n"
                             : "Success! Canceled rekeying (if it was started)\n");
    return;
  }
  if (a.status || a.init) {
    json::object body{{"secret_shares", a.shares},
                      {"secret_threshold", a.threshold},
                      {"require_verification", a.verify}};
    auto o = a.init ? Call(a, "PUT", root + "init", body, "starting the rekey", code)
                    : Call(a, "GET", base, {}, "reading the rekey status", code);
    if (o) Print(a, *o, status_rows(*o));
    return;
  }
  std::string nonce = a.nonce;
  if (nonce.empty()) {
    auto st = Call(a, "GET", base, {}, "reading the rekey status", code);
    if (!st) return;
    nonce = S(*st, "nonce");
  }
  auto k = ReadSecret(a.key, "key share", "Key (will be hidden): ");
  if (!k.ok()) {
    std::cerr << "Error: " << k.status().message() << "\n";
    *code = kExitLocal;
    return;
  }
  auto o = Call(a, "PUT", root + (a.verify ? "verify" : "update"), {{"key", *k}, {"nonce", nonce}},
                "submitting the key share", code);
  if (!o) return;
  const json::value* complete = o->if_contains("complete");
  if (complete == nullptr || !complete->is_bool() || !complete->as_bool()) {
    Print(a, *o, status_rows(*o));
    return;
  }
  if (PrintStructured(*o, Format(a.flags))) return;
  if (a.verify) {
    std::cout << "Success! The new keys are verified and now unseal the server.\n";
    return;
  }
  const json::value* keys = o->if_contains("keys");
  if (keys != nullptr && keys->is_array()) {
    size_t i = 0;
    for (const auto& k2 : keys->as_array())
      std::cout << "Key " << ++i << ": " << ValueText(k2) << "\n";
  }
  if (!S(*o, "verification_nonce").empty())
    std::cout << "\nThe new keys take effect once verified: submit " << a.threshold
              << " of them with `coffer operator rekey -verify KEY` (nonce "
              << S(*o, "verification_nonce") << ").\n";
  else
    std::cout << "\nThe server's unseal keys were replaced by these. Keep them apart and safe.\n";
}

}  // namespace

void RegisterOperatorKeyCommands(CLI::App* op, int* exit_code) {
  {
    auto a = std::make_shared<KeyArgs>();
    auto* c = op->add_subcommand("generate-root", "Make a new root token from the unseal keys");
    AddClientFlags(c, &a->flags);
    c->add_flag("--init", a->init, "Start a root token generation");
    c->add_flag("--status", a->status, "Show the generation's progress");
    c->add_flag("--cancel", a->cancel, "Cancel the generation in progress");
    c->add_option("--otp", a->otp, "The one-time pad (28 characters; -init makes one without)");
    c->add_option("--decode", a->decode, "Decode this encoded token with -otp and print it");
    c->add_option("--nonce", a->nonce, "The generation's nonce (read from the server if omitted)");
    c->add_option("key", a->key, "Unseal key share (hex or base64); stdin with -");
    c->callback([a, exit_code] { GenerateRoot(*a, exit_code); });
  }
  {
    auto a = std::make_shared<KeyArgs>();
    auto* c = op->add_subcommand("rekey", "Replace the unseal key shares");
    AddClientFlags(c, &a->flags);
    c->add_flag("--init", a->init, "Start a rekey");
    c->add_flag("--status", a->status, "Show the rekey's progress");
    c->add_flag("--cancel", a->cancel, "Cancel the rekey (with -verify: restart verification)");
    c->add_flag("--verify", a->verify,
                "With -init: the new keys must be verified before they take effect; otherwise: "
                "submit a new key to the verification");
    c->add_option("--key-shares", a->shares, "Number of new key shares (5)");
    c->add_option("--key-threshold", a->threshold, "New shares needed to unseal (3)");
    c->add_option("--nonce", a->nonce, "The rekey's nonce (read from the server if omitted)");
    c->add_option("--target", a->target,
                  "barrier (the seal's keys) or recovery (an auto seal's recovery keys)");
    c->add_option("key", a->key, "Key share (hex or base64); stdin with -");
    c->callback([a, exit_code] { Rekey(*a, exit_code); });
  }
}

}  // namespace coffer::cli
