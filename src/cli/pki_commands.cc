// `coffer pki issue|sign|revoke|list|crl|verify`: helpers over the PKI API that write
// certificate and key files (atomically, keys 0600) and verify a certificate locally against a
// mount's published chain and CRL. `coffer write pki/issue/web common_name=...` works as well.
#include <fcntl.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/client_util.h"
#include "cli/output.h"
#include "crypto/x509.h"
#include "util/files.h"
#include "util/human_time.h"
#include "util/status.h"

namespace coffer::cli {
namespace json = boost::json;
namespace {

// temp file in the same folder, fsync, rename: readers see the old file or the new one.
std::string EndWithNewline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s + "\n";
}

struct PkiArgs {
  ClientFlags flags;
  std::string mount, role, serial, csr_file, cert_file, key_file, ca_file, out;
  std::string field;
  std::vector<std::string> kv;
  bool revoked = false;
};

// Runs issue or sign; writes the files asked for, else prints the response.
void IssueOrSign(PkiArgs* a, bool sign, int* exit_code) {
  auto o = Resolve(a->flags);
  auto data = ParseKv(a->kv);
  if (!data.ok()) {
    std::cerr << "Error: " << data.status().message() << "\n";
    *exit_code = kExitLocal;
    return;
  }
  if (sign) {
    std::ifstream in(a->csr_file);
    if (!in) {
      std::cerr << "Error: cannot read CSR file " << a->csr_file << "\n";
      *exit_code = kExitLocal;
      return;
    }
    (*data)["csr"] = ReadAll(in);
  }
  std::string p = ApiPath(Cat(a->mount, sign ? "/sign/" : "/issue/", a->role));
  auto r = Request(o, "PUT", p, json::serialize(*data), exit_code);
  if (!r) return;
  if (r->status >= 300) {
    *exit_code = ReportApiError(sign ? "signing" : "issuing", o, "PUT", p, *r);
    return;
  }
  auto body = ParseObject(r->body);
  if (!body || !body->contains("data")) {
    std::cerr << "Error: unexpected response\n";
    *exit_code = kExitRemote;
    return;
  }
  const json::object& d = (*body)["data"].as_object();
  bool wrote = false;
  auto put = [&](const std::string& path, std::string_view key, mode_t mode) {
    if (path.empty() || !d.contains(key)) return true;
    std::string text;
    if (key == "ca_chain") {
      for (const auto& c : d.at("ca_chain").as_array())
        text += EndWithNewline(std::string(c.as_string()));
    } else {
      text = EndWithNewline(std::string(d.at(key).as_string()));
    }
    if (auto st = files::WriteAtomic(path, text, mode); !st.ok()) {
      std::cerr << "Error: " << st.message() << "\n";
      return false;
    }
    wrote = true;
    return true;
  };
  if (!put(a->key_file, "private_key", 0600) || !put(a->cert_file, "certificate", 0644) ||
      !put(a->ca_file, "ca_chain", 0644)) {
    *exit_code = kExitLocal;
    return;
  }
  if (wrote) {
    const auto& exp = d.at("expiration");
    std::cout << "Success! serial " << ValueText(d.at("serial_number")) << ", expires "
              << (exp.is_int64() ? ExpiryText(exp.as_int64(), std::time(nullptr)) : ValueText(exp))
              << "\n";
    return;
  }
  *exit_code = PrintSecret(*body, Format(a->flags), a->field);
}

}  // namespace

void RegisterPkiCommands(CLI::App& app, int* exit_code) {
  auto* pki = app.add_subcommand("pki", "Issue, sign, revoke, list and verify certificates");
  pki->require_subcommand(1);
  auto a = std::make_shared<PkiArgs>();

  auto add_files = [&](CLI::App* c) {
    c->add_option("--cert-file", a->cert_file, "Write the certificate here");
    c->add_option("--ca-file", a->ca_file, "Write the CA chain here");
    c->add_option("--field", a->field, "Print only this field");
  };
  auto* issue = pki->add_subcommand("issue", "Issue a certificate and key: MOUNT ROLE k=v...");
  AddClientFlags(issue, &a->flags);
  issue->add_option("mount", a->mount, "PKI mount path")->required();
  issue->add_option("role", a->role, "Role name")->required();
  issue->add_option("data", a->kv, "common_name=..., alt_names=..., ttl=...");
  issue->add_option("--key-file", a->key_file, "Write the private key here (mode 0600)");
  add_files(issue);
  issue->callback([a, exit_code] { IssueOrSign(a.get(), false, exit_code); });

  auto* sign = pki->add_subcommand("sign", "Sign a CSR: MOUNT ROLE CSR_FILE k=v...");
  AddClientFlags(sign, &a->flags);
  sign->add_option("mount", a->mount, "PKI mount path")->required();
  sign->add_option("role", a->role, "Role name")->required();
  sign->add_option("csr", a->csr_file, "PEM CSR file")->required();
  sign->add_option("data", a->kv, "common_name=..., ttl=...");
  add_files(sign);
  sign->callback([a, exit_code] { IssueOrSign(a.get(), true, exit_code); });

  auto* revoke = pki->add_subcommand("revoke", "Revoke a certificate: MOUNT SERIAL");
  AddClientFlags(revoke, &a->flags);
  revoke->add_option("mount", a->mount, "PKI mount path")->required();
  revoke->add_option("serial", a->serial, "Serial number (colon or hyphen form)")->required();
  revoke->callback([a, exit_code] {
    auto o = Resolve(a->flags);
    std::string p = ApiPath(a->mount + "/revoke");
    auto r = Request(o, "PUT", p, json::serialize(json::object{{"serial_number", a->serial}}),
                     exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("revoking", o, "PUT", p, *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (body) *exit_code = PrintSecret(*body, Format(a->flags), a->field);
  });

  auto* list = pki->add_subcommand("list", "List stored (or --revoked) certificate serials");
  AddClientFlags(list, &a->flags);
  list->add_option("mount", a->mount, "PKI mount path")->required();
  list->add_flag("--revoked", a->revoked, "Only revoked certificates");
  list->callback([a, exit_code] {
    auto o = Resolve(a->flags);
    std::string p = ApiPath(a->mount + (a->revoked ? "/certs/revoked" : "/certs"));
    auto r = Request(o, "LIST", p, "", exit_code);
    if (!r) return;
    if (r->status == 404) {
      std::cerr << "No certificates found\n";
      *exit_code = kExitRemote;
      return;
    }
    if (r->status >= 300) {
      *exit_code = ReportApiError("listing", o, "LIST", p, *r);
      return;
    }
    auto body = ParseObject(r->body);
    if (!body) return;
    if (PrintStructured((*body)["data"].as_object()["keys"], Format(a->flags))) return;
    for (const auto& k : (*body)["data"].as_object()["keys"].as_array())
      std::cout << std::string_view(k.as_string()) << "\n";
  });

  auto* crl = pki->add_subcommand("crl", "Print (or --out FILE) the mount's CRL in PEM");
  AddClientFlags(crl, &a->flags);
  crl->add_option("mount", a->mount, "PKI mount path")->required();
  crl->add_option("--out", a->out, "Write the CRL here");
  crl->callback([a, exit_code] {
    auto o = Resolve(a->flags);
    std::string p = ApiPath(a->mount + "/crl/pem");
    auto r = Request(o, "GET", p, "", exit_code);
    if (!r) return;
    if (r->status >= 300) {
      *exit_code = ReportApiError("reading the CRL", o, "GET", p, *r);
      return;
    }
    if (a->out.empty()) {
      std::cout << r->body;
    } else if (auto st = files::WriteAtomic(a->out, r->body, 0644); !st.ok()) {
      std::cerr << "Error: " << st.message() << "\n";
      *exit_code = kExitLocal;
    }
  });

  auto* verify = pki->add_subcommand(
      "verify", "Verify a certificate file against the mount's CA chain and CRL: MOUNT FILE");
  AddClientFlags(verify, &a->flags);
  verify->add_option("mount", a->mount, "PKI mount path")->required();
  verify->add_option("cert", a->cert_file, "PEM certificate file")->required();
  verify->callback([a, exit_code] {
    auto o = Resolve(a->flags);
    std::ifstream in(a->cert_file);
    auto leaf = crypto::ParseCertPem(ReadAll(in));
    if (!leaf.ok()) {
      std::cerr << "Error: " << a->cert_file << ": " << leaf.status().message() << "\n";
      *exit_code = kExitLocal;
      return;
    }
    auto chain = Request(o, "GET", ApiPath(a->mount + "/ca_chain"), "", exit_code);
    if (!chain) return;
    auto crl = Request(o, "GET", ApiPath(a->mount + "/crl"), "", exit_code);
    if (!crl) return;
    if (chain->status >= 300 || crl->status >= 300) {
      std::cerr << "Error: the mount's CA chain or CRL could not be read\n";
      *exit_code = kExitRemote;
      return;
    }
    auto bundle = crypto::ParsePemBundle(chain->body);
    const auto* p = reinterpret_cast<const unsigned char*>(crl->body.data());
    crypto::Crl parsed(d2i_X509_CRL(nullptr, &p, static_cast<long>(crl->body.size())));
    if (!bundle.ok() || bundle->certs.empty() || !parsed) {
      std::cerr << "Error: the mount returned an unreadable chain or CRL\n";
      *exit_code = kExitRemote;
      return;
    }
    X509_STORE* store = X509_STORE_new();
    STACK_OF(X509)* untrusted = sk_X509_new_null();
    for (auto& c : bundle->certs) {
      if (crypto::IsSelfSigned(c.get()))
        X509_STORE_add_cert(store, c.get());
      else
        sk_X509_push(untrusted, c.get());
    }
    X509_STORE_add_crl(store, parsed.get());
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_X509_STRICT);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf->get(), untrusted);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    if (ok == 1) {
      std::cout << a->cert_file << ": OK (chain and CRL of " << a->mount << ")\n";
    } else {
      std::cout << a->cert_file << ": " << X509_verify_cert_error_string(err) << "\n";
      *exit_code = kExitRemote;
    }
  });
}

}  // namespace coffer::cli
