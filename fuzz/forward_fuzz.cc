// Fuzzes HA request forwarding's envelope (http/forward.h): what an active server opens from a
// standby and a standby from the active server. Bytes nobody sealed never open (the fuzzer's
// bytes as a sealed message); fields of any bytes seal and open back to the same (the JSON
// encoding of arbitrary strings, base64 of arbitrary bodies), a response header with a line
// break is refused, and the replay guard accepts each (sender, seq) once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "http/forward.h"

namespace {

void Check(bool ok) {
  if (!ok) abort();
}

const coffer::crypto::SecretBytes& Key() {
  static const auto* k = new coffer::crypto::SecretBytes(std::string(32, '\x17'));
  return *k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using coffer::http::ForwardedRequest;
  ForwardedRequest to;
  to.sender = "s";
  to.seq = 1;
  // Unsealed bytes: refused as not sealed with the key.
  auto forged = coffer::http::OpenRequest(Key(), in);
  Check(!forged.ok() && forged.status().code() == absl::StatusCode::kPermissionDenied);
  Check(!coffer::http::OpenResponse(Key(), to, in).ok());

  // A request whose fields are the fuzzer's bytes, sealed and opened again.
  ForwardedRequest made;
  made.sender = std::string(in.substr(0, 8));
  made.seq = size;
  const int64_t now = 1'764'567'000;
  made.time = now - static_cast<int64_t>(size % 150);  // inside the guard's minute, or not
  made.method = "POST";
  made.target = "/v1/" + std::string(in);
  made.vault_token = std::string(in);
  made.body = std::string(in);
  made.unsupported_headers = {std::string(in)};
  auto sealed = coffer::http::SealRequest(Key(), made);
  Check(sealed.ok());
  auto r = coffer::http::OpenRequest(Key(), *sealed);
  Check(made.sender.empty() ? !r.ok() : r.ok());
  if (r.ok()) {
    Check(!r->sender.empty() && r->target.starts_with("/"));
    auto again = coffer::http::SealRequest(Key(), *r);
    Check(again.ok());
    auto r2 = coffer::http::OpenRequest(Key(), *again);
    Check(r2.ok() && r2->sender == r->sender && r2->seq == r->seq && r2->body == r->body &&
          r2->target == r->target && r2->vault_token == r->vault_token &&
          r2->unsupported_headers == r->unsupported_headers);
    coffer::http::ReplayGuard guard;
    Check(r->vault_token == made.vault_token && r->target == made.target && r->body == made.body &&
          r->sender == made.sender);
    Check(guard.Accept(*r, now).ok() == (now - r->time <= coffer::http::kForwardMaxAgeSeconds));
    Check(!guard.Accept(*r, now).ok());
  }
  coffer::http::RawResponse answer;
  answer.status = 100 + static_cast<int>(size % 500);
  answer.content_type = std::string(in);
  answer.body = std::string(in);
  auto resp_sealed = coffer::http::SealResponse(Key(), to, answer);
  Check(resp_sealed.ok());
  auto resp = coffer::http::OpenResponse(Key(), to, *resp_sealed);
  if (resp.ok()) {
    Check(resp->status == answer.status && resp->body == answer.body);
    Check(resp->content_type.find_first_of("\r\n") == std::string::npos);
  } else {
    Check(answer.content_type.find_first_of("\r\n") != std::string::npos);
  }
  return 0;
}
