// HA request forwarding's envelope: what goes in comes out, only under the cluster's key, bound
// to its request, once.
#include "http/forward.h"

#include <gtest/gtest.h>

#include "barrier/barrier.h"

namespace coffer::http {
namespace {

const crypto::SecretBytes& Key() {
  static const auto* k = new crypto::SecretBytes(
      barrier::DeriveFromRootKey(crypto::SecretBytes(std::string(32, 'r')), "label"));
  return *k;
}

ForwardedRequest Sample() {
  ForwardedRequest r;
  r.sender = "0a1b";
  r.seq = 42;
  r.time = 1'764'567'000;
  r.to = "https://10.0.0.1:8200";
  r.remote_address = "10.1.2.3";
  r.method = "POST";
  r.target = "/v1/pki/issue/web?x=1";
  r.vault_token = "hvs.secret-token";
  r.authorization = "Bearer x";
  r.wrap_ttl = "5m";
  r.unsupported_headers = {"X-Vault-Inconsistent"};
  r.body = std::string("{\"common_name\":\"a\"}") + '\0' + '\xff';  // any bytes
  return r;
}

TEST(Forward, RequestRoundTripsEveryField) {
  auto sealed = SealRequest(Key(), Sample());
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("secret-token"), std::string::npos);  // not in the clear
  auto r = OpenRequest(Key(), *sealed);
  ASSERT_TRUE(r.ok()) << r.status();
  const ForwardedRequest want = Sample();
  EXPECT_EQ(r->sender, want.sender);
  EXPECT_EQ(r->seq, want.seq);
  EXPECT_EQ(r->time, want.time);
  EXPECT_EQ(r->to, want.to);
  EXPECT_EQ(r->remote_address, want.remote_address);
  EXPECT_EQ(r->method, want.method);
  EXPECT_EQ(r->target, want.target);
  EXPECT_EQ(r->vault_token, want.vault_token);
  EXPECT_EQ(r->authorization, want.authorization);
  EXPECT_EQ(r->wrap_ttl, want.wrap_ttl);
  EXPECT_EQ(r->unsupported_headers, want.unsupported_headers);
  EXPECT_EQ(r->body, want.body);
  RawRequest raw = r->Raw();
  EXPECT_EQ(raw.remote_address, "10.1.2.3");
  EXPECT_EQ(raw.vault_token, "hvs.secret-token");
  ASSERT_EQ(raw.unsupported_headers.size(), 1u);
}

TEST(Forward, BytesThatAreNotUtf8Travel) {
  ForwardedRequest r = Sample();
  r.vault_token = "\xff\xfe";
  r.target = std::string("/v1/a\x80") + '\0';
  auto sealed = SealRequest(Key(), r);
  ASSERT_TRUE(sealed.ok());
  auto back = OpenRequest(Key(), *sealed);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->vault_token, r.vault_token);
  EXPECT_EQ(back->target, r.target);
}

TEST(Forward, OnlyTheClusterKeyOpensIt) {
  auto sealed = SealRequest(Key(), Sample());
  ASSERT_TRUE(sealed.ok());
  crypto::SecretBytes other =
      barrier::DeriveFromRootKey(crypto::SecretBytes(std::string(32, 's')), "label");
  EXPECT_EQ(OpenRequest(other, *sealed).status().code(), absl::StatusCode::kPermissionDenied);
  std::string tampered = *sealed;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_EQ(OpenRequest(Key(), tampered).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(OpenRequest(Key(), "").ok());
  // A response is not a request, nor the other way round.
  RawResponse resp;
  auto sealed_resp = SealResponse(Key(), Sample(), resp);
  ASSERT_TRUE(sealed_resp.ok());
  EXPECT_EQ(OpenRequest(Key(), *sealed_resp).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(OpenResponse(Key(), Sample(), *sealed).ok());
}

TEST(Forward, ResponseIsBoundToItsRequest) {
  RawResponse resp;
  resp.status = 307;
  resp.content_type = "application/pkix-cert";
  resp.location = "https://a:8200/v1/x";
  resp.body = "\x30\x82";
  auto sealed = SealResponse(Key(), Sample(), resp);
  ASSERT_TRUE(sealed.ok());
  auto out = OpenResponse(Key(), Sample(), *sealed);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, 307);
  EXPECT_EQ(out->content_type, "application/pkix-cert");
  EXPECT_EQ(out->location, "https://a:8200/v1/x");
  EXPECT_EQ(out->body, "\x30\x82");
  ForwardedRequest other = Sample();
  other.seq = 43;
  EXPECT_EQ(OpenResponse(Key(), other, *sealed).status().code(),
            absl::StatusCode::kPermissionDenied);
  // A header with a line break would split the standby's response.
  resp.location = "x\r\nSet-Cookie: a";
  sealed = SealResponse(Key(), Sample(), resp);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(OpenResponse(Key(), Sample(), *sealed).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReplayGuardTest, EachSequenceNumberOnce) {
  ReplayGuard g;
  ForwardedRequest r = Sample();
  const int64_t now = r.time;
  EXPECT_TRUE(g.Accept(r, now).ok());
  EXPECT_EQ(g.Accept(r, now).code(), absl::StatusCode::kAlreadyExists);  // replayed
  // Out of order within the window: each accepted once.
  r.seq = 50;
  EXPECT_TRUE(g.Accept(r, now).ok());
  r.seq = 45;
  EXPECT_TRUE(g.Accept(r, now).ok());
  EXPECT_FALSE(g.Accept(r, now).ok());
  r.seq = 42;
  EXPECT_FALSE(g.Accept(r, now).ok());
  // Far ahead: the window moves; numbers it left behind are refused, numbers it passed over
  // are new.
  r.seq = 50 + ReplayGuard::kWindow + 10;
  EXPECT_TRUE(g.Accept(r, now).ok());
  r.seq = 50;
  EXPECT_FALSE(g.Accept(r, now).ok());
  r.seq = 50 + ReplayGuard::kWindow + 5;
  EXPECT_TRUE(g.Accept(r, now).ok());
  EXPECT_FALSE(g.Accept(r, now).ok());
  // Another sender has its own numbers.
  r.sender = "other";
  r.seq = 42;
  EXPECT_TRUE(g.Accept(r, now).ok());
}

TEST(ReplayGuardTest, RefusesStaleAndFutureRequests) {
  ReplayGuard g;
  ForwardedRequest r = Sample();
  auto st = g.Accept(r, r.time + kForwardMaxAgeSeconds + 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("clocks"), std::string::npos) << st;
  EXPECT_FALSE(g.Accept(r, r.time - kForwardMaxAgeSeconds - 1).ok());
  EXPECT_TRUE(g.Accept(r, r.time + kForwardMaxAgeSeconds).ok());
}

}  // namespace
}  // namespace coffer::http
