// The seal blocks of the server config, as Vault writes them: the keys each type takes, the
// errors for what is wrong (with the line), and what the wrappers are built from.
#include <gtest/gtest.h>

#include <cstdlib>

#include "autoseal/autoseal.h"
#include "config/server_config.h"

namespace coffer::autoseal {
namespace {

constexpr char kBase[] =
    "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n"
    "  tls_disable = true\n}\n";

absl::StatusOr<config::ServerConfig> Parse(const std::string& seals) {
  return config::ParseServerConfig(kBase + seals, "coffer.hcl");
}

TEST(SealConfig, TransitBlockTakesVaultsKeys) {
  auto c = Parse(R"(
seal "transit" {
  address = "https://127.0.0.1:8200"
  token = "s.abc"
  disable_renewal = "false"
  key_name = "autounseal"
  mount_path = "transit/"
  namespace = "ns1/"
  tls_ca_cert = "/etc/coffer/ca.pem"
  tls_client_cert = "/etc/coffer/client.pem"
  tls_client_key = "/etc/coffer/client.key"
  tls_server_name = "vault"
  tls_skip_verify = "false"
}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->seals.size(), 1u);
  EXPECT_EQ(c->seals[0].type, "transit");
  EXPECT_FALSE(c->seals[0].disabled);
  EXPECT_EQ(c->seals[0].options.at("key_name"), "autounseal");
  auto w = NewWrapper(c->seals[0]);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->Type(), "transit");
}

TEST(SealConfig, MistakesAreErrorsWithTheLine) {
  struct Case {
    const char* text;
    const char* want;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"seal \"transit\" {\n  address = \"https://x\"\n  key_nme = \"k\"\n}\n",
            "line 8: unknown key \"key_nme\" in seal \"transit\""},
           {"seal \"transit\" {\n  address = \"https://x\"\n  mount_path = \"t/\"\n}\n",
            "needs key_name"},
           {"seal \"awskms\" {\n}\n", "unsupported seal type \"awskms\""},
           {"seal \"pkcs11\" {\n  lib = \"/x.so\"\n  key_label = \"k\"\n}\n",
            "needs slot or token_label"},
           {"seal \"pkcs11\" {\n  lib = \"/x.so\"\n  slot = \"0\"\n  key_label = \"k\"\n  pin = "
            "\"1234\"\n}\n",
            "COFFER_HSM_PIN"},
           {"seal \"transit\" {\n  address = \"https://x\"\n  key_name = \"k\"\n  mount_path = "
            "\"t\"\n}\nseal \"pkcs11\" {\n  lib = \"/x.so\"\n  slot = \"0\"\n  key_label = "
            "\"k\"\n}\n",
            "only one seal block may be enabled"},
           {"seal \"transit\" {\n  address = \"https://x\"\n  key_name = \"k\"\n  mount_path = "
            "\"t\"\n  disabled = \"maybe\"\n}\n",
            "\"disabled\" must be true or false"},
       }) {
    auto r = Parse(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.want), std::string_view::npos)
        << r.status().message() << "\nwanted: " << c.want;
  }
}

TEST(SealConfig, MigrationPairsAnEnabledAndADisabledBlock) {
  auto c = Parse(R"(
seal "transit" {
  address = "https://127.0.0.1:8200"
  key_name = "k"
  mount_path = "transit"
  disabled = true
}
seal "shamir" {
}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->seals.size(), 2u);
  EXPECT_TRUE(c->seals[0].disabled);
  auto shamir = NewWrapper(c->seals[1]);
  ASSERT_TRUE(shamir.ok());
  EXPECT_EQ(shamir->get(), nullptr);  // Shamir needs no wrapper
}

TEST(SealConfig, Pkcs11NeedsThePinInTheEnvironment) {
  auto c = Parse(R"(
seal "pkcs11" {
  lib = "/usr/lib/softhsm/libsofthsm2.so"
  token_label = "coffer"
  key_label = "root"
  generate_key = "true"
}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  unsetenv("COFFER_HSM_PIN");
  unsetenv("VAULT_HSM_PIN");
  auto w = NewWrapper(c->seals[0]);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("COFFER_HSM_PIN"), std::string_view::npos);
  setenv("COFFER_HSM_PIN", "1234", 1);
  w = NewWrapper(c->seals[0]);
  unsetenv("COFFER_HSM_PIN");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->Type(), "pkcs11");
}

TEST(SealConfig, TransitWithoutTokenSaysWhereToPutIt) {
  auto c = Parse(
      "seal \"transit\" {\n  address = \"http://127.0.0.1:1\"\n  key_name = \"k\"\n"
      "  mount_path = \"transit\"\n}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  unsetenv("VAULT_TOKEN");
  auto w = NewWrapper(c->seals[0]);
  ASSERT_TRUE(w.ok());
  auto st = (*w)->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("VAULT_TOKEN"), std::string_view::npos) << st;
}

}  // namespace
}  // namespace coffer::autoseal
