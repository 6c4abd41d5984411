// PKI at scale (not a test): the same measurements on a mount with few stored certificates and
// on one with N (default 1,000,000) more, both on SQLite with 10,000 revoked certificates:
// sign latency, restart-to-unsealed time, `certs` paging, and CRL rotation.
//
//   build/pki_scale [N=1000000] [DIR=/tmp]
//
// The N records are written directly into the mount's storage view (through the barrier, in
// batches); they are real certificate records, so listing, tidy and revocation see them.
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "boost/json.hpp"
#include "core/core.h"
#include "crypto/crypto.h"
#include "crypto/x509.h"
#include "engines/pki/pki_backend.h"
#include "registry/builtin.h"
#include "storage/sqlite_storage.h"
#include "util/encoding.h"
#include "util/log.h"

namespace json = boost::json;
using namespace coffer;
using Steady = std::chrono::steady_clock;

namespace {

double Ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Result {
  double sign_p50 = 0, sign_p99 = 0, restart = 0, page_first = 0, page_middle = 0, crl = 0;
};

core::CoreOptions Options(storage::Storage* s) {
  core::CoreOptions o;
  o.physical = s;
  registry::AddBackends(o);
  o.tidy_interval = std::chrono::seconds(0);
  return o;
}

json::object Must(core::Core& c, const std::string& token, core::Operation op, std::string path,
                  json::object data = {}) {
  core::Request r;
  r.op = op;
  r.path = std::move(path);
  r.data = std::move(data);
  r.client_token = token;
  auto res = c.Handle(r);
  if (!res.ok()) {
    fprintf(stderr, "%s: %s\n", r.path.c_str(), std::string(res.status().message()).c_str());
    exit(1);
  }
  return res->data ? *res->data : json::object();
}

std::string RandomSerial() {
  auto b = crypto::RandomBytes(20).value();
  b[0] = static_cast<char>((b[0] & 0x7f) | 0x01);
  std::string s = crypto::SerialColonFromBytes(b);
  std::replace(s.begin(), s.end(), ':', '-');
  return s;
}

Result Run(const std::string& dir, size_t fill) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Result out;
  auto phys = storage::SqliteStorage::Open(dir + "/coffer.db").value();
  auto core = core::Core::Create(Options(phys.get())).value();
  auto init = core->Initialize(1, 1).value();
  std::string key = HexEncode(init.keys[0].view());
  std::string token = init.root_token;
  (void)core->Unseal(key, false);
  Must(*core, token, core::Operation::kUpdate, "sys/mounts/pki",
       {{"type", "pki"}, {"config", json::object{{"max_lease_ttl", "87600h"}}}});
  Must(*core, token, core::Operation::kUpdate, "pki/root/generate/internal",
       {{"common_name", "Scale Root"}, {"key_type", "ec"}, {"ttl", "87600h"}});
  Must(*core, token, core::Operation::kUpdate, "pki/roles/web",
       {{"allow_any_name", true}, {"key_type", "ec"}, {"ttl", "24h"}});
  Must(*core, token, core::Operation::kUpdate, "pki/config/crl", {{"auto_rebuild", true}});
  auto leaf = Must(*core, token, core::Operation::kUpdate, "pki/issue/web",
                   {{"common_name", "template.example.com"}});
  auto cert = crypto::ParseCertPem(std::string(leaf["certificate"].as_string())).value();
  std::string issuer_id(
      Must(*core, token, core::Operation::kRead, "pki/issuer/default")["issuer_id"].as_string());
  json::object rec{{"der", Base64Encode(crypto::CertDer(cert.get()))},
                   {"issuer_id", issuer_id},
                   {"not_after", crypto::NotAfterUnix(cert.get())}};
  const std::string body = json::serialize(rec);
  storage::Storage* view = core->MountStorage("pki/");

  // 10,000 certificates that will be revoked, then `fill` more.
  std::vector<std::string> to_revoke;
  auto put_batch = [&](size_t n, std::vector<std::string>* keep) {
    std::vector<storage::WriteOp> ops;
    for (size_t i = 0; i < n; ++i) {
      std::string s = RandomSerial();
      if (keep) keep->push_back(s);
      ops.push_back({storage::WriteOp::Kind::kPut, "certs/" + s, body});
      if (ops.size() == 10000) {
        (void)view->Write(std::move(ops));
        ops.clear();
      }
    }
    if (!ops.empty()) (void)view->Write(std::move(ops));
  };
  put_batch(10000, &to_revoke);
  auto t0 = Steady::now();
  put_batch(fill, nullptr);
  if (fill)
    fprintf(stderr, "  filled %zu records in %.1f s\n", fill, Ms(Steady::now() - t0) / 1000);
  for (const auto& s : to_revoke)
    Must(*core, token, core::Operation::kUpdate, "pki/revoke", {{"serial_number", s}});

  // Sign latency.
  auto k = crypto::GenerateKey({crypto::KeyType::kEc, 256}).value();
  crypto::CsrRequest q;
  q.common_name = "node1.example.com";
  std::string csr = crypto::MakeCsrPem(k.get(), q).value();
  std::vector<double> lat;
  for (int i = 0; i < 300; ++i) {
    auto a = Steady::now();
    Must(*core, token, core::Operation::kUpdate, "pki/sign/web", {{"csr", csr}});
    lat.push_back(Ms(Steady::now() - a));
  }
  std::sort(lat.begin(), lat.end());
  out.sign_p50 = lat[lat.size() / 2];
  out.sign_p99 = lat[lat.size() * 99 / 100];

  // Paging: the first page and a page from the middle of the key space.
  auto a = Steady::now();
  for (int i = 0; i < 50; ++i)
    Must(*core, token, core::Operation::kList, "pki/certs", {{"limit", "100"}});
  out.page_first = Ms(Steady::now() - a) / 50;
  a = Steady::now();
  for (int i = 0; i < 50; ++i)
    Must(*core, token, core::Operation::kList, "pki/certs", {{"limit", "100"}, {"after", "7f"}});
  out.page_middle = Ms(Steady::now() - a) / 50;

  // CRL rotation with 10,000 revoked.
  a = Steady::now();
  Must(*core, token, core::Operation::kRead, "pki/crl/rotate");
  out.crl = Ms(Steady::now() - a);

  // Restart: a new process-equivalent core over the same file, unsealed, serving the mount.
  core.reset();
  phys.reset();
  a = Steady::now();
  phys = storage::SqliteStorage::Open(dir + "/coffer.db").value();
  core = core::Core::Create(Options(phys.get())).value();
  (void)core->Unseal(key, false);
  Must(*core, token, core::Operation::kRead, "pki/roles/web");
  out.restart = Ms(Steady::now() - a);
  core.reset();
  phys.reset();
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = argc > 1 ? std::stoul(argv[1]) : 1000000;
  std::string dir = argc > 2 ? argv[2] : "/tmp";
  (void)log::Configure("error", "text");
  fprintf(stderr, "empty mount (10,000 revoked)...\n");
  Result e = Run(dir + "/coffer-pki-scale-empty", 0);
  fprintf(stderr, "mount with %zu more stored certificates...\n", n);
  Result f = Run(dir + "/coffer-pki-scale-full", n);
  printf("%-36s %12s %12s %8s\n", "measure", "empty", "full", "ratio");
  auto row = [](const char* name, double a, double b) {
    printf("%-36s %10.3fms %10.3fms %7.2fx\n", name, a, b, b / a);
  };
  row("sign/:role p50", e.sign_p50, f.sign_p50);
  row("sign/:role p99", e.sign_p99, f.sign_p99);
  row("restart to unsealed + first request", e.restart, f.restart);
  row("LIST certs limit=100 (first page)", e.page_first, f.page_first);
  row("LIST certs limit=100 after=7f", e.page_middle, f.page_middle);
  row("crl/rotate, 10,000 revoked", e.crl, f.crl);
  return 0;
}
