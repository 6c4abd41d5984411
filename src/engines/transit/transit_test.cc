// The Transit engine through a real core: every key type's round trip, batches, rotation and
// rewrap, the version rules, convergent and derived keys, signatures checked by OpenSSL with
// the exported public key, and the ciphertext layout opened independently with the exported key.
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <thread>

#include "crypto/aead.h"
#include "crypto/crypto.h"
#include "engines/transit/policy.h"
#include "registry/test_harness.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::engines::transit {
namespace {
namespace json = boost::json;
using core::Operation;

std::string B64(std::string_view s) { return Base64Encode(s); }
std::string Str(const json::value& v) { return std::string(v.as_string()); }

class TransitTest : public testing::CoreHarness {
 protected:
  void SetUp() override {
    CoreHarness::SetUp();
    Must(Operation::kUpdate, "sys/mounts/transit", {{"type", "transit"}});
  }
  json::object Data(const core::Response& r) { return r.data ? *r.data : json::object(); }
  std::string Encrypt(const std::string& key, std::string_view plain, json::object extra = {}) {
    extra["plaintext"] = B64(plain);
    auto r = Must(Operation::kUpdate, "transit/encrypt/" + key, std::move(extra));
    return r.data ? Str(r.data->at("ciphertext")) : "";
  }
  absl::StatusOr<std::string> Decrypt(const std::string& key, const std::string& c,
                                      json::object extra = {}) {
    extra["ciphertext"] = c;
    ASSIGN_OR_RETURN(auto r, Do(Operation::kUpdate, "transit/decrypt/" + key, std::move(extra)));
    return *Base64Decode(r.data->at("plaintext").as_string());
  }
};

TEST_F(TransitTest, EveryEncryptionKeyTypeRoundTrips) {
  for (const char* type :
       {"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072"}) {
    SCOPED_TRACE(type);
    std::string name = std::string("k-") + type;
    auto created = Must(Operation::kUpdate, "transit/keys/" + name, {{"type", type}});
    EXPECT_EQ(Str(Data(created).at("type")), type);
    std::string c = Encrypt(name, "the quick brown fox");
    EXPECT_EQ(c.rfind("vault:v1:", 0), 0u) << c;
    auto p = Decrypt(name, c);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(*p, "the quick brown fox");
    // Two encryptions of one plaintext differ (random nonces / OAEP padding).
    EXPECT_NE(Encrypt(name, "the quick brown fox"), c);
    // A flipped byte is refused with a 400, not garbage.
    auto raw = *Base64Decode(c.substr(9));
    raw[raw.size() / 2] ^= 1;
    auto bad = Decrypt(name, "vault:v1:" + B64(raw));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(core::HttpStatusFor(bad.status()), 400) << bad.status();
  }
}

TEST_F(TransitTest, SigningKeysSignAndOpenSslVerifiesWithTheExportedPublicKey) {
  for (const char* type : {"ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519", "rsa-2048"}) {
    SCOPED_TRACE(type);
    std::string name = std::string("s-") + type;
    Must(Operation::kUpdate, "transit/keys/" + name, {{"type", type}});
    std::string msg = "sign me, please";
    auto s = Must(Operation::kUpdate, "transit/sign/" + name, {{"input", B64(msg)}});
    std::string sig = Str(Data(s).at("signature"));
    ASSERT_EQ(sig.rfind("vault:v1:", 0), 0u);
    auto v = Must(Operation::kUpdate, "transit/verify/" + name,
                  {{"input", B64(msg)}, {"signature", sig}});
    EXPECT_TRUE(Data(v).at("valid").as_bool());
    auto v2 = Must(Operation::kUpdate, "transit/verify/" + name,
                   {{"input", B64("another message")}, {"signature", sig}});
    EXPECT_FALSE(Data(v2).at("valid").as_bool());

    // OpenSSL, from the public key export/public-key gives, accepts the signature.
    auto exp = Must(Operation::kRead, "transit/export/public-key/" + name);
    std::string pub = Str(Data(exp).at("keys").as_object().at("1"));
    EVP_PKEY* key = nullptr;
    if (std::string_view(type) == "ed25519") {
      std::string raw = *Base64Decode(pub);
      key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                        reinterpret_cast<const unsigned char*>(raw.data()),
                                        raw.size());
    } else {
      BIO* bio = BIO_new_mem_buf(pub.data(), static_cast<int>(pub.size()));
      key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
    }
    ASSERT_NE(key, nullptr);
    std::string der = *Base64Decode(sig.substr(9));
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ed = std::string_view(type) == "ed25519";
    ASSERT_EQ(EVP_DigestVerifyInit(md, &pctx, ed ? nullptr : EVP_sha256(), nullptr, key), 1);
    if (std::string_view(type) == "rsa-2048") {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO);
    }
    EXPECT_EQ(EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                               reinterpret_cast<const unsigned char*>(msg.data()), msg.size()),
              1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
  }
}

TEST_F(TransitTest, CiphertextLayoutIsNonceThenCiphertextAndTagUnderTheExportedKey) {
  Must(Operation::kUpdate, "transit/keys/layout", {{"exportable", true}});
  std::string c = Encrypt("layout", "interoperable");
  auto exp = Must(Operation::kRead, "transit/export/encryption-key/layout/1");
  std::string key = *Base64Decode(Data(exp).at("keys").as_object().at("1").as_string());
  ASSERT_EQ(key.size(), 32u);
  std::string raw = *Base64Decode(c.substr(strlen("vault:v1:")));
  ASSERT_EQ(raw.size(), 12 + strlen("interoperable") + 16);
  // Opened with plain OpenSSL: AES-256-GCM, nonce = first 12 bytes, tag = last 16.
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const auto* u = reinterpret_cast<const unsigned char*>(raw.data());
  ASSERT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()), u),
            1);
  std::string out(raw.size() - 28, '\0');
  int len = 0;
  ASSERT_EQ(EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, u + 12,
                              static_cast<int>(out.size())),
            1);
  std::string tag = raw.substr(raw.size() - 16);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data());
  int fin = 0;
  EXPECT_EQ(EVP_DecryptFinal_ex(ctx, nullptr, &fin), 1);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(out, "interoperable");
}

TEST_F(TransitTest, BatchOfAThousandItemsEncryptsAndDecrypts) {
  Must(Operation::kUpdate, "transit/keys/batch");
  json::array in;
  for (int i = 0; i < 1000; ++i)
    in.push_back(json::object{{"plaintext", B64("item " + std::to_string(i))},
                              {"reference", std::to_string(i)}});
  auto enc = Must(Operation::kUpdate, "transit/encrypt/batch", {{"batch_input", in}});
  json::object enc_data = Data(enc);
  const json::array& results = enc_data.at("batch_results").as_array();
  ASSERT_EQ(results.size(), 1000u);
  json::array dec_in;
  for (const auto& r : results) {
    ASSERT_FALSE(r.as_object().contains("error")) << json::serialize(r);
    dec_in.push_back(
        json::object{{"ciphertext", r.at("ciphertext")}, {"reference", r.at("reference")}});
  }
  auto dec = Must(Operation::kUpdate, "transit/decrypt/batch", {{"batch_input", dec_in}});
  json::object dec_data = Data(dec);
  const json::array& plain = dec_data.at("batch_results").as_array();
  ASSERT_EQ(plain.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(*Base64Decode(plain[i].at("plaintext").as_string()), "item " + std::to_string(i));
    EXPECT_EQ(Str(plain[i].at("reference")), std::to_string(i));
  }
  // One bad item among good ones: 200 with the error in its slot; all bad: 400.
  json::array mixed{json::object{{"ciphertext", results[0].at("ciphertext")}},
                    json::object{{"ciphertext", "vault:v1:AAAA"}}};
  auto m = Do(Operation::kUpdate, "transit/decrypt/batch", {{"batch_input", mixed}});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->http_status, 0);
  EXPECT_TRUE(m->data->at("batch_results").as_array()[1].as_object().contains("error"));
  json::array all_bad{json::object{{"ciphertext", "nope"}}};
  auto b = Do(Operation::kUpdate, "transit/decrypt/batch", {{"batch_input", all_bad}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->http_status, 400);
  EXPECT_EQ(Str(b->data->at("batch_results").as_array()[0].at("error")),
            "invalid ciphertext: no prefix");
}

TEST_F(TransitTest, RotationRewrapAndMinDecryptionVersion) {
  Must(Operation::kUpdate, "transit/keys/rot");
  std::string v1 = Encrypt("rot", "secret");
  auto rotated = Must(Operation::kUpdate, "transit/keys/rot/rotate");
  EXPECT_EQ(Data(rotated).at("latest_version").as_int64(), 2);
  std::string v2 = Encrypt("rot", "secret");
  EXPECT_EQ(v2.rfind("vault:v2:", 0), 0u);
  auto rw = Must(Operation::kUpdate, "transit/rewrap/rot", {{"ciphertext", v1}});
  std::string re = Str(Data(rw).at("ciphertext"));
  EXPECT_EQ(re.rfind("vault:v2:", 0), 0u);
  EXPECT_EQ(*Decrypt("rot", re), "secret");
  EXPECT_EQ(*Decrypt("rot", v1), "secret");

  Must(Operation::kUpdate, "transit/keys/rot/config", {{"min_decryption_version", 2}});
  auto old = Decrypt("rot", v1);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(core::HttpStatusFor(old.status()), 400);
  EXPECT_NE(Msg(old.status()).find("disallowed by policy"), std::string::npos);
  EXPECT_EQ(*Decrypt("rot", v2), "secret");
  // Encrypting with an older version than min_encryption_version is refused.
  Must(Operation::kUpdate, "transit/keys/rot/rotate");
  Must(Operation::kUpdate, "transit/keys/rot/config", {{"min_encryption_version", 3}});
  auto e =
      Do(Operation::kUpdate, "transit/encrypt/rot", {{"plaintext", B64("x")}, {"key_version", 2}});
  EXPECT_FALSE(e.ok());
  // Trim drops versions below min_available_version; the key reads as such.
  Must(Operation::kUpdate, "transit/keys/rot/trim", {{"min_available_version", 2}});
  auto read = Must(Operation::kRead, "transit/keys/rot");
  EXPECT_EQ(Data(read).at("min_available_version").as_int64(), 2);
  EXPECT_FALSE(Data(read).at("keys").as_object().contains("1"));
  EXPECT_TRUE(Data(read).at("keys").as_object().contains("3"));
  // The snapshot survives a restart (stored, not only cached).
  Restart();
  EXPECT_EQ(*Decrypt("rot", v2), "secret");
}

TEST_F(TransitTest, ConvergentEncryptionIsDeterministicPerContextAndDerivedKeysNeedContext) {
  Must(Operation::kUpdate, "transit/keys/conv",
       {{"derived", true}, {"convergent_encryption", true}});
  std::string ctx = B64("tenant-a");
  std::string a = Encrypt("conv", "same", {{"context", ctx}});
  std::string b = Encrypt("conv", "same", {{"context", ctx}});
  EXPECT_EQ(a, b);
  EXPECT_NE(Encrypt("conv", "same", {{"context", B64("tenant-b")}}), a);
  EXPECT_NE(Encrypt("conv", "other", {{"context", ctx}}), a);
  EXPECT_EQ(*Decrypt("conv", a, {{"context", ctx}}), "same");
  // Another context cannot open it.
  EXPECT_FALSE(Decrypt("conv", a, {{"context", B64("tenant-b")}}).ok());

  Must(Operation::kUpdate, "transit/keys/derived", {{"derived", true}});
  auto no_ctx = Do(Operation::kUpdate, "transit/encrypt/derived", {{"plaintext", B64("x")}});
  ASSERT_FALSE(no_ctx.ok());
  EXPECT_EQ(core::HttpStatusFor(no_ctx.status()), 400);
  EXPECT_NE(Msg(no_ctx.status()).find("missing 'context'"), std::string::npos);
  std::string c1 = Encrypt("derived", "x", {{"context", ctx}});
  EXPECT_NE(Encrypt("derived", "x", {{"context", ctx}}), c1);  // not convergent: random nonce
  auto read = Must(Operation::kRead, "transit/keys/derived");
  EXPECT_EQ(Str(Data(read).at("kdf")), "hkdf_sha256");
  // Convergent without derivation is refused.
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/keys/bad", {{"convergent_encryption", true}}).ok());
}

TEST_F(TransitTest, DerivedKeyMatchesHkdfOfTheExportedKey) {
  // The derivation is HKDF-SHA256(key, info = context), as Vault's: a ciphertext made by
  // Coffer opens under HKDF of the exported base key.
  Must(Operation::kUpdate, "transit/keys/hk", {{"derived", true}, {"exportable", true}});
  std::string c = Encrypt("hk", "derived secret", {{"context", B64("ctx")}});
  auto exp = Must(Operation::kRead, "transit/export/encryption-key/hk/1");
  std::string base = *Base64Decode(Data(exp).at("keys").as_object().at("1").as_string());
  auto key = crypto::HkdfSha256(base, "ctx", 32);
  ASSERT_TRUE(key.ok());
  auto plain =
      crypto::AeadOpen(crypto::Aead::kAes256Gcm, key->view(), *Base64Decode(c.substr(9)), "");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "derived secret");
}

TEST_F(TransitTest, KeyLifecycleRulesAndUpsert) {
  // encrypt/ on a missing key creates it when the caller may create.
  std::string c = Encrypt("upserted", "hello");
  auto read = Must(Operation::kRead, "transit/keys/upserted");
  EXPECT_EQ(Str(Data(read).at("type")), "aes256-gcm96");
  // ... but not for a caller with update only.
  std::string tok = TokenFor("path \"transit/encrypt/*\" { capabilities = [\"update\"] }");
  auto denied = Do(Operation::kUpdate, "transit/encrypt/other", {{"plaintext", B64("x")}}, tok);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(core::HttpStatusFor(denied.status()), 403);
  EXPECT_TRUE(
      Do(Operation::kUpdate, "transit/encrypt/upserted", {{"plaintext", B64("x")}}, tok).ok());

  // Delete needs deletion_allowed.
  auto del = Do(Operation::kDelete, "transit/keys/upserted");
  ASSERT_FALSE(del.ok());
  EXPECT_NE(Msg(del.status()).find("deletion is not allowed"), std::string::npos);
  Must(Operation::kUpdate, "transit/keys/upserted/config", {{"deletion_allowed", true}});
  Must(Operation::kDelete, "transit/keys/upserted");
  EXPECT_FALSE(Do(Operation::kRead, "transit/keys/upserted").ok());

  // Export only when exportable; backup only when exportable and plaintext backup allowed.
  Must(Operation::kUpdate, "transit/keys/priv");
  EXPECT_FALSE(Do(Operation::kRead, "transit/export/encryption-key/priv").ok());
  auto bk = Do(Operation::kRead, "transit/backup/priv");
  ASSERT_FALSE(bk.ok());
  EXPECT_NE(Msg(bk.status()).find("plaintext backup is disallowed on the policy"),
            std::string::npos);
  // Exportability cannot be taken back.
  Must(Operation::kUpdate, "transit/keys/priv/config", {{"exportable", true}});
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/keys/priv/config", {{"exportable", false}}).ok());

  // Backup and restore under a new name: the restored key opens the old ciphertexts.
  Must(Operation::kUpdate, "transit/keys/priv/config", {{"allow_plaintext_backup", true}});
  std::string pc = Encrypt("priv", "backed up");
  auto backup = Must(Operation::kRead, "transit/backup/priv");
  std::string blob = Str(Data(backup).at("backup"));
  auto again = Do(Operation::kUpdate, "transit/restore", {{"backup", blob}});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(Msg(again.status()).find("already exists"), std::string::npos);
  Must(Operation::kUpdate, "transit/restore/copy", {{"backup", blob}});
  EXPECT_EQ(*Decrypt("copy", pc), "backed up");

  // auto_rotate_period below an hour is refused.
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/keys/ar", {{"auto_rotate_period", "10m"}}).ok());
  Must(Operation::kUpdate, "transit/keys/ar", {{"auto_rotate_period", "1h"}});
  EXPECT_EQ(Data(Must(Operation::kRead, "transit/keys/ar")).at("auto_rotate_period").as_int64(),
            3600);
}

TEST_F(TransitTest, AutoRotationHappensOnceThePeriodPassed) {
  // A caller refused by the ACL rotates nothing, even when the key is due (encrypt's existence
  // check runs before the ACL): the rotation happens at the next allowed use, an hour later.
  Must(Operation::kUpdate, "transit/keys/due", {{"auto_rotate_period", "2h"}});
  const std::string outsider =
      TokenFor(R"(path "transit/encrypt/other" { capabilities = ["update"] })");
  clock_.Advance(absl::Hours(3));
  auto refused = Do(Operation::kUpdate, "transit/encrypt/due", {{"plaintext", B64("x")}}, outsider);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  clock_.Advance(absl::Hours(1));
  auto due = Data(Must(Operation::kRead, "transit/keys/due"));
  EXPECT_EQ(due.at("latest_version").as_int64(), 2);
  EXPECT_EQ(due.at("keys").at("2").as_int64(), absl::ToUnixSeconds(clock_.Now()));

  Must(Operation::kUpdate, "transit/keys/auto", {{"auto_rotate_period", "2h"}});
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Data(Must(Operation::kRead, "transit/keys/auto")).at("latest_version").as_int64(), 1);
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_EQ(Data(Must(Operation::kRead, "transit/keys/auto")).at("latest_version").as_int64(), 2);
  EXPECT_EQ(Encrypt("auto", "x").rfind("vault:v2:", 0), 0u);
  // Every read that may rotate runs off the connection's event loop (the expensive pool): a due
  // rotation is a key generation and a durable write.
  for (const std::string path : {"transit/keys/auto", "transit/export/encryption-key/auto",
                                 "transit/export/encryption-key/auto/1", "transit/backup/auto"}) {
    core::Request r;
    r.op = Operation::kRead;
    r.path = path;
    auto admission = core_->Admit(r, false);
    ASSERT_TRUE(admission.ok()) << admission.status();
    EXPECT_TRUE(admission->expensive) << path;
  }
}

TEST_F(TransitTest, HmacHashAndRandom) {
  Must(Operation::kUpdate, "transit/keys/mac", {{"type", "hmac"}, {"exportable", true}});
  auto h = Must(Operation::kUpdate, "transit/hmac/mac/sha2-256", {{"input", B64("data")}});
  std::string mac = Str(Data(h).at("hmac"));
  // The same value as HMAC-SHA256 under the exported key.
  auto exp = Must(Operation::kRead, "transit/export/hmac-key/mac/1");
  std::string key = *Base64Decode(Data(exp).at("keys").as_object().at("1").as_string());
  EXPECT_EQ(mac, "vault:v1:" + B64(crypto::HmacSha256(key, "data")));
  auto v = Must(Operation::kUpdate, "transit/verify/mac", {{"input", B64("data")}, {"hmac", mac}});
  EXPECT_TRUE(Data(v).at("valid").as_bool());
  auto v2 = Must(Operation::kUpdate, "transit/verify/mac", {{"input", B64("datb")}, {"hmac", mac}});
  EXPECT_FALSE(Data(v2).at("valid").as_bool());

  auto sum = Must(Operation::kUpdate, "transit/hash/sha2-256", {{"input", B64("abc")}});
  EXPECT_EQ(Str(Data(sum).at("sum")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto rnd = Must(Operation::kUpdate, "transit/random/16", {{"format", "hex"}});
  EXPECT_EQ(Str(Data(rnd).at("random_bytes")).size(), 32u);
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/random", {{"bytes", 1 << 20}}).ok());
  // An hmac key cannot encrypt, so it cannot wrap a data key.
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/datakey/plaintext/mac").ok());
}

TEST_F(TransitTest, EncryptionsDuringRotationsAllDecrypt) {
  Must(Operation::kUpdate, "transit/keys/busy");
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto r = Do(Operation::kUpdate, "transit/encrypt/busy",
                    {{"plaintext", B64(Cat("p", t * 1000 + i))}});
        if (r.ok()) made[t].push_back(Str(r->data->at("ciphertext")));
      }
    });
  for (int i = 0; i < 20; ++i) Must(Operation::kUpdate, "transit/keys/busy/rotate");
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(made[t].size(), 200u);
    for (int i = 0; i < 200; ++i) EXPECT_EQ(*Decrypt("busy", made[t][i]), Cat("p", t * 1000 + i));
  }
  EXPECT_EQ(Data(Must(Operation::kRead, "transit/keys/busy")).at("latest_version").as_int64(), 21);
}

TEST_F(TransitTest, ReviewFindingsStayFixed) {
  // A trimmed RSA version asked for by number is a 400, not a crash.
  Must(Operation::kUpdate, "transit/keys/rsa", {{"type", "rsa-2048"}});
  Must(Operation::kUpdate, "transit/keys/rsa/rotate");
  Must(Operation::kUpdate, "transit/keys/rsa/config", {{"min_decryption_version", 2}});
  Must(Operation::kUpdate, "transit/keys/rsa/trim", {{"min_available_version", 2}});
  auto e =
      Do(Operation::kUpdate, "transit/encrypt/rsa", {{"plaintext", B64("x")}, {"key_version", 1}});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(core::HttpStatusFor(e.status()), 400) << e.status();

  // A crafted backup (a version the key says exists but does not hold) is refused.
  Must(Operation::kUpdate, "transit/keys/b",
       {{"exportable", true}, {"allow_plaintext_backup", true}});
  std::string blob = Str(Data(Must(Operation::kRead, "transit/backup/b")).at("backup"));
  json::object outer = json::parse(*Base64Decode(blob)).as_object();
  json::object pol = json::parse(outer.at("policy").as_string()).as_object();
  pol["latest_version"] = 5;
  outer["policy"] = json::serialize(pol);
  auto r =
      Do(Operation::kUpdate, "transit/restore/crafted", {{"backup", B64(json::serialize(outer))}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(core::HttpStatusFor(r.status()), 400) << r.status();
  EXPECT_NE(Msg(r.status()).find("version 2 is missing"), std::string::npos) << r.status();
  // A backup's auto_rotate_period has the same floor as the key's config (an hour): a period of
  // one second would rotate the key on nearly every request.
  pol = json::parse(outer.at("policy").as_string()).as_object();
  pol["latest_version"] = 1;
  pol["auto_rotate_period"] = 1;
  outer["policy"] = json::serialize(pol);
  r = Do(Operation::kUpdate, "transit/restore/storm", {{"backup", B64(json::serialize(outer))}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(core::HttpStatusFor(r.status()), 400) << r.status();
  EXPECT_NE(Msg(r.status()).find("at least an hour"), std::string::npos) << r.status();

  // An ecdsa-p256 backup holding a key of another 256-bit curve is refused: it would sign on
  // secp256k1 while the key says P-256.
  Must(Operation::kUpdate, "transit/keys/ec",
       {{"type", "ecdsa-p256"}, {"exportable", true}, {"allow_plaintext_backup", true}});
  outer = json::parse(
              *Base64Decode(Str(Data(Must(Operation::kRead, "transit/backup/ec")).at("backup"))))
              .as_object();
  pol = json::parse(outer.at("policy").as_string()).as_object();
  EVP_PKEY* k1 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1");
  ASSERT_NE(k1, nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), k1, nullptr, nullptr, 0, nullptr, nullptr), 1);
  EVP_PKEY_free(k1);
  char* pem = nullptr;
  const long pem_len = BIO_get_mem_data(bio.get(), &pem);
  pol["keys"].as_object()["1"].as_object()["private_key"] =
      std::string(pem, static_cast<size_t>(pem_len));
  outer["policy"] = json::serialize(pol);
  r = Do(Operation::kUpdate, "transit/restore/k1", {{"backup", B64(json::serialize(outer))}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(core::HttpStatusFor(r.status()), 400) << r.status();
  EXPECT_NE(Msg(r.status()).find("is not a ecdsa-p256 key"), std::string::npos) << r.status();
  // A key version past 2^31 is refused, not cut down to version 1.
  auto sig = Do(Operation::kUpdate, "transit/sign/ec",
                {{"input", B64("x")}, {"key_version", int64_t{4294967297}}});
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(core::HttpStatusFor(sig.status()), 400) << sig.status();
  auto big_mac = Do(Operation::kUpdate, "transit/hmac/ec",
                    {{"input", B64("x")}, {"key_version", int64_t{4294967297}}});
  ASSERT_FALSE(big_mac.ok());
  EXPECT_EQ(core::HttpStatusFor(big_mac.status()), 400) << big_mac.status();

  // Convergent encryption refuses associated data (the nonce would repeat across AADs).
  Must(Operation::kUpdate, "transit/keys/cv", {{"derived", true}, {"convergent_encryption", true}});
  EXPECT_FALSE(Do(Operation::kUpdate, "transit/encrypt/cv",
                  {{"plaintext", B64("x")}, {"context", B64("c")}, {"associated_data", B64("a")}})
                   .ok());
  // A context on a key that is not derived is ignored, as Vault does.
  Must(Operation::kUpdate, "transit/keys/plain");
  std::string c = Encrypt("plain", "hello", {{"context", B64("ignored")}});
  EXPECT_EQ(*Decrypt("plain", c), "hello");
  // HMACs made before min_encryption_version was raised still verify.
  std::string mac =
      Str(Data(Must(Operation::kUpdate, "transit/hmac/plain", {{"input", B64("m")}})).at("hmac"));
  Must(Operation::kUpdate, "transit/keys/plain/rotate");
  Must(Operation::kUpdate, "transit/keys/plain/config", {{"min_encryption_version", 2}});
  EXPECT_TRUE(
      Data(Must(Operation::kUpdate, "transit/verify/plain", {{"input", B64("m")}, {"hmac", mac}}))
          .at("valid")
          .as_bool());
  // A derived Ed25519 key has no single public key to show or export.
  Must(Operation::kUpdate, "transit/keys/ded", {{"type", "ed25519"}, {"derived", true}});
  EXPECT_FALSE(Do(Operation::kRead, "transit/export/public-key/ded").ok());
  // Creating a key needs "update" on keys/<name>, as in Vault (no existence check there).
  std::string tok = TokenFor("path \"transit/keys/*\" { capabilities = [\"update\"] }", "upd");
  EXPECT_TRUE(Do(Operation::kUpdate, "transit/keys/by-update", {}, tok).ok());
  // A context longer than HKDF's limit is a 400, not a 500.
  Must(Operation::kUpdate, "transit/keys/d2", {{"derived", true}});
  auto lc = Do(Operation::kUpdate, "transit/encrypt/d2",
               {{"plaintext", B64("x")}, {"context", B64(std::string(2000, 'c'))}});
  ASSERT_FALSE(lc.ok());
  EXPECT_EQ(core::HttpStatusFor(lc.status()), 400) << lc.status();
}

TEST(TransitCiphertext, ParseRefusesMalformedInput) {
  EXPECT_EQ(Msg(ParseVersioned("abc").status()), "invalid ciphertext: no prefix");
  EXPECT_FALSE(ParseVersioned("vault:v:AAAA").ok());
  EXPECT_FALSE(ParseVersioned("vault:v0:AAAA").ok());
  EXPECT_FALSE(ParseVersioned("vault:v-1:AAAA").ok());
  EXPECT_FALSE(ParseVersioned("vault:v99999999999:AAAA").ok());
  EXPECT_FALSE(ParseVersioned("vault:v1:!!!").ok());
  auto ok = ParseVersioned("vault:v12:aGk=");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->version, 12);
  EXPECT_EQ(ok->bytes, "hi");
}

}  // namespace
}  // namespace coffer::engines::transit
