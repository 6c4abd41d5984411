// The PKCS#11 seal wrapper against a real token: SoftHSM2 (Debian's softhsm2, which
// scripts/install-deps.sh installs), with its tokens in a temporary folder of this test process.
//
// SoftHSM2 reads SOFTHSM2_CONF and scans its token folder at C_Initialize only: a token made by
// softhsm2-util afterwards stays invisible until the module is finalized and initialized again
// (TokensMadeAfterInitializeAppearOnceTheModuleIsFinalized shows it). So the configuration is
// written and every token the tests use is made once, before the first wrapper of the process
// initializes the module; each test then works in a token of its own.
#include "autoseal/pkcs11_wrapper.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace coffer::autoseal {
namespace {

constexpr char kSoftHsmLib[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kPin[] = "1234";

// One token per test, all made up front (see above).
constexpr const char* kTokens[] = {"roundtrip", "second",  "tamper", "wrongpin", "missing", "cbc",
                                   "attrs",     "threads", "lost",   "byslot",   "visible"};

// Runs a command, returns its exit status and output (stdout and stderr).
int Run(const std::string& cmd, std::string* output) {
  output->clear();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  return pclose(p);
}

// The process's SoftHSM2: a temporary token folder, its softhsm2.conf in SOFTHSM2_CONF, and the
// tokens of kTokens with their slot ids. Removed when the process exits.
class SoftHsm {
 public:
  static SoftHsm& Get() {
    static SoftHsm hsm;
    return hsm;
  }

  const std::string& error() const { return error_; }
  const std::filesystem::path& dir() const { return dir_; }
  unsigned long slot(const std::string& label) const { return slots_.at(label); }

  // Makes a token now; returns its slot id (0 on failure, with the tool's output in *out).
  unsigned long InitToken(const std::string& label, std::string* out) const {
    int rc = Run(
        "softhsm2-util --init-token --free --label " + label + " --pin " + kPin + " --so-pin 0000",
        out);
    // "The token has been initialized and is reassigned to slot 123456789"
    auto at = out->rfind("slot ");
    if (rc != 0 || at == std::string::npos) return 0;
    return std::stoul(out->substr(at + 5));
  }

  SoftHsm(const SoftHsm&) = delete;
  SoftHsm& operator=(const SoftHsm&) = delete;

 private:
  SoftHsm() {
    if (access(kSoftHsmLib, R_OK) != 0) {
      error_ = std::string(kSoftHsmLib) + " is missing: install softhsm2 (scripts/install-deps.sh)";
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-softhsm-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ / "tokens");
    std::ofstream(dir_ / "softhsm2.conf") << "directories.tokendir = " << (dir_ / "tokens").string()
                                          << "\nobjectstore.backend = file\nlog.level = ERROR\n";
    // Before any C_Initialize of this process: SoftHSM2 reads it there.
    setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
    for (const char* label : kTokens) {
      std::string out;
      unsigned long slot = InitToken(label, &out);
      if (slot == 0) {
        error_ = "softhsm2-util --init-token failed: " + out;
        return;
      }
      slots_[label] = slot;
    }
  }
  ~SoftHsm() {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string error_;
  std::filesystem::path dir_;
  std::map<std::string, unsigned long> slots_;
};

class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(SoftHsm::Get().error(), ""); }

  static Pkcs11Options Options(const std::string& token, const std::string& key = "seal-key",
                               bool generate = true) {
    Pkcs11Options o;
    o.lib = kSoftHsmLib;
    o.token_label = token;
    o.pin = crypto::SecretBytes(kPin);
    o.key_label = key;
    o.generate_key = generate;
    return o;
  }

  static std::unique_ptr<seal::Wrapper> Make(Pkcs11Options o) {
    auto w = NewPkcs11Wrapper(std::move(o));
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(*w) : nullptr;
  }

  static Pkcs11Options Cbc(const std::string& token, bool generate = true) {
    Pkcs11Options o = Options(token, "seal-key", generate);
    o.mechanism = "CKM_AES_CBC_PAD";
    o.hmac_key_label = "seal-hmac-key";
    return o;
  }
};

TEST_F(Pkcs11Test, GeneratesTheKeyAndRoundTrips) {
  auto o = Options("roundtrip");
  o.mechanism = "0x1087";  // the number works as well as the name
  auto w = Make(std::move(o));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->Type(), "pkcs11");
  ASSERT_TRUE(w->Init().ok()) << w->Init();
  ASSERT_TRUE(w->Init().ok());  // cheap once it succeeded

  const std::string root(32, '\x5a');
  auto sealed = w->Encrypt(root, "core/hsm/barrier-unseal-keys");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->key_id, "pkcs11:seal-key");
  EXPECT_EQ(sealed->ciphertext.size(), 12 + root.size() + 16);  // iv || ct || tag
  EXPECT_EQ(sealed->ciphertext.find(root), std::string::npos);
  auto again = w->Encrypt(root, "core/hsm/barrier-unseal-keys");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->ciphertext, sealed->ciphertext);  // a fresh IV each time

  auto opened = w->Decrypt(sealed->ciphertext, "core/hsm/barrier-unseal-keys");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), root);

  auto empty = w->Encrypt("", "p");
  ASSERT_TRUE(empty.ok()) << empty.status();
  auto empty_opened = w->Decrypt(empty->ciphertext, "p");
  ASSERT_TRUE(empty_opened.ok()) << empty_opened.status();
  EXPECT_TRUE(empty_opened->empty());

  // After Finalize (logout, session closed, module released) the next call starts again.
  w->Finalize();
  auto after = w->Decrypt(sealed->ciphertext, "core/hsm/barrier-unseal-keys");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->view(), root);
}

TEST_F(Pkcs11Test, SecondWrapperFindsTheKeyAndOutlivesTheFirst) {
  auto first = Make(Options("second"));
  ASSERT_NE(first, nullptr);
  auto sealed = first->Encrypt("root key bytes", "core/seal");
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // The same module through another path (a symlink): one registry entry, one initialization.
  auto link = SoftHsm::Get().dir() / "libsofthsm2-link.so";
  std::error_code ec;
  std::filesystem::remove(link, ec);  // from an earlier --gtest_repeat round
  std::filesystem::create_symlink(kSoftHsmLib, link, ec);
  ASSERT_FALSE(ec) << ec.message();
  auto o = Options("second", "seal-key", /*generate=*/false);
  o.lib = link.string();
  auto second = Make(std::move(o));
  ASSERT_NE(second, nullptr);
  auto opened = second->Decrypt(sealed->ciphertext, "core/seal");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), "root key bytes");

  // The first one's Finalize neither logs the token out nor finalizes the module under the
  // second one.
  first->Finalize();
  first.reset();
  auto still = second->Decrypt(sealed->ciphertext, "core/seal");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->view(), "root key bytes");
  auto resealed = second->Encrypt("more", "x");
  EXPECT_TRUE(resealed.ok()) << resealed.status();
}

TEST_F(Pkcs11Test, AlteredDataOrWrongAadIsRefused) {
  auto w = Make(Options("tamper"));
  ASSERT_NE(w, nullptr);
  auto sealed = w->Encrypt("the root key", "core/path");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  const std::string& ct = sealed->ciphertext;

  auto wrong_aad = w->Decrypt(ct, "core/other-path");
  EXPECT_EQ(wrong_aad.status().code(), absl::StatusCode::kInvalidArgument) << wrong_aad.status();
  EXPECT_TRUE(std::string(wrong_aad.status().message())
                  .starts_with("the HSM could not decrypt: wrong key or altered data"))
      << wrong_aad.status();
  // One flipped bit in the IV, the ciphertext and the tag.
  for (size_t at : {size_t{0}, size_t{12}, ct.size() - 1}) {
    std::string bad = ct;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    auto r = w->Decrypt(bad, "core/path");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << at << ": " << r.status();
  }
  for (std::string_view bad : {std::string_view(), std::string_view(ct).substr(0, 27),
                               std::string_view(ct).substr(0, ct.size() - 1)}) {
    auto r = w->Decrypt(bad, "core/path");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad.size();
  }
  // The session survives failed decryptions.
  auto ok = w->Decrypt(ct, "core/path");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->view(), "the root key");
}

TEST_F(Pkcs11Test, WrongPinIsRefusedAndCreatesNothing) {
  auto o = Options("wrongpin");
  o.pin = crypto::SecretBytes("987654");
  auto w = Make(std::move(o));
  ASSERT_NE(w, nullptr);
  auto st = w->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  EXPECT_EQ(st.message(), "the HSM refused the PIN (COFFER_HSM_PIN)");
  EXPECT_EQ(std::string(st.message()).find("987654"), std::string::npos);
  // Not tried again (tokens lock the PIN after a few wrong tries): the same answer.
  EXPECT_EQ(w->Init(), st);
  EXPECT_EQ(w->Encrypt("x", "y").status().code(), absl::StatusCode::kPermissionDenied);

  // Logged in with the right PIN, the token holds no key: the wrong-PIN wrapper made none.
  auto check = Make(Options("wrongpin", "seal-key", /*generate=*/false));
  ASSERT_NE(check, nullptr);
  EXPECT_EQ(check->Init().code(), absl::StatusCode::kNotFound) << check->Init();
}

TEST_F(Pkcs11Test, MissingKeyWithoutGenerateIsNotFound) {
  auto w = Make(Options("missing", "no-such-key", /*generate=*/false));
  ASSERT_NE(w, nullptr);
  auto st = w->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_NE(std::string(st.message()).find("\"no-such-key\""), std::string::npos) << st;
  EXPECT_EQ(w->Encrypt("x", "y").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(Pkcs11Test, UnknownTokenLabelListsTheTokens) {
  auto w = Make(Options("no-such-token"));
  ASSERT_NE(w, nullptr);
  auto st = w->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  std::string msg(st.message());
  EXPECT_NE(msg.find("\"no-such-token\""), std::string::npos) << msg;
  for (const char* label : {"roundtrip", "missing", "byslot"}) {
    EXPECT_NE(msg.find(std::string("\"") + label + "\" (slot " +
                       std::to_string(SoftHsm::Get().slot(label)) + ")"),
              std::string::npos)
        << msg;
  }
}

TEST_F(Pkcs11Test, SlotIdInDecimalOrHex) {
  const unsigned long slot = SoftHsm::Get().slot("byslot");
  auto o = Options("");
  o.slot = std::to_string(slot);
  auto w = Make(std::move(o));
  ASSERT_NE(w, nullptr);
  auto sealed = w->Encrypt("by slot", "a");
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", slot);
  o = Options("byslot", "seal-key", /*generate=*/false);  // slot and label: both must match
  o.slot = hex;
  auto by_hex = Make(std::move(o));
  ASSERT_NE(by_hex, nullptr);
  auto opened = by_hex->Decrypt(sealed->ciphertext, "a");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), "by slot");

  o = Options("roundtrip");
  o.slot = std::to_string(slot);
  auto mismatch = Make(std::move(o));
  ASSERT_NE(mismatch, nullptr);
  auto st = mismatch->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("is labelled \"byslot\""), std::string::npos) << st;

  o = Options("");
  o.slot = "4000000000";
  auto missing = Make(std::move(o));
  ASSERT_NE(missing, nullptr);
  st = missing->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("\"byslot\""), std::string::npos) << st;
}

TEST_F(Pkcs11Test, CbcPadWithHmacRoundTripsAndDetectsTampering) {
  auto w = Make(Cbc("cbc"));
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Init().ok()) << w->Init();
  const std::string root(32, '\x07');
  auto sealed = w->Encrypt(root, "core/hsm/root");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->key_id, "pkcs11:seal-key");
  EXPECT_EQ(sealed->ciphertext.size(), 16 + 48 + 32);  // iv || 32 bytes padded to 48 || mac
  auto opened = w->Decrypt(sealed->ciphertext, "core/hsm/root");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->view(), root);

  const std::string& ct = sealed->ciphertext;
  EXPECT_EQ(w->Decrypt(ct, "core/hsm/other").status().code(), absl::StatusCode::kInvalidArgument);
  for (size_t at : {size_t{0}, size_t{16}, size_t{63}, ct.size() - 1}) {
    std::string bad = ct;
    bad[at] = static_cast<char>(bad[at] ^ 0x80);
    auto r = w->Decrypt(bad, "core/hsm/root");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << at << ": " << r.status();
  }
  // Too short, or not whole blocks.
  for (size_t n : {size_t{0}, size_t{63}, ct.size() - 1, ct.size() - 16}) {
    auto r = w->Decrypt(std::string_view(ct).substr(0, n), "core/hsm/root");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }

  // Another wrapper, by mechanism number, finds both keys.
  auto o = Cbc("cbc", /*generate=*/false);
  o.mechanism = "0x1085";
  auto second = Make(std::move(o));
  ASSERT_NE(second, nullptr);
  auto again = second->Decrypt(ct, "core/hsm/root");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->view(), root);

  // Without its HMAC key the CBC wrapper does not start.
  o = Cbc("cbc", /*generate=*/false);
  o.hmac_key_label = "no-such-hmac-key";
  auto no_hmac = Make(std::move(o));
  ASSERT_NE(no_hmac, nullptr);
  auto st = no_hmac->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_NE(std::string(st.message()).find("no-such-hmac-key"), std::string::npos) << st;
}

TEST_F(Pkcs11Test, GeneratedKeysNeverLeaveTheToken) {
  auto w = Make(Cbc("attrs"));
  ASSERT_NE(w, nullptr);
  for (bool hmac : {false, true}) {
    SCOPED_TRACE(hmac ? "HMAC key" : "AES key");
    auto f = InspectPkcs11KeyForTest(*w, hmac);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_TRUE(f->token);
    EXPECT_TRUE(f->is_private);
    EXPECT_TRUE(f->sensitive);
    EXPECT_FALSE(f->extractable);
    EXPECT_TRUE(f->always_sensitive);
    EXPECT_TRUE(f->never_extractable);
    EXPECT_EQ(f->value_len, 32u);
    EXPECT_FALSE(f->value_readable);
  }
}

TEST_F(Pkcs11Test, BadModulePathIsFailedPrecondition) {
  auto o = Options("roundtrip");
  o.lib = "/nonexistent/libno-such-hsm.so";
  auto w = Make(std::move(o));
  ASSERT_NE(w, nullptr);
  auto st = w->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("/nonexistent/libno-such-hsm.so"), std::string::npos)
      << st;
  EXPECT_EQ(w->Encrypt("x", "y").status().code(), absl::StatusCode::kFailedPrecondition);

  // A shared library that is not a PKCS#11 module.
  o = Options("roundtrip");
  o.lib = "libm.so.6";
  auto not_p11 = Make(std::move(o));
  ASSERT_NE(not_p11, nullptr);
  st = not_p11->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("C_GetFunctionList"), std::string::npos) << st;
}

TEST_F(Pkcs11Test, ConcurrentEncryptAndDecrypt) {
  auto w = Make(Options("threads"));
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Init().ok()) << w->Init();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&w, &failures, t] {
      for (int i = 0; i < 25; ++i) {
        std::string pt = "secret " + std::to_string(t) + "/" + std::to_string(i);
        std::string aad = "path/" + std::to_string(t);
        auto sealed = w->Encrypt(pt, aad);
        if (!sealed.ok()) {
          ++failures;
          continue;
        }
        auto opened = w->Decrypt(sealed->ciphertext, aad);
        if (!opened.ok() || opened->view() != pt) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// The session disappears under the wrapper (as when a network HSM drops the link): the call that
// finds out says kUnavailable, the next one opens a new session and logs in again.
TEST_F(Pkcs11Test, LostSessionIsUnavailableThenReopened) {
  auto w = Make(Options("lost"));
  ASSERT_NE(w, nullptr);
  auto sealed = w->Encrypt("survives", "p");
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // The same module, opened by the test: C_CloseAllSessions ends every session of this process
  // on the slot (and so its login). CK_RV and CK_SLOT_ID are unsigned long.
  void* dl = dlopen(kSoftHsmLib, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr);
  using CloseAll = unsigned long (*)(unsigned long);
  auto close_all = reinterpret_cast<CloseAll>(dlsym(dl, "C_CloseAllSessions"));
  ASSERT_NE(close_all, nullptr);
  EXPECT_EQ(close_all(SoftHsm::Get().slot("lost")), 0u);
  dlclose(dl);

  auto lost = w->Decrypt(sealed->ciphertext, "p");
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_NE(std::string(lost.status().message()).find("CKR_SESSION_HANDLE_INVALID"),
            std::string::npos)
      << lost.status();
  auto back = w->Decrypt(sealed->ciphertext, "p");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->view(), "survives");
}

// SoftHSM2 sees the tokens that exist at C_Initialize: one made later appears only once the last
// wrapper has released the module (C_Finalize) and the next one initializes it again.
TEST_F(Pkcs11Test, TokensMadeAfterInitializeAppearOnceTheModuleIsFinalized) {
  auto holder = Make(Options("visible"));
  ASSERT_NE(holder, nullptr);
  ASSERT_TRUE(holder->Init().ok()) << holder->Init();
  static int round = 0;  // a new label in each --gtest_repeat round
  const std::string late = "late-" + std::to_string(++round);
  std::string out;
  ASSERT_NE(SoftHsm::Get().InitToken(late, &out), 0u) << out;

  auto early = Make(Options(late));
  ASSERT_NE(early, nullptr);
  auto st = early->Init();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(std::string(st.message()).find("\"visible\""), std::string::npos) << st;

  holder.reset();
  early.reset();
  auto later = Make(Options(late));
  ASSERT_NE(later, nullptr);
  EXPECT_TRUE(later->Init().ok()) << later->Init();
}

TEST(Pkcs11Options, AreCheckedBeforeTheModuleIsLoaded) {
  auto base = [] {
    Pkcs11Options o;
    o.lib = "/nonexistent/lib.so";  // not loaded by NewPkcs11Wrapper
    o.token_label = "t";
    o.pin = crypto::SecretBytes("1234");
    o.key_label = "k";
    return o;
  };
  EXPECT_TRUE(NewPkcs11Wrapper(base()).ok());
  auto hex = base();
  hex.mechanism = "0x1087";
  EXPECT_TRUE(NewPkcs11Wrapper(std::move(hex)).ok());
  auto gcm_with_hmac_label = base();  // Vault's documented stanza sets it: ignored with GCM
  gcm_with_hmac_label.hmac_key_label = "h";
  EXPECT_TRUE(NewPkcs11Wrapper(std::move(gcm_with_hmac_label)).ok());

  struct Case {
    const char* name;
    void (*change)(Pkcs11Options&);
    const char* in_message;
  };
  const Case cases[] = {
      {"no lib", [](Pkcs11Options& o) { o.lib.clear(); }, "lib"},
      {"no key label", [](Pkcs11Options& o) { o.key_label.clear(); }, "key_label"},
      {"no pin", [](Pkcs11Options& o) { o.pin = crypto::SecretBytes(); }, "COFFER_HSM_PIN"},
      {"no token", [](Pkcs11Options& o) { o.token_label.clear(); }, "token_label"},
      {"bad slot", [](Pkcs11Options& o) { o.slot = "12x"; }, "\"12x\""},
      {"long token label", [](Pkcs11Options& o) { o.token_label = std::string(33, 'a'); },
       "32 bytes"},
      {"unknown mechanism", [](Pkcs11Options& o) { o.mechanism = "CKM_AES_CTR"; }, "CKM_AES_CTR"},
      {"unsupported number", [](Pkcs11Options& o) { o.mechanism = "0x1086"; }, "0x1086"},
      {"cbc without hmac key", [](Pkcs11Options& o) { o.mechanism = "CKM_AES_CBC_PAD"; },
       "hmac_key_label"},
      {"bad hmac mechanism",
       [](Pkcs11Options& o) {
         o.mechanism = "CKM_AES_CBC_PAD";
         o.hmac_key_label = "h";
         o.hmac_mechanism = "0x250";
       },
       "0x250"},
  };
  for (const auto& c : cases) {
    auto o = base();
    c.change(o);
    auto w = NewPkcs11Wrapper(std::move(o));
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(std::string(w.status().message()).find(c.in_message), std::string::npos)
        << c.name << ": " << w.status();
  }
}

}  // namespace
}  // namespace coffer::autoseal
