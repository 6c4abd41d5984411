#include "autoseal/transit_wrapper.h"

#include <openssl/crypto.h>

#include <condition_variable>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "boost/json.hpp"
#include "util/encoding.h"
#include "util/log.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::autoseal {
namespace {

namespace json = boost::json;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first message of a Vault error body ({"errors": [...]}), or the body's start.
std::string ErrorText(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (!ec && v.is_object())
    if (const auto* e = v.as_object().if_contains("errors"); e && e->is_array()) {
      std::string out;
      for (const auto& m : e->as_array())
        if (m.is_string()) out += (out.empty() ? "" : "; ") + std::string(m.as_string());
      if (!out.empty()) return out;
    }
  return body.substr(0, 200);
}

class TransitWrapper final : public seal::Wrapper {
 public:
  explicit TransitWrapper(TransitOptions o) : o_(std::move(o)) {
    while (!o_.mount_path.empty() && o_.mount_path.back() == '/') o_.mount_path.pop_back();
    while (!o_.mount_path.empty() && o_.mount_path.front() == '/') o_.mount_path.erase(0, 1);
  }
  ~TransitWrapper() override { Finalize(); }

  std::string_view Type() const override { return "transit"; }

  absl::Status Init() override {
    ASSIGN_OR_RETURN(auto token, Token());
    OPENSSL_cleanse(token.data(), token.size());
    MutexLock l(&mu_);
    if (!o_.disable_renewal && !renewer_.joinable() && !stopping_)
      renewer_ = std::thread([this] { RenewLoop(); });
    return absl::OkStatus();
  }

  absl::StatusOr<Sealed> Encrypt(std::string_view plaintext, std::string_view aad) override {
    std::string b64 = Base64Encode(plaintext);
    std::string body =
        json::serialize(json::object{{"plaintext", b64}, {"associated_data", Base64Encode(aad)}});
    OPENSSL_cleanse(b64.data(), b64.size());
    auto res = Post("encrypt", body);
    OPENSSL_cleanse(body.data(), body.size());
    RETURN_IF_ERROR(res.status());
    auto ct = Data(*res, "ciphertext");
    if (!ct) return absl::FailedPreconditionError("the transit server's answer has no ciphertext");
    Sealed out;
    out.ciphertext = *ct;
    // "vault:v3:..." -> "<key_name>:v3"
    std::string version = "v?";
    if (size_t a = ct->find(':'), b = ct->find(':', a + 1);
        a != std::string::npos && b != std::string::npos)
      version = ct->substr(a + 1, b - a - 1);
    out.key_id = Cat(o_.key_name, ":", version);
    return out;
  }

  absl::StatusOr<crypto::SecretBytes> Decrypt(std::string_view ciphertext,
                                              std::string_view aad) override {
    std::string body = json::serialize(json::object{{"ciphertext", std::string(ciphertext)},
                                                    {"associated_data", Base64Encode(aad)}});
    auto res = Post("decrypt", body);
    RETURN_IF_ERROR(res.status());
    auto pt = Data(*res, "plaintext");
    if (!pt) return absl::FailedPreconditionError("the transit server's answer has no plaintext");
    auto raw = Base64Decode(*pt);
    OPENSSL_cleanse(pt->data(), pt->size());
    if (!raw) return absl::FailedPreconditionError("the transit server's plaintext is not base64");
    crypto::SecretBytes out(*raw);
    OPENSSL_cleanse(raw->data(), raw->size());
    return out;
  }

  void Finalize() override {
    std::thread t;
    {
      MutexLock l(&mu_);
      stopping_ = true;
      t = std::move(renewer_);
    }
    cv_.notify_all();
    if (t.joinable()) t.join();
  }

 private:
  absl::StatusOr<std::string> Token() {
    if (o_.token_file.empty()) {
      if (o_.token.empty())
        return absl::FailedPreconditionError(
            "seal \"transit\" has no token: set token or token_file in the block, or "
            "VAULT_TOKEN in the server's environment");
      return o_.token;
    }
    std::ifstream f(o_.token_file);
    if (!f)
      return absl::FailedPreconditionError(
          Cat("seal \"transit\": cannot read token_file ", o_.token_file));
    std::stringstream ss;
    ss << f.rdbuf();
    std::string t = Trim(ss.str());
    if (t.empty())
      return absl::FailedPreconditionError(
          Cat("seal \"transit\": token_file ", o_.token_file, " is empty"));
    return t;
  }

  // One call with the token; the response's JSON object or the error an operator can act on.
  absl::StatusOr<json::object> Call(std::string_view method, const std::string& path,
                                    std::string_view body) {
    ASSIGN_OR_RETURN(std::string token, Token());
    http::ClientOptions c = o_.client;
    c.token = std::move(token);
    auto res = http::Call(c, method, path, body);
    OPENSSL_cleanse(c.token.data(), c.token.size());
    if (!res.ok())
      return absl::UnavailableError(
          Cat("cannot reach the transit seal's server: ", Msg(res.status())));
    const std::string where = Cat(o_.client.address, path);
    if (res->status == 503 || res->status == 429 || res->status >= 500)
      return absl::UnavailableError(Cat(where, " answered ", res->status, ": ",
                                        ErrorText(res->body),
                                        res->status == 503 ? " (is that server sealed?)" : ""));
    if (res->status == 403)
      return absl::PermissionDeniedError(
          Cat(where, " refused the seal's token (403): ", ErrorText(res->body),
              path.find("/auth/token/") != std::string::npos
                  ? "; renewing it needs the default policy (auth/token/lookup-self, renew-self)"
                  : "; the token needs update on <mount>/encrypt/<key> and decrypt/<key>"));
    if (res->status == 404 ||
        (res->status == 400 && ErrorText(res->body).find("not found") != std::string::npos))
      return absl::NotFoundError(Cat(where, ": transit key \"", o_.key_name,
                                     "\" not found on mount \"", o_.mount_path,
                                     "\": ", ErrorText(res->body)));
    if (res->status == 400)
      return absl::InvalidArgumentError(Cat(where, " refused: ", ErrorText(res->body)));
    if (res->status < 200 || res->status > 299)
      return absl::FailedPreconditionError(
          Cat(where, " answered ", res->status, ": ", ErrorText(res->body)));
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    OPENSSL_cleanse(res->body.data(), res->body.size());
    if (ec || !v.is_object())
      return absl::FailedPreconditionError(Cat(where, " answered something other than JSON"));
    return std::move(v.as_object());
  }

  absl::StatusOr<json::object> Post(std::string_view op, const std::string& body) {
    return Call("POST", Cat("/v1/", o_.mount_path, "/", op, "/", o_.key_name), body);
  }

  static std::optional<std::string> Data(const json::object& o, std::string_view key) {
    const auto* d = o.if_contains("data");
    if (!d || !d->is_object()) return std::nullopt;
    const auto* f = d->as_object().if_contains(key);
    if (!f || !f->is_string()) return std::nullopt;
    return std::string(f->as_string());
  }

  // Wait for `d` or Finalize; false when stopping.
  bool Sleep(std::chrono::seconds d) {
    MutexLock l(&mu_);
    // The predicate runs with mu_ held (wait_for re-locks before calling it); the analysis
    // cannot see that through the lambda.
    return !cv_.wait_for(mu_.native(), d,
                         [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_; });
  }

  void RenewLoop() {
    for (;;) {
      auto look = Call("GET", "/v1/auth/token/lookup-self", "");
      std::chrono::seconds next{30};
      if (look.ok()) {
        int64_t ttl = 0;
        bool renewable = false;
        if (auto* d = look->if_contains("data"); d && d->is_object()) {
          if (auto* t = d->as_object().if_contains("ttl"); t && t->is_int64()) ttl = t->as_int64();
          if (auto* r = d->as_object().if_contains("renewable"); r && r->is_bool())
            renewable = r->as_bool();
        }
        if (ttl == 0) return;  // a token that never expires needs no renewal
        if (!renewable) {
          log::Warn("the transit seal's token is not renewable; it expires",
                    {{"ttl_seconds", std::to_string(ttl)}});
          return;
        }
        if (!Sleep(std::chrono::seconds(std::max<int64_t>(ttl / 2, 1)))) return;
        auto renewed = Call("POST", "/v1/auth/token/renew-self", "{}");
        if (renewed.ok()) {
          log::Debug("transit seal token renewed");
          continue;
        }
        log::Warn("the transit seal's token could not be renewed; retrying",
                  {{"error", Msg(renewed.status())}});
        next = std::chrono::seconds(5);
      } else {
        log::Warn("the transit seal's token could not be looked up; retrying",
                  {{"error", Msg(look.status())}});
        next = std::chrono::seconds(5);
      }
      if (!Sleep(next)) return;
    }
  }

  TransitOptions o_;
  Mutex mu_;
  std::condition_variable_any cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread renewer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<seal::Wrapper> NewTransitWrapper(TransitOptions opts) {
  return std::make_unique<TransitWrapper>(std::move(opts));
}

}  // namespace coffer::autoseal
