#include "autoseal/pkcs11_wrapper.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/log.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::autoseal {
namespace {

constexpr size_t kAesKeyBytes = 32;
constexpr size_t kGcmIvBytes = 12;
constexpr size_t kGcmTagBytes = 16;
constexpr size_t kCbcIvBytes = 16;
constexpr size_t kCbcBlockBytes = 16;
constexpr size_t kHmacBytes = 32;
constexpr size_t kTokenLabelBytes = 32;  // CK_TOKEN_INFO.label: blank padded, not terminated

// PKCS#11 3.0's code for a failed AEAD tag check; p11-kit's header is 2.40 and lacks it.
constexpr CK_RV kCkrAeadDecryptFailed = 0x35UL;

// ---- CK_RV names ------------------------------------------------------------------------------
// The codes a seal is likely to meet; others are shown as numbers.

struct RvName {
  CK_RV rv;
  const char* name;
};
#define COFFER_CKR(x) \
  RvName { x, #x }
constexpr RvName kRvNames[] = {
    COFFER_CKR(CKR_OK),
    COFFER_CKR(CKR_HOST_MEMORY),
    COFFER_CKR(CKR_SLOT_ID_INVALID),
    COFFER_CKR(CKR_GENERAL_ERROR),
    COFFER_CKR(CKR_FUNCTION_FAILED),
    COFFER_CKR(CKR_ARGUMENTS_BAD),
    COFFER_CKR(CKR_CANT_LOCK),
    COFFER_CKR(CKR_ATTRIBUTE_READ_ONLY),
    COFFER_CKR(CKR_ATTRIBUTE_SENSITIVE),
    COFFER_CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    COFFER_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    COFFER_CKR(CKR_DATA_INVALID),
    COFFER_CKR(CKR_DATA_LEN_RANGE),
    COFFER_CKR(CKR_DEVICE_ERROR),
    COFFER_CKR(CKR_DEVICE_MEMORY),
    COFFER_CKR(CKR_DEVICE_REMOVED),
    COFFER_CKR(CKR_ENCRYPTED_DATA_INVALID),
    COFFER_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE),
    RvName{kCkrAeadDecryptFailed, "CKR_AEAD_DECRYPT_FAILED"},
    COFFER_CKR(CKR_FUNCTION_CANCELED),
    COFFER_CKR(CKR_FUNCTION_NOT_SUPPORTED),
    COFFER_CKR(CKR_KEY_HANDLE_INVALID),
    COFFER_CKR(CKR_KEY_SIZE_RANGE),
    COFFER_CKR(CKR_KEY_TYPE_INCONSISTENT),
    COFFER_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    COFFER_CKR(CKR_MECHANISM_INVALID),
    COFFER_CKR(CKR_MECHANISM_PARAM_INVALID),
    COFFER_CKR(CKR_OBJECT_HANDLE_INVALID),
    COFFER_CKR(CKR_OPERATION_ACTIVE),
    COFFER_CKR(CKR_OPERATION_NOT_INITIALIZED),
    COFFER_CKR(CKR_PIN_INCORRECT),
    COFFER_CKR(CKR_PIN_INVALID),
    COFFER_CKR(CKR_PIN_LEN_RANGE),
    COFFER_CKR(CKR_PIN_EXPIRED),
    COFFER_CKR(CKR_PIN_LOCKED),
    COFFER_CKR(CKR_SESSION_CLOSED),
    COFFER_CKR(CKR_SESSION_COUNT),
    COFFER_CKR(CKR_SESSION_HANDLE_INVALID),
    COFFER_CKR(CKR_SESSION_READ_ONLY),
    COFFER_CKR(CKR_SESSION_EXISTS),
    COFFER_CKR(CKR_SIGNATURE_INVALID),
    COFFER_CKR(CKR_SIGNATURE_LEN_RANGE),
    COFFER_CKR(CKR_TEMPLATE_INCOMPLETE),
    COFFER_CKR(CKR_TEMPLATE_INCONSISTENT),
    COFFER_CKR(CKR_TOKEN_NOT_PRESENT),
    COFFER_CKR(CKR_TOKEN_NOT_RECOGNIZED),
    COFFER_CKR(CKR_TOKEN_WRITE_PROTECTED),
    COFFER_CKR(CKR_USER_ALREADY_LOGGED_IN),
    COFFER_CKR(CKR_USER_NOT_LOGGED_IN),
    COFFER_CKR(CKR_USER_PIN_NOT_INITIALIZED),
    COFFER_CKR(CKR_USER_TYPE_INVALID),
    COFFER_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    COFFER_CKR(CKR_RANDOM_NO_RNG),
    COFFER_CKR(CKR_BUFFER_TOO_SMALL),
    COFFER_CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    COFFER_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    COFFER_CKR(CKR_MUTEX_BAD),
    COFFER_CKR(CKR_FIPS_SELF_TEST_FAILED),
    COFFER_CKR(CKR_LIBRARY_LOAD_FAILED),
    COFFER_CKR(CKR_FUNCTION_REJECTED),
};
#undef COFFER_CKR

std::string Hex(unsigned long v) {
  char buf[2 + 2 * sizeof v + 1];
  std::snprintf(buf, sizeof buf, "0x%lX", v);
  return buf;
}

// "CKR_PIN_INCORRECT", or the number for a code the table does not know.
std::string RvString(CK_RV rv) {
  for (const auto& n : kRvNames) {
    if (n.rv == rv) return n.name;
  }
  if (rv >= CKR_VENDOR_DEFINED) return "vendor-defined CK_RV " + Hex(rv);
  return "CK_RV " + Hex(rv);
}

// Answers after which the session is dropped, and the next call opens a new one, logs in and
// looks the keys up again: the token or the session is gone (CKR_DEVICE_ERROR too: some network
// HSMs' client libraries answer it when the link drops), another application of the process
// logged the token out (CKR_USER_NOT_LOGGED_IN), an operation was left open
// (CKR_OPERATION_ACTIVE), or the key was deleted or re-created (invalid handles).
bool SessionLost(CK_RV rv) {
  switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_OPERATION_ACTIVE:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
      return true;
    default:
      return false;
  }
}

// What C_Decrypt / C_Verify answer when the data was not made by this key or was altered.
bool NotOurs(CK_RV rv) {
  return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
         rv == kCkrAeadDecryptFailed || rv == CKR_SIGNATURE_INVALID ||
         rv == CKR_SIGNATURE_LEN_RANGE;
}

absl::Status NotOursError(std::string_view detail = "") {
  std::string msg = "the HSM could not decrypt: wrong key or altered data";
  if (!detail.empty()) msg += Cat(" (", detail, ")");
  return absl::InvalidArgumentError(msg);
}

absl::Status RvError(std::string_view fn, CK_RV rv) {
  std::string msg = Cat("PKCS#11 ", fn, " failed: ", RvString(rv));
  if (SessionLost(rv)) {
    return absl::UnavailableError(
        Cat(msg, " (the HSM session is dropped; the next call opens a new one)"));
  }
  return absl::FailedPreconditionError(msg);
}

// PKCS#11 2.40 declares its input buffers as non-const pointers; modules only read them.
CK_BYTE_PTR In(std::string_view s) {
  return reinterpret_cast<CK_BYTE_PTR>(const_cast<char*>(s.data()));
}
CK_BYTE_PTR Out(std::string& s) { return reinterpret_cast<CK_BYTE_PTR>(s.data()); }

std::string_view Trimmed(const unsigned char* field, size_t n) {
  std::string_view s(reinterpret_cast<const char*>(field), n);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.remove_suffix(1);
  return s;
}

// Decimal or 0x-hex.
std::optional<unsigned long> ParseNumber(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// ---- The process-wide module registry ---------------------------------------------------------

// C_Initialize and C_Finalize act on the whole process (PKCS#11 2.40 section 5.4): a second
// C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED and one C_Finalize ends every other
// user's sessions. So, against the no-singletons rule of CONVENTIONS.md, the loaded modules are
// counted here, process-wide, as the PKCS#11 library itself is: every wrapper of one module shares
// one initialization, and C_Finalize runs only when the last of them releases it (and only if we
// initialized it: a module someone else in the process initialized is theirs to finalize).
//
// Modules are keyed by dlopen's handle, so two paths to one file share an entry. They are never
// dlclose'd: a module may leave atexit handlers or thread-specific-data destructors behind, and
// unmapping its code turns those into crashes at exit. The registry keeps one reference for the
// life of the process and initializes the module again when it is used again.
//
// The login state of a token is per application too (PKCS#11 2.40 section 5.6: every session of
// the application is logged in or none is), so logins are counted per (module, slot): the last
// wrapper to leave a token logs out. C_Login and C_Logout run under the registry's lock so that a
// login cannot slip in between the count reaching zero and the C_Logout. (A login made outside
// these wrappers, by other code of the process, is not counted: the last wrapper ends it too.)
class ModuleRegistry {
 public:
  struct Handle {
    void* key = nullptr;  // dlopen's handle
    CK_FUNCTION_LIST_PTR fns = nullptr;
  };

  static ModuleRegistry& Get() {
    // Never destroyed: wrappers destroyed by other static destructors still release into it.
    static auto* registry = new ModuleRegistry();
    return *registry;
  }

  absl::StatusOr<Handle> Acquire(const std::string& path) {
    MutexLock l(&mu_);
    dlerror();
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) {
      const char* why = dlerror();
      return absl::FailedPreconditionError(Cat("cannot load the PKCS#11 module \"", path,
                                               "\": ", why != nullptr ? why : "unknown error"));
    }
    auto it = modules_.find(dl);
    if (it == modules_.end()) {
      auto* get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
      CK_FUNCTION_LIST_PTR fns = nullptr;
      CK_RV rv = get_list != nullptr ? get_list(&fns) : CKR_OK;
      if (get_list == nullptr || rv != CKR_OK || fns == nullptr) {
        dlclose(dl);
        if (get_list == nullptr) {
          return absl::FailedPreconditionError(
              Cat("\"", path, "\" is not a PKCS#11 module: it exports no C_GetFunctionList"));
        }
        return absl::FailedPreconditionError(
            Cat("PKCS#11 C_GetFunctionList of \"", path, "\" failed: ", RvString(rv)));
      }
      it = modules_.emplace(dl, Module{.fns = fns}).first;
    } else {
      dlclose(dl);  // the entry holds a reference already
    }
    Module& m = it->second;
    if (m.users == 0) {
      CK_C_INITIALIZE_ARGS args{};
      args.flags = CKF_OS_LOCKING_OK;
      CK_RV rv = m.fns->C_Initialize(&args);
      if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        return absl::FailedPreconditionError(
            Cat("PKCS#11 C_Initialize of \"", path, "\" failed: ", RvString(rv)));
      }
      m.finalize_when_unused = rv == CKR_OK;
      m.logins.clear();
    }
    ++m.users;
    return Handle{dl, m.fns};
  }

  void Release(const Handle& h) {
    MutexLock l(&mu_);
    auto it = modules_.find(h.key);
    if (it == modules_.end() || it->second.users == 0) return;
    Module& m = it->second;
    if (--m.users == 0 && m.finalize_when_unused) {
      m.fns->C_Finalize(nullptr);
      m.finalize_when_unused = false;
    }
  }

  // C_Login for a wrapper's session; counted on CKR_OK and CKR_USER_ALREADY_LOGGED_IN (which is
  // returned as CKR_OK).
  CK_RV Login(const Handle& h, CK_SLOT_ID slot, CK_SESSION_HANDLE session,
              crypto::SecretBytes& pin) {
    MutexLock l(&mu_);
    CK_RV rv = h.fns->C_Login(session, CKU_USER, pin.data(), pin.size());
    if (rv == CKR_USER_ALREADY_LOGGED_IN) rv = CKR_OK;
    if (rv == CKR_OK) ++modules_[h.key].logins[slot];
    return rv;
  }

  // Uncounts a login; the last one logs out (when the session can still do it).
  void Logout(const Handle& h, CK_SLOT_ID slot, CK_SESSION_HANDLE session, bool session_usable) {
    MutexLock l(&mu_);
    auto& logins = modules_[h.key].logins;
    auto it = logins.find(slot);
    if (it == logins.end()) return;
    if (--it->second > 0) return;
    logins.erase(it);
    if (session_usable) h.fns->C_Logout(session);
  }

 private:
  struct Module {
    CK_FUNCTION_LIST_PTR fns = nullptr;
    int users = 0;
    bool finalize_when_unused = false;
    std::map<CK_SLOT_ID, int> logins;
  };

  ModuleRegistry() = default;

  Mutex mu_;
  std::map<void*, Module> modules_ ABSL_GUARDED_BY(mu_);
};

// ---- The wrapper ------------------------------------------------------------------------------

struct Parsed {
  CK_MECHANISM_TYPE mechanism = CKM_AES_GCM;
  CK_MECHANISM_TYPE hmac_mechanism = CKM_SHA256_HMAC;
  std::optional<CK_SLOT_ID> slot;
};

class Pkcs11Wrapper final : public seal::Wrapper {
 public:
  Pkcs11Wrapper(Pkcs11Options opts, Parsed parsed)
      : opts_(std::move(opts)), parsed_(parsed), pin_(std::move(opts_.pin)) {}
  ~Pkcs11Wrapper() override { Finalize(); }
  Pkcs11Wrapper(const Pkcs11Wrapper&) = delete;
  Pkcs11Wrapper& operator=(const Pkcs11Wrapper&) = delete;

  std::string_view Type() const override { return "pkcs11"; }

  absl::Status Init() override {
    MutexLock l(&mu_);
    return ReadyLocked();
  }

  absl::StatusOr<Sealed> Encrypt(std::string_view plaintext, std::string_view aad) override {
    MutexLock l(&mu_);
    RETURN_IF_ERROR(ReadyLocked());
    Sealed out;
    out.key_id = "pkcs11:" + opts_.key_label;
    if (parsed_.mechanism == CKM_AES_GCM) {
      ASSIGN_OR_RETURN(out.ciphertext, EncryptGcmLocked(plaintext, aad));
    } else {
      ASSIGN_OR_RETURN(out.ciphertext, EncryptCbcLocked(plaintext, aad));
    }
    return out;
  }

  absl::StatusOr<crypto::SecretBytes> Decrypt(std::string_view ciphertext,
                                              std::string_view aad) override {
    MutexLock l(&mu_);
    if (parsed_.mechanism == CKM_AES_GCM) {
      if (ciphertext.size() < kGcmIvBytes + kGcmTagBytes) return NotOursError();
      RETURN_IF_ERROR(ReadyLocked());
      return DecryptGcmLocked(ciphertext, aad);
    }
    if (ciphertext.size() < kCbcIvBytes + kCbcBlockBytes + kHmacBytes ||
        (ciphertext.size() - kCbcIvBytes - kHmacBytes) % kCbcBlockBytes != 0)
      return NotOursError();
    RETURN_IF_ERROR(ReadyLocked());
    return DecryptCbcLocked(ciphertext, aad);
  }

  void Finalize() override {
    MutexLock l(&mu_);
    DropSessionLocked(/*session_usable=*/true);
    if (module_) {
      ModuleRegistry::Get().Release(*module_);
      module_.reset();
    }
  }

  absl::StatusOr<Pkcs11KeyFacts> Inspect(bool hmac) {
    MutexLock l(&mu_);
    RETURN_IF_ERROR(ReadyLocked());
    CK_OBJECT_HANDLE key = hmac ? hmac_key_ : key_;
    if (key == CK_INVALID_HANDLE)
      return absl::FailedPreconditionError("this wrapper has no HMAC key");
    CK_BBOOL token = CK_FALSE, priv = CK_FALSE, sensitive = CK_FALSE, extractable = CK_TRUE,
             always = CK_FALSE, never = CK_FALSE;
    CK_ULONG len = 0;
    CK_ATTRIBUTE attrs[] = {
        {CKA_TOKEN, &token, sizeof token},
        {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_SENSITIVE, &sensitive, sizeof sensitive},
        {CKA_EXTRACTABLE, &extractable, sizeof extractable},
        {CKA_ALWAYS_SENSITIVE, &always, sizeof always},
        {CKA_NEVER_EXTRACTABLE, &never, sizeof never},
        {CKA_VALUE_LEN, &len, sizeof len},
    };
    CK_RV rv = module_->fns->C_GetAttributeValue(session_, key, attrs, std::size(attrs));
    if (rv != CKR_OK) return CheckLocked("C_GetAttributeValue", rv);
    // Only the length is asked: a sensitive value answers CKR_ATTRIBUTE_SENSITIVE.
    CK_ATTRIBUTE value_attr = {CKA_VALUE, nullptr, 0};
    rv = module_->fns->C_GetAttributeValue(session_, key, &value_attr, 1);
    Pkcs11KeyFacts f;
    f.token = token == CK_TRUE;
    f.is_private = priv == CK_TRUE;
    f.sensitive = sensitive == CK_TRUE;
    f.extractable = extractable == CK_TRUE;
    f.always_sensitive = always == CK_TRUE;
    f.never_extractable = never == CK_TRUE;
    f.value_len = len;
    f.value_readable = rv == CKR_OK && value_attr.ulValueLen != CK_UNAVAILABLE_INFORMATION;
    return f;
  }

 private:
  // A failed call: the error, and the session dropped when it is lost.
  absl::Status CheckLocked(std::string_view fn, CK_RV rv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (SessionLost(rv)) DropSessionLocked(/*session_usable=*/false);
    return RvError(fn, rv);
  }

  // Closes the session (logging out if it is the last one of this process on the token) and
  // forgets the key handles. session_usable: false when the token said the session is gone.
  void DropSessionLocked(bool session_usable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ready_ = false;
    key_ = hmac_key_ = CK_INVALID_HANDLE;
    if (session_ == CK_INVALID_HANDLE) return;
    if (logged_in_slot_) {
      ModuleRegistry::Get().Logout(*module_, *logged_in_slot_, session_, session_usable);
      logged_in_slot_.reset();
    }
    module_->fns->C_CloseSession(session_);  // a lost session answers an error: nothing to do
    session_ = CK_INVALID_HANDLE;
  }

  absl::Status ReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ready_) return absl::OkStatus();
    if (!module_) {
      ASSIGN_OR_RETURN(module_, ModuleRegistry::Get().Acquire(opts_.lib));
    }
    if (session_ == CK_INVALID_HANDLE) RETURN_IF_ERROR(OpenSessionLocked());
    ASSIGN_OR_RETURN(key_, KeyLocked(opts_.key_label, /*hmac=*/false));
    if (parsed_.mechanism == CKM_AES_CBC_PAD) {
      ASSIGN_OR_RETURN(hmac_key_, KeyLocked(opts_.hmac_key_label, /*hmac=*/true));
    }
    ready_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<CK_SLOT_ID> FindSlotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    if (parsed_.slot) {
      CK_TOKEN_INFO info;
      CK_RV rv = f->C_GetTokenInfo(*parsed_.slot, &info);
      if (rv == CKR_SLOT_ID_INVALID) {
        ASSIGN_OR_RETURN(std::string found, TokenListLocked());
        return absl::FailedPreconditionError(
            Cat("the PKCS#11 module has no slot ", opts_.slot, "; tokens found: ", found));
      }
      if (rv != CKR_OK) return RvError("C_GetTokenInfo", rv);
      std::string_view label = Trimmed(info.label, sizeof info.label);
      if (!opts_.token_label.empty() && label != opts_.token_label) {
        return absl::FailedPreconditionError(Cat("the token in slot ", opts_.slot,
                                                 " is labelled \"", label, "\", not \"",
                                                 opts_.token_label, "\""));
      }
      return *parsed_.slot;
    }
    ASSIGN_OR_RETURN(auto slots, SlotsWithTokenLocked());
    std::vector<CK_SLOT_ID> matches;
    for (CK_SLOT_ID s : slots) {
      CK_TOKEN_INFO info;
      if (f->C_GetTokenInfo(s, &info) != CKR_OK) continue;
      if (Trimmed(info.label, sizeof info.label) == opts_.token_label) matches.push_back(s);
    }
    if (matches.size() == 1) return matches[0];
    if (matches.empty()) {
      ASSIGN_OR_RETURN(std::string found, TokenListLocked());
      return absl::FailedPreconditionError(
          Cat("no PKCS#11 token is labelled \"", opts_.token_label, "\"; tokens found: ", found));
    }
    std::string ids;
    for (CK_SLOT_ID s : matches) ids += (ids.empty() ? "" : ", ") + std::to_string(s);
    return absl::FailedPreconditionError(Cat("several PKCS#11 tokens are labelled \"",
                                             opts_.token_label, "\" (slots ", ids,
                                             "): set slot to choose one"));
  }

  absl::StatusOr<std::vector<CK_SLOT_ID>> SlotsWithTokenLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<CK_SLOT_ID> slots;
    for (;;) {  // the list can grow between the two calls (a token inserted)
      CK_ULONG n = 0;
      CK_RV rv = module_->fns->C_GetSlotList(CK_TRUE, nullptr, &n);
      if (rv != CKR_OK) return RvError("C_GetSlotList", rv);
      slots.resize(n);
      if (n == 0) return slots;
      rv = module_->fns->C_GetSlotList(CK_TRUE, slots.data(), &n);
      if (rv == CKR_BUFFER_TOO_SMALL) continue;
      if (rv != CKR_OK) return RvError("C_GetSlotList", rv);
      slots.resize(n);
      return slots;
    }
  }

  // `"label" (slot 123), ...` for the initialized tokens, for error messages.
  absl::StatusOr<std::string> TokenListLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ASSIGN_OR_RETURN(auto slots, SlotsWithTokenLocked());
    std::string out;
    for (CK_SLOT_ID s : slots) {
      CK_TOKEN_INFO info;
      if (module_->fns->C_GetTokenInfo(s, &info) != CKR_OK) continue;
      if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
      out += Cat(out.empty() ? "" : ", ", "\"", Trimmed(info.label, sizeof info.label), "\" (slot ",
                 std::to_string(s), ")");
    }
    return out.empty() ? std::string("none") : out;
  }

  absl::Status OpenSessionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(pin_refused_);
    ASSIGN_OR_RETURN(CK_SLOT_ID slot, FindSlotLocked());
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_RV rv = module_->fns->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                           nullptr, &session);
    if (rv != CKR_OK) return RvError("C_OpenSession", rv);
    rv = ModuleRegistry::Get().Login(*module_, slot, session, pin_);
    if (rv != CKR_OK) {
      module_->fns->C_CloseSession(session);
      absl::Status st = LoginError(rv);
      // A refused PIN is not tried again by this wrapper (its PIN cannot change): tokens lock the
      // PIN after a few wrong tries, and Init() is retried with backoff.
      if (st.code() == absl::StatusCode::kPermissionDenied) pin_refused_ = st;
      return st;
    }
    session_ = session;
    logged_in_slot_ = slot;
    return absl::OkStatus();
  }

  static absl::Status LoginError(CK_RV rv) {
    switch (rv) {
      case CKR_PIN_INCORRECT:
      case CKR_PIN_INVALID:
      case CKR_PIN_LEN_RANGE:
        return absl::PermissionDeniedError("the HSM refused the PIN (COFFER_HSM_PIN)");
      case CKR_PIN_LOCKED:
        return absl::PermissionDeniedError(
            "the HSM has locked the user PIN (too many wrong PINs); its security officer must "
            "unlock it");
      case CKR_PIN_EXPIRED:
        return absl::PermissionDeniedError(
            "the user PIN (COFFER_HSM_PIN) has expired: set a new one in the HSM");
      case CKR_USER_PIN_NOT_INITIALIZED:
        return absl::FailedPreconditionError(
            "the token has no user PIN yet: its security officer must set one");
      default:
        return RvError("C_Login", rv);
    }
  }

  // The secret key labelled `label`: found, or made when generate_key is set.
  absl::StatusOr<CK_OBJECT_HANDLE> KeyLocked(const std::string& label, bool hmac)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE find[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, In(label), label.size()},
    };
    CK_RV rv = f->C_FindObjectsInit(session_, find, std::size(find));
    if (rv != CKR_OK) return CheckLocked("C_FindObjectsInit", rv);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rv = f->C_FindObjects(session_, found, std::size(found), &n);
    CK_RV final_rv = f->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return CheckLocked("C_FindObjects", rv);
    if (final_rv != CKR_OK) return CheckLocked("C_FindObjectsFinal", final_rv);
    const char* what = hmac ? "HMAC key" : "key";
    if (n > 1) {
      return absl::FailedPreconditionError(
          Cat("the token holds several secret keys labelled \"", label,
              "\": delete or relabel all but one (the seal cannot tell which ", what, " to use)"));
    }
    if (n == 0) {
      if (!opts_.generate_key) {
        return absl::NotFoundError(Cat("the token holds no secret key labelled \"", label,
                                       "\" (set generate_key to create the ", what, ")"));
      }
      return GenerateLocked(label, hmac);
    }
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE type_attr = {CKA_KEY_TYPE, &type, sizeof type};
    rv = f->C_GetAttributeValue(session_, found[0], &type_attr, 1);
    if (rv != CKR_OK) return CheckLocked("C_GetAttributeValue", rv);
    bool fits = hmac ? (type == CKK_GENERIC_SECRET || type == CKK_SHA256_HMAC) : type == CKK_AES;
    if (!fits) {
      return absl::FailedPreconditionError(
          Cat("the secret key labelled \"", label, "\" has key type ", Hex(type),
              "; the seal needs ", hmac ? "CKK_GENERIC_SECRET or CKK_SHA256_HMAC" : "CKK_AES"));
    }
    return found[0];
  }

  absl::StatusOr<CK_OBJECT_HANDLE> GenerateLocked(const std::string& label, bool hmac)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = hmac ? CKK_GENERIC_SECRET : CKK_AES;
    CK_ULONG len = kAesKeyBytes;
    std::vector<CK_ATTRIBUTE> tmpl = {
        {CKA_CLASS, &cls, sizeof cls},        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_LABEL, In(label), label.size()}, {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, sizeof yes},        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},    {CKA_EXTRACTABLE, &no, sizeof no},
    };
    if (hmac) {
      tmpl.push_back({CKA_SIGN, &yes, sizeof yes});
      tmpl.push_back({CKA_VERIFY, &yes, sizeof yes});
    } else {
      tmpl.push_back({CKA_ENCRYPT, &yes, sizeof yes});
      tmpl.push_back({CKA_DECRYPT, &yes, sizeof yes});
    }
    CK_MECHANISM mech = {hmac ? CKM_GENERIC_SECRET_KEY_GEN : CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = module_->fns->C_GenerateKey(session_, &mech, tmpl.data(), tmpl.size(), &key);
    if (rv != CKR_OK) return CheckLocked("C_GenerateKey", rv);
    log::Info("created the seal's key in the HSM",
              {{"label", label}, {"type", hmac ? "HMAC (generic secret)" : "AES-256"}});
    return key;
  }

  absl::StatusOr<std::string> EncryptGcmLocked(std::string_view plaintext, std::string_view aad)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    unsigned char iv[kGcmIvBytes];
    if (RAND_bytes(iv, sizeof iv) != 1) return absl::InternalError("RAND_bytes failed");
    CK_GCM_PARAMS gcm{};
    gcm.pIv = iv;
    gcm.ulIvLen = sizeof iv;
    gcm.ulIvBits = 8 * sizeof iv;
    gcm.pAAD = In(aad);
    gcm.ulAADLen = aad.size();
    gcm.ulTagBits = 8 * kGcmTagBytes;
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
    CK_RV rv = f->C_EncryptInit(session_, &mech, key_);
    if (rv != CKR_OK) return CheckLocked("C_EncryptInit", rv);
    CK_ULONG len = 0;
    rv = f->C_Encrypt(session_, In(plaintext), plaintext.size(), nullptr, &len);
    if (rv != CKR_OK) return CheckLocked("C_Encrypt", rv);
    // A module's length answer is bounded by what GCM can produce (a wrong one would wrap).
    if (len > plaintext.size() + kGcmTagBytes + 64) {
      DropSessionLocked(/*session_usable=*/true);  // ends the open operation
      return absl::FailedPreconditionError(
          Cat("PKCS#11 C_Encrypt announced ", len, " bytes for ", plaintext.size()));
    }
    std::string out(kGcmIvBytes + len, '\0');
    rv = f->C_Encrypt(session_, In(plaintext), plaintext.size(), Out(out) + kGcmIvBytes, &len);
    if (rv != CKR_OK) return CheckLocked("C_Encrypt", rv);
    // After the call: a module that makes its own IV (FIPS mode) writes it back into the params.
    std::memcpy(out.data(), iv, sizeof iv);
    out.resize(kGcmIvBytes + len);
    return out;
  }

  absl::StatusOr<crypto::SecretBytes> DecryptGcmLocked(std::string_view in, std::string_view aad)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string_view iv = in.substr(0, kGcmIvBytes);
    CK_GCM_PARAMS gcm{};
    gcm.pIv = In(iv);
    gcm.ulIvLen = iv.size();
    gcm.ulIvBits = 8 * iv.size();
    gcm.pAAD = In(aad);
    gcm.ulAADLen = aad.size();
    gcm.ulTagBits = 8 * kGcmTagBytes;
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
    return DecryptLocked(mech, in.substr(kGcmIvBytes));
  }

  // C_DecryptInit with `mech`, then C_Decrypt of `ct` into a SecretBytes.
  absl::StatusOr<crypto::SecretBytes> DecryptLocked(CK_MECHANISM& mech, std::string_view ct)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    CK_RV rv = f->C_DecryptInit(session_, &mech, key_);
    if (rv != CKR_OK) return CheckLocked("C_DecryptInit", rv);
    CK_ULONG len = 0;
    rv = f->C_Decrypt(session_, In(ct), ct.size(), nullptr, &len);
    if (NotOurs(rv)) return NotOursError();
    if (rv != CKR_OK) return CheckLocked("C_Decrypt", rv);
    // At least one byte, so the second call is not taken for another length query.
    crypto::SecretBytes buf(std::max<CK_ULONG>(len, 1));
    len = buf.size();
    rv = f->C_Decrypt(session_, In(ct), ct.size(), buf.data(), &len);
    if (NotOurs(rv)) return NotOursError();
    // SoftHSM2 2.6 answers CKR_GENERAL_ERROR to a GCM tag (or CBC padding) that does not check
    // out, from a C_Decrypt whose init and length query both succeeded; other modules may do the
    // same. So it counts as altered data here, with the code in the message for the rare case
    // where the device did fail.
    // The session is dropped too, so a device that did fail gets a fresh session on the next
    // try (an auto unseal retries).
    if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
      DropSessionLocked(/*session_usable=*/true);
      return NotOursError(Cat("C_Decrypt answered ", RvString(rv), "; or the device failed"));
    }
    if (rv != CKR_OK) return CheckLocked("C_Decrypt", rv);
    if (len == buf.size()) return buf;
    return crypto::SecretBytes(buf.view().substr(0, len));  // buf is wiped as it goes
  }

  // be64(len(aad)) || aad || iv || ct: what the HMAC covers in CBC mode.
  static std::string MacInput(std::string_view aad, std::string_view iv, std::string_view ct) {
    std::string data(8, '\0');
    uint64_t n = aad.size();
    for (int i = 7; i >= 0; --i, n >>= 8) data[i] = static_cast<char>(n & 0xff);
    data.append(aad).append(iv).append(ct);
    return data;
  }

  absl::StatusOr<std::string> EncryptCbcLocked(std::string_view plaintext, std::string_view aad)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    unsigned char iv[kCbcIvBytes];
    if (RAND_bytes(iv, sizeof iv) != 1) return absl::InternalError("RAND_bytes failed");
    CK_MECHANISM mech = {CKM_AES_CBC_PAD, iv, sizeof iv};
    CK_RV rv = f->C_EncryptInit(session_, &mech, key_);
    if (rv != CKR_OK) return CheckLocked("C_EncryptInit", rv);
    CK_ULONG len = 0;
    rv = f->C_Encrypt(session_, In(plaintext), plaintext.size(), nullptr, &len);
    if (rv != CKR_OK) return CheckLocked("C_Encrypt", rv);
    std::string out(kCbcIvBytes + len, '\0');
    std::memcpy(out.data(), iv, sizeof iv);
    rv = f->C_Encrypt(session_, In(plaintext), plaintext.size(), Out(out) + kCbcIvBytes, &len);
    if (rv != CKR_OK) return CheckLocked("C_Encrypt", rv);
    out.resize(kCbcIvBytes + len);

    std::string data = MacInput(aad, std::string_view(out).substr(0, kCbcIvBytes),
                                std::string_view(out).substr(kCbcIvBytes));
    CK_MECHANISM hmac = {parsed_.hmac_mechanism, nullptr, 0};
    rv = f->C_SignInit(session_, &hmac, hmac_key_);
    if (rv != CKR_OK) return CheckLocked("C_SignInit", rv);
    std::string mac(kHmacBytes, '\0');
    CK_ULONG mac_len = mac.size();
    rv = f->C_Sign(session_, In(data), data.size(), Out(mac), &mac_len);
    if (rv != CKR_OK) return CheckLocked("C_Sign", rv);
    if (mac_len != kHmacBytes) {
      return absl::FailedPreconditionError(
          Cat("the HSM's HMAC is ", mac_len, " bytes long, not ", kHmacBytes));
    }
    out.append(mac);
    return out;
  }

  absl::StatusOr<crypto::SecretBytes> DecryptCbcLocked(std::string_view in, std::string_view aad)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    CK_FUNCTION_LIST_PTR f = module_->fns;
    std::string_view iv = in.substr(0, kCbcIvBytes);
    std::string_view ct = in.substr(kCbcIvBytes, in.size() - kCbcIvBytes - kHmacBytes);
    std::string_view mac = in.substr(in.size() - kHmacBytes);
    // The MAC first: nothing altered reaches the decryption (no padding oracle).
    std::string data = MacInput(aad, iv, ct);
    CK_MECHANISM hmac = {parsed_.hmac_mechanism, nullptr, 0};
    CK_RV rv = f->C_VerifyInit(session_, &hmac, hmac_key_);
    if (rv != CKR_OK) return CheckLocked("C_VerifyInit", rv);
    rv = f->C_Verify(session_, In(data), data.size(), In(mac), mac.size());
    if (NotOurs(rv)) return NotOursError();
    if (rv != CKR_OK) return CheckLocked("C_Verify", rv);
    CK_MECHANISM mech = {CKM_AES_CBC_PAD, In(iv), iv.size()};
    return DecryptLocked(mech, ct);
  }

  Mutex mu_;
  Pkcs11Options opts_;  // opts_.pin is moved into pin_
  const Parsed parsed_;
  crypto::SecretBytes pin_ ABSL_GUARDED_BY(mu_);
  absl::Status pin_refused_ ABSL_GUARDED_BY(mu_);  // OK until the token refuses pin_
  std::optional<ModuleRegistry::Handle> module_ ABSL_GUARDED_BY(mu_);
  CK_SESSION_HANDLE session_ ABSL_GUARDED_BY(mu_) = CK_INVALID_HANDLE;
  std::optional<CK_SLOT_ID> logged_in_slot_ ABSL_GUARDED_BY(mu_);
  CK_OBJECT_HANDLE key_ ABSL_GUARDED_BY(mu_) = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE hmac_key_ ABSL_GUARDED_BY(mu_) = CK_INVALID_HANDLE;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<CK_MECHANISM_TYPE> ParseMechanism(std::string_view s, std::string_view option) {
  if (s == "CKM_AES_GCM") return CKM_AES_GCM;
  if (s == "CKM_AES_CBC_PAD") return CKM_AES_CBC_PAD;
  if (s == "CKM_SHA256_HMAC") return CKM_SHA256_HMAC;
  if (auto n = ParseNumber(s)) return *n;
  return absl::InvalidArgumentError(Cat(option, " \"", s, "\" is not a mechanism name or number"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<seal::Wrapper>> NewPkcs11Wrapper(Pkcs11Options opts) {
  if (opts.lib.empty())
    return absl::InvalidArgumentError("lib is required: the path of the HSM's PKCS#11 module");
  if (opts.key_label.empty())
    return absl::InvalidArgumentError("key_label is required: the CKA_LABEL of the seal's key");
  if (opts.pin.empty())
    return absl::InvalidArgumentError("the HSM's user PIN is empty: set COFFER_HSM_PIN");
  Parsed p;
  if (opts.slot.empty() && opts.token_label.empty())
    return absl::InvalidArgumentError("set slot or token_label to choose the HSM's token");
  if (!opts.slot.empty()) {
    auto n = ParseNumber(opts.slot);
    if (!n)
      return absl::InvalidArgumentError(
          Cat("slot \"", opts.slot, "\" is not a slot id (decimal, or hexadecimal with 0x)"));
    p.slot = *n;
  }
  if (opts.token_label.size() > kTokenLabelBytes)
    return absl::InvalidArgumentError(Cat("token_label \"", opts.token_label, "\" is longer than ",
                                          kTokenLabelBytes, " bytes: no token can carry it"));
  ASSIGN_OR_RETURN(p.mechanism, ParseMechanism(opts.mechanism, "mechanism"));
  if (p.mechanism != CKM_AES_GCM && p.mechanism != CKM_AES_CBC_PAD) {
    return absl::InvalidArgumentError(
        Cat("mechanism \"", opts.mechanism,
            "\" is not supported: use CKM_AES_GCM (0x1087) or CKM_AES_CBC_PAD (0x1085)"));
  }
  if (p.mechanism == CKM_AES_CBC_PAD) {
    if (opts.hmac_key_label.empty())
      return absl::InvalidArgumentError(
          "hmac_key_label is required with CKM_AES_CBC_PAD: the HMAC key that protects the "
          "ciphertext's integrity");
    ASSIGN_OR_RETURN(p.hmac_mechanism, ParseMechanism(opts.hmac_mechanism, "hmac_mechanism"));
    if (p.hmac_mechanism != CKM_SHA256_HMAC)
      return absl::InvalidArgumentError(Cat("hmac_mechanism \"", opts.hmac_mechanism,
                                            "\" is not supported: use CKM_SHA256_HMAC (0x251)"));
  }
  // With CKM_AES_GCM, hmac_key_label is ignored, not refused: Vault's documented pkcs11 stanza
  // sets it whatever the mechanism, and such configs must keep working.
  return std::unique_ptr<seal::Wrapper>(new Pkcs11Wrapper(std::move(opts), p));
}

absl::StatusOr<Pkcs11KeyFacts> InspectPkcs11KeyForTest(seal::Wrapper& wrapper, bool hmac) {
  auto* w = dynamic_cast<Pkcs11Wrapper*>(&wrapper);
  if (w == nullptr) return absl::InvalidArgumentError("not a PKCS#11 wrapper");
  return w->Inspect(hmac);
}

}  // namespace coffer::autoseal
