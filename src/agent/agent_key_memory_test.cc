// The agent leaves no copy of a private key in freed memory: every heap block the C++ allocator
// gives back while the agent reads or renders a key is searched for the key's bytes.
//
// This binary's operator new/delete are replaced (malloc/free underneath, which the sanitizers
// intercept as before); the search runs only while a test arms it.
#include <gtest/gtest.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>

#include "agent/agent.h"
#include "crypto/keys.h"
#include "util/clock.h"
#include "util/encoding.h"

namespace {

std::atomic<bool> g_armed{false};
// What is searched for: set before arming, cleared after disarming (never freed while armed).
const char* g_needle[2] = {nullptr, nullptr};
size_t g_needle_size[2] = {0, 0};
std::atomic<int> g_found{0};

void Search(void* p) {
  if (p == nullptr || !g_armed.load(std::memory_order_acquire)) return;
  const size_t n = malloc_usable_size(p);
  for (int i = 0; i < 2; ++i)
    if (g_needle_size[i] > 0 && memmem(p, n, g_needle[i], g_needle_size[i]) != nullptr)
      g_found.fetch_add(1);
}

}  // namespace

void* operator new(size_t n) {
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept {
  Search(p);
  free(p);
}
void operator delete(void* p, size_t) noexcept {
  Search(p);
  free(p);
}

namespace coffer::agent {
namespace {

class KeyMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-keymem-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto key = crypto::GenerateKey(crypto::KeySpec{crypto::KeyType::kEc, 256});
    ASSERT_TRUE(key.ok()) << key.status();
    auto pem = crypto::PrivateKeyPem(key->get(), "pkcs8");
    ASSERT_TRUE(pem.ok()) << pem.status();
    key_pem_ = std::string(pem->view());
    // 40 characters from the middle of the PEM body, and of its base64 (the kubeconfig's form).
    pem_needle_ = key_pem_.substr(60, 40);
    b64_needle_ = Base64Encode(key_pem_).substr(80, 40);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `fn` with the search armed; returns how many freed blocks held the key.
  template <class Fn>
  int FreedCopies(Fn fn) {
    g_needle[0] = pem_needle_.data();
    g_needle_size[0] = pem_needle_.size();
    g_needle[1] = b64_needle_.data();
    g_needle_size[1] = b64_needle_.size();
    g_found.store(0);
    g_armed.store(true, std::memory_order_release);
    fn();
    g_armed.store(false, std::memory_order_release);
    g_needle_size[0] = g_needle_size[1] = 0;
    return g_found.load();
  }

  std::string dir_, key_pem_, pem_needle_, b64_needle_;
  RealClock clock_;
};

TEST_F(KeyMemory, InspectOfAKeyFileFreesNoCopy) {
  CertSpec s;
  s.name = "etcd-server";
  s.cert_file = dir_ + "/server.crt";
  s.key_file = dir_ + "/server.key";
  std::ofstream(s.cert_file) << "not a certificate\n";  // read, refused after the key was read
  std::ofstream(s.key_file) << key_pem_;
  Config c;
  c.address = "http://127.0.0.1:1";
  Agent agent(c, &clock_);
  // The search must see a copy when there is one: a std::string of the key, freed.
  EXPECT_GT(FreedCopies([&] { std::string copy = key_pem_ + ""; }), 0);
  CertState st;
  EXPECT_EQ(FreedCopies([&] { st = agent.Inspect(s); }), 0);
  EXPECT_EQ(st.reason, "the certificate file is unreadable");
}

TEST_F(KeyMemory, InspectOfAKubeconfigFreesNoCopy) {
  CertSpec s;
  s.name = "admin.conf";
  s.kubeconfig = {dir_ + "/admin.conf", "https://127.0.0.1:6443", "kubernetes", "kubernetes-admin"};
  const std::string text = RenderKubeconfig(s.kubeconfig, "ca", "not a certificate", key_pem_);
  std::ofstream(s.kubeconfig.path) << text;
  Config c;
  c.address = "http://127.0.0.1:1";
  Agent agent(c, &clock_);
  CertState st;
  EXPECT_EQ(FreedCopies([&] { st = agent.Inspect(s); }), 0);
  EXPECT_EQ(st.reason, "the certificate file is unreadable");
}

TEST_F(KeyMemory, RenderKubeconfigFreesNoCopy) {
  KubeconfigSpec k{dir_ + "/kubelet.conf", "https://127.0.0.1:6443", "kubernetes", "system:node"};
  std::string text;
  EXPECT_EQ(FreedCopies([&] { text = RenderKubeconfig(k, "ca", "cert", key_pem_); }), 0);
  // The key is in what it returns (the caller writes it and wipes it).
  EXPECT_NE(text.find("client-key-data: " + Base64Encode(key_pem_) + "\n"), std::string::npos);
}

}  // namespace
}  // namespace coffer::agent
