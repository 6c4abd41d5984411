// Where one sign/:role request's CPU goes, stage by stage, for a P-256 CSR and a P-256 issuer
// (the bench/pki case): CSR parse + signature check, certificate build + signature, the PEM and
// DER encodings the response and the stored record need, and the bare curve operations for
// comparison. Run: build/sign_path_bench (Google Benchmark).
#include <benchmark/benchmark.h>

#include "crypto/x509.h"

namespace {

using namespace coffer::crypto;

struct Fixture {
  PKey ca_key, leaf_key;
  Cert ca;
  std::string csr_pem;
  CertTemplate leaf;
  Fixture() {
    ca_key = *GenerateKey({KeyType::kEc, 256});
    leaf_key = *GenerateKey({KeyType::kEc, 256});
    CertTemplate root;
    root.common_name = "Bench Root CA";
    root.is_ca = true;
    root.not_before = 1700000000;
    root.not_after = 2000000000;
    ca = *SignCertificate(root, ca_key.get(), nullptr, ca_key.get());
    CsrRequest q;
    q.common_name = "node1.cluster.local";
    csr_pem = *MakeCsrPem(leaf_key.get(), q);
    leaf.common_name = "node1.cluster.local";
    leaf.dns_names = {"node1.cluster.local"};
    leaf.ip_sans = {"10.0.0.1"};
    leaf.key_usage = kDigitalSignature | kKeyAgreement | kKeyEncipherment;
    leaf.ext_key_usage = {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"};
    leaf.not_before = 1700000000;
    leaf.not_after = 1700086400;
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void BM_ParseCsr(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(ParseCsr(F().csr_pem));
}
BENCHMARK(BM_ParseCsr);

void BM_SignCertificate(benchmark::State& st) {
  auto csr = ParseCsr(F().csr_pem);
  for (auto _ : st)
    benchmark::DoNotOptimize(
        SignCertificate(F().leaf, csr->spki.get(), F().ca.get(), F().ca_key.get()));
}
BENCHMARK(BM_SignCertificate);

// The server's path: the DER writer, with the issuer key as the server holds it (parsed from
// its stored PEM, so a provider key, not the EC_KEY GenerateKey makes).
void BM_SignLeafDer(benchmark::State& st) {
  auto csr = ParseCsr(F().csr_pem);
  auto pem = PrivateKeyPem(F().ca_key.get(), "");
  auto key = ParsePrivateKeyPem(pem->view());
  for (auto _ : st)
    benchmark::DoNotOptimize(SignLeafDer(F().leaf, csr->spki.get(), F().ca.get(), key->get()));
}
BENCHMARK(BM_SignLeafDer);

void BM_CertPemAndDer(benchmark::State& st) {
  auto csr = ParseCsr(F().csr_pem);
  auto cert = SignCertificate(F().leaf, csr->spki.get(), F().ca.get(), F().ca_key.get());
  for (auto _ : st) {
    benchmark::DoNotOptimize(CertPem(cert->get()));
    benchmark::DoNotOptimize(CertDer(cert->get()));
    benchmark::DoNotOptimize(SerialColon(cert->get()));
  }
}
BENCHMARK(BM_CertPemAndDer);

void BM_CertDer(benchmark::State& st) {
  auto csr = ParseCsr(F().csr_pem);
  auto cert = SignCertificate(F().leaf, csr->spki.get(), F().ca.get(), F().ca_key.get());
  for (auto _ : st) benchmark::DoNotOptimize(CertDer(cert->get()));
}
BENCHMARK(BM_CertDer);

void BM_SerialColon(benchmark::State& st) {
  auto csr = ParseCsr(F().csr_pem);
  auto cert = SignCertificate(F().leaf, csr->spki.get(), F().ca.get(), F().ca_key.get());
  for (auto _ : st) benchmark::DoNotOptimize(SerialColon(cert->get()));
}
BENCHMARK(BM_SerialColon);

// issue/:role's extra work: a server-made key, its SubjectPublicKeyInfo and its PEM.
void BM_IssueKeyWork(benchmark::State& st) {
  for (auto _ : st) {
    auto key = GenerateKey({KeyType::kEc, 256});
    X509_PUBKEY* spki = nullptr;
    X509_PUBKEY_set(&spki, key->get());
    benchmark::DoNotOptimize(PrivateKeyPem(key->get(), ""));
    X509_PUBKEY_free(spki);
  }
}
BENCHMARK(BM_IssueKeyWork);

void BM_GenerateKeyOnly(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(GenerateKey({KeyType::kEc, 256}));
}
BENCHMARK(BM_GenerateKeyOnly);

// The floor: one ECDSA P-256 signature over a certificate-sized message through EVP.
void BM_EcdsaSignOnly(benchmark::State& st) {
  std::string msg(450, 'x');
  unsigned char sig[80];
  for (auto _ : st) {
    EVP_MD_CTX* c = EVP_MD_CTX_new();
    size_t len = sizeof(sig);
    EVP_DigestSignInit(c, nullptr, EVP_sha256(), nullptr, F().ca_key.get());
    EVP_DigestSign(c, sig, &len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    EVP_MD_CTX_free(c);
  }
}
BENCHMARK(BM_EcdsaSignOnly);

}  // namespace

BENCHMARK_MAIN();
