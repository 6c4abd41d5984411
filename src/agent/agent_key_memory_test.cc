// The agent leaves no copy of a private key in freed memory: every heap block the C++ allocator
// gives back while the agent reads, checks or renders a key is searched for the key's bytes.
//
// This binary (coffer_alloc_tests, apart from coffer_tests so that the others keep the
// sanitizers' new/delete checks) replaces operator new/delete with malloc/free underneath; the
// search runs only while a test arms it. Blind spots: memory OpenSSL allocates itself (malloc,
// not operator new) and stack buffers.
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <string>

#include "agent/agent.h"
#include "crypto/keys.h"
#include "http/api.h"
#include "util/clock.h"
#include "util/encoding.h"

namespace {

// What is searched for: copied here before arming, never freed (a late reader on another thread
// reads valid memory). Two windows of each form of the key.
constexpr int kNeedles = 4;
constexpr size_t kNeedleSize = 40;
char g_needle[kNeedles][kNeedleSize];
std::atomic<bool> g_armed{false};
std::atomic<int> g_found{0};

void Search(void* p) {
  if (p == nullptr || !g_armed.load(std::memory_order_acquire)) return;
  const size_t n = malloc_usable_size(p);
  for (const auto& needle : g_needle)
    if (memmem(p, n, needle, kNeedleSize) != nullptr) g_found.fetch_add(1);
}

}  // namespace

// GCC sees free() of what its built-in operator new returned once these are inlined into code
// that news and deletes; here both are malloc/free underneath.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(size_t n) {
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept {
  Search(p);
  free(p);
}
void operator delete(void* p, size_t /*size*/) noexcept {
  Search(p);
  free(p);
}

namespace coffer::agent {
namespace {

struct KeyCase {
  crypto::KeyType type;
  int bits;
  const char* name;  // the config's key_type
};

class KeyMemory : public ::testing::TestWithParam<KeyCase> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-keymem-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto key = crypto::GenerateKey(crypto::KeySpec{GetParam().type, GetParam().bits});
    ASSERT_TRUE(key.ok()) << key.status();
    auto pem = crypto::PrivateKeyPem(key->get(), "pkcs8");
    ASSERT_TRUE(pem.ok()) << pem.status();
    key_pem_ = std::string(pem->view());
    const std::string b64 = Base64Encode(key_pem_);
    ASSERT_GT(key_pem_.size(), 150U);
    memcpy(g_needle[0], key_pem_.data() + 60, kNeedleSize);
    memcpy(g_needle[1], key_pem_.data() + key_pem_.size() - 80, kNeedleSize);
    memcpy(g_needle[2], b64.data() + 80, kNeedleSize);
    memcpy(g_needle[3], b64.data() + b64.size() - 100, kNeedleSize);
    // A self-signed certificate for the key, so that Inspect goes through every check.
    key_path_ = dir_ + "/server.key";
    cert_path_ = dir_ + "/server.crt";
    std::ofstream(key_path_) << key_pem_;
    const std::string cmd = "openssl req -new -x509 -key " + key_path_ +
                            " -subj /CN=node1 -days 2 -out " + cert_path_ + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::ifstream in(cert_path_);
    cert_pem_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    ASSERT_NE(cert_pem_.find("BEGIN CERTIFICATE"), std::string::npos);
    config_.address = "http://127.0.0.1:1";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `fn` with the search armed; returns how many freed blocks held part of the key.
  template <class Fn>
  static int FreedCopies(Fn fn) {
    g_found.store(0);
    g_armed.store(true, std::memory_order_release);
    fn();
    g_armed.store(false, std::memory_order_release);
    return g_found.load();
  }

  CertSpec Spec() const {
    CertSpec s;
    s.name = "server";
    s.common_name = "node1";
    s.key_type = GetParam().name;
    s.key_bits = GetParam().bits;
    return s;
  }

  std::string dir_, key_path_, cert_path_, key_pem_, cert_pem_;
  Config config_;
  RealClock clock_;
};

TEST_P(KeyMemory, TheSearchFindsAFreedCopy) {
  EXPECT_GT(FreedCopies([&] { std::string copy = key_pem_ + ""; }), 0);
}

TEST_P(KeyMemory, InspectOfAKeyFileFreesNoCopy) {
  CertSpec s = Spec();
  s.cert_file = cert_path_;
  s.key_file = key_path_;
  Agent agent(config_, &clock_);
  CertState st;
  EXPECT_EQ(FreedCopies([&] { st = agent.Inspect(s); }), 0);
  EXPECT_TRUE(st.present) << st.reason;
  EXPECT_FALSE(st.new_key) << st.reason;  // the key was read, parsed and judged
  EXPECT_EQ(st.reason, "");               // every check passed: valid, not yet due
}

TEST_P(KeyMemory, InspectOfAKubeconfigFreesNoCopy) {
  CertSpec s = Spec();
  s.kubeconfig = {dir_ + "/admin.conf", "https://127.0.0.1:6443", "kubernetes", "admin"};
  std::ofstream(s.kubeconfig.path) << RenderKubeconfig(s.kubeconfig, "ca", cert_pem_, key_pem_);
  Agent agent(config_, &clock_);
  CertState st;
  EXPECT_EQ(FreedCopies([&] { st = agent.Inspect(s); }), 0);
  EXPECT_TRUE(st.present) << st.reason;
  EXPECT_FALSE(st.new_key) << st.reason;
  EXPECT_EQ(st.reason, "");  // every check passed, the kubeconfig's presence included
}

TEST_P(KeyMemory, InspectOfAKubeconfigWithCrlfLineEndsFreesNoCopy) {
  CertSpec s = Spec();
  s.kubeconfig = {dir_ + "/admin.conf", "https://127.0.0.1:6443", "kubernetes", "admin"};
  std::string text = RenderKubeconfig(s.kubeconfig, "ca", cert_pem_, key_pem_);
  std::string crlf;
  for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  std::ofstream(s.kubeconfig.path) << crlf;
  Agent agent(config_, &clock_);
  CertState st;
  EXPECT_EQ(FreedCopies([&] { st = agent.Inspect(s); }), 0);
  EXPECT_FALSE(st.new_key) << st.reason;  // the key still read: no new key for a CRLF file
}

TEST_P(KeyMemory, RenderKubeconfigFreesNoCopy) {
  KubeconfigSpec k{dir_ + "/kubelet.conf", "https://127.0.0.1:6443", "kubernetes", "system:node"};
  // Short CA and certificate: the key's base64 is most of the text (where appending it in
  // steps would reallocate).
  for (const std::string& cert : {std::string("c"), cert_pem_}) {
    std::string text;
    EXPECT_EQ(FreedCopies([&] { text = RenderKubeconfig(k, "ca", cert, key_pem_); }), 0);
    // The key is in what it returns (the caller writes it and wipes it).
    EXPECT_NE(text.find("client-key-data: " + Base64Encode(key_pem_) + "\n"), std::string::npos);
  }
}

// What Inspect tells of files that exist but are not what they should be: found from the open
// file's type, without reading the kubeconfig's key.
TEST_P(KeyMemory, InspectNamesAnUnusableKeyOrKubeconfig) {
  CertSpec s = Spec();
  s.cert_file = cert_path_;
  s.key_file = dir_ + "/key-dir";
  std::filesystem::create_directory(s.key_file);
  Agent agent(config_, &clock_);
  CertState st = agent.Inspect(s);
  EXPECT_TRUE(st.new_key);
  EXPECT_NE(st.reason.find("not a regular file"), std::string::npos) << st.reason;
  // A certificate with files and a kubeconfig whose path is a directory: not present.
  s.key_file = key_path_;
  s.kubeconfig = {dir_ + "/conf-dir", "https://127.0.0.1:6443", "kubernetes", "admin"};
  std::filesystem::create_directory(s.kubeconfig.path);
  st = agent.Inspect(s);
  EXPECT_EQ(st.reason, "the kubeconfig is missing");
}

INSTANTIATE_TEST_SUITE_P(Keys, KeyMemory,
                         ::testing::Values(KeyCase{crypto::KeyType::kEc, 256, "ec"},
                                           KeyCase{crypto::KeyType::kRsa, 2048, "rsa"}),
                         [](const auto& info) { return std::string(info.param.name); });

// The agent's API client holds the node token: the one it replaces and the last one are wiped.
TEST(TokenMemory, ReplacedAndDestroyedTokensAreWiped) {
  const std::string first = "hvs.FirstTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const std::string second = "hvs.SecondTokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
  for (int i = 0; i < kNeedles; ++i)
    memcpy(g_needle[i], (i < 2 ? first : second).data() + 4 + i % 2, kNeedleSize);
  http::ClientOptions o;
  o.address = "http://127.0.0.1:1";
  auto api = std::make_unique<http::Api>(o);
  api->set_token(first);
  int found = 0;
  g_found.store(0);
  g_armed.store(true, std::memory_order_release);
  api->set_token(second);  // frees the first
  api.reset();             // frees the second
  g_armed.store(false, std::memory_order_release);
  found = g_found.load();
  EXPECT_EQ(found, 0);
}

}  // namespace
}  // namespace coffer::agent
