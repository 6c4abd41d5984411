#include "barrier/barrier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/crypto.h"
#include "storage/memory_storage.h"
#include "storage/sqlite_storage.h"

namespace coffer::barrier {
namespace {

crypto::SecretBytes Key() { return std::move(*crypto::SecretBytes::Random(32)); }

TEST(Barrier, EncryptsWithHeaderAndPathAsAad) {
  storage::MemoryStorage phys;
  Barrier b(&phys);
  auto root = Key();
  ASSERT_TRUE(b.Initialize(root).ok());
  ASSERT_TRUE(b.Put("logical/x/secret", "hunter2").ok());
  auto raw = **phys.Get("logical/x/secret");
  EXPECT_EQ(raw.size(), 5u + 12 + 7 + 16);
  EXPECT_EQ(raw[0], 1);                                     // version
  EXPECT_EQ(raw.substr(1, 4), std::string("\0\0\0\1", 4));  // term 1
  EXPECT_EQ(raw.find("hunter2"), std::string::npos);
  EXPECT_EQ(**b.Get("logical/x/secret"), "hunter2");

  // The same ciphertext moved to another path must not decrypt.
  ASSERT_TRUE(phys.Put("logical/y/secret", raw).ok());
  auto moved = b.Get("logical/y/secret");
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kDataLoss);

  // Writing the same value twice gives different ciphertexts (fresh nonce).
  ASSERT_TRUE(b.Put("logical/x/secret", "hunter2").ok());
  EXPECT_NE(**phys.Get("logical/x/secret"), raw);
}

TEST(Barrier, RotateAddsTermsAndOldTermsStillDecrypt) {
  storage::MemoryStorage phys;
  Barrier b(&phys);
  auto root = Key();
  ASSERT_TRUE(b.Initialize(root).ok());
  ASSERT_TRUE(b.Put("a", "old").ok());
  auto st = b.Rotate();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->term, 2u);
  ASSERT_TRUE(b.Put("b", "new").ok());
  EXPECT_EQ((**phys.Get("b"))[4], 2);
  EXPECT_EQ(**b.Get("a"), "old");
  // Survives a seal/unseal cycle: the keyring holds both terms.
  b.Seal();
  EXPECT_TRUE(b.sealed());
  EXPECT_EQ(b.Get("a").status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(b.Unseal(root).ok());
  EXPECT_EQ(**b.Get("a"), "old");
  EXPECT_EQ(**b.Get("b"), "new");
  EXPECT_EQ(b.Status()->term, 2u);
}

TEST(Barrier, WrongRootKeyIsRefused) {
  storage::MemoryStorage phys;
  Barrier b(&phys);
  ASSERT_TRUE(b.Initialize(Key()).ok());
  b.Seal();
  EXPECT_EQ(b.Unseal(Key()).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(b.sealed());
  EXPECT_FALSE(b.Put("core/keyring", "x").ok());
}

TEST(Barrier, SqliteFileHoldsNoPlaintext) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("coffer-barrier-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string secret = "plaintext-canary-7d1f0c2b9e";
  {
    auto phys = storage::SqliteStorage::Open((dir / "coffer.db").string());
    ASSERT_TRUE(phys.ok());
    Barrier b(phys->get());
    ASSERT_TRUE(b.Initialize(Key()).ok());
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE(b.Put("logical/m/k" + std::to_string(i), secret + std::to_string(i)).ok());
    EXPECT_EQ(**b.Get("logical/m/k7"), secret + "7");
  }
  std::string all;
  for (auto& e : fs::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    all += ss.str();
  }
  ASSERT_GT(all.size(), 1000u);
  EXPECT_EQ(all.find("plaintext-canary"), std::string::npos);
  fs::remove_all(dir);
}

TEST(PrefixView, IsolatesKeys) {
  storage::MemoryStorage phys;
  PrefixView a(&phys, "logical/a/"), b(&phys, "logical/b/");
  ASSERT_TRUE(a.Put("k", "1").ok());
  EXPECT_FALSE(b.Get("k")->has_value());
  EXPECT_EQ(**phys.Get("logical/a/k"), "1");
  EXPECT_EQ(*a.List("", "", 0), std::vector<std::string>{"k"});
}

// Two nodes on one store: a rotation on one is invisible to the other until it reloads the
// keyring, and a reload of an older stored keyring never drops a term this node holds.
TEST(Barrier, ReloadKeyringPicksUpAnotherNodesRotation) {
  storage::MemoryStorage phys;
  auto root = Key();
  Barrier a(&phys), b(&phys);
  ASSERT_TRUE(a.Initialize(root).ok());
  ASSERT_TRUE(b.Unseal(root).ok());
  ASSERT_TRUE(a.Rotate().ok());
  ASSERT_TRUE(a.Put("logical/x/k", "v2").ok());  // written under term 2
  // b only knew term 1: a value under a newer term makes it reload the keyring once (an HA
  // standby reading before its watch said the keyring changed).
  EXPECT_EQ(b.Status()->term, 1u);
  EXPECT_EQ(**b.Get("logical/x/k"), "v2");
  EXPECT_EQ(b.Status()->term, 2u);
  ASSERT_TRUE(b.ReloadKeyring().ok());

  // b rotates to term 3 and writes; the stored keyring is then put back to an older copy (a
  // stale read): reloading keeps term 3.
  auto old_ring = **phys.Get(kKeyringPath);
  ASSERT_TRUE(b.Rotate().ok());
  ASSERT_TRUE(b.Put("logical/x/k3", "v3").ok());
  ASSERT_TRUE(phys.Put(kKeyringPath, old_ring).ok());
  ASSERT_TRUE(b.ReloadKeyring().ok());
  EXPECT_EQ(**b.Get("logical/x/k3"), "v3");
  EXPECT_EQ(b.Status()->term, 3u);

  b.Seal();
  EXPECT_EQ(b.ReloadKeyring().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(b.sealed());
}

}  // namespace
}  // namespace coffer::barrier
