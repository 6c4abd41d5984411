// The Shamir seal's rekey primitives: the shares open the root key; after Commit only the new
// shares do, and the root key (so the data) is unchanged.
#include <gtest/gtest.h>

#include "crypto/secret_bytes.h"
#include "seal/seal.h"
#include "storage/memory_storage.h"

namespace coffer::seal {
namespace {

TEST(ShamirSeal, RekeyReplacesTheSharesAndKeepsTheRootKey) {
  storage::MemoryStorage mem;
  ShamirSeal seal(&mem);
  auto root = crypto::SecretBytes::Random(32);
  ASSERT_TRUE(root.ok());
  auto old_shares = seal.Initialize(5, 3, *root);
  ASSERT_TRUE(old_shares.ok()) << old_shares.status();
  std::vector<crypto::SecretBytes> three;
  three.reserve(3);
  for (int i = 1; i < 4; ++i) three.push_back((*old_shares)[i].Clone());
  auto opened = seal.RootKeyFromShares(three);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), root->view());
  // Two shares are not enough: they do not combine to the unseal key.
  std::vector<crypto::SecretBytes> two;
  two.reserve(2);
  for (int i = 0; i < 2; ++i) two.push_back((*old_shares)[i].Clone());
  EXPECT_FALSE(seal.RootKeyFromShares(two).ok());
  EXPECT_FALSE(seal.CheckShare("short").ok());
  EXPECT_TRUE(seal.CheckShare((*old_shares)[0].view()).ok());

  auto made = seal.NewShares(3, 2);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(made->second.size(), 3u);
  // Nothing changes until Commit.
  EXPECT_TRUE(seal.RootKeyFromShares(three).ok());
  ASSERT_TRUE(seal.Commit(made->first, 3, 2, *opened).ok());
  EXPECT_FALSE(seal.RootKeyFromShares(three).ok());
  std::vector<crypto::SecretBytes> new_two;
  new_two.reserve(2);
  for (int i = 1; i < 3; ++i) new_two.push_back(made->second[i].Clone());
  auto again = seal.RootKeyFromShares(new_two);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->view(), root->view());
  auto cfg = seal.Config();
  ASSERT_TRUE(cfg.ok() && cfg->has_value());
  EXPECT_EQ((*cfg)->secret_shares, 3);
  EXPECT_EQ((*cfg)->secret_threshold, 2);
  // Unseal progress uses the new shares too.
  auto step = seal.Submit(made->second[0].view());
  ASSERT_TRUE(step.ok());
  step = seal.Submit(made->second[2].view());
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(step->root_key.has_value());
  EXPECT_EQ(step->root_key->view(), root->view());
}

}  // namespace
}  // namespace coffer::seal
