// The HTTP server with a real core behind it, on loopback: what happens to the other requests
// while an expensive one runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/client.h"
#include "http/server.h"
#include "registry/test_harness.h"

namespace coffer {
namespace {

using ::testing::HasSubstr;

class HttpServerTest : public testing::CoreHarness {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
  }
  // One event loop and one expensive-request thread: a request that blocked its loop would
  // block every other connection.
  void StartServer() {
    http::ListenerOptions l;
    l.address = "127.0.0.1:0";
    l.tls_disable = true;
    http::ServerOptions so;
    so.listeners = {l};
    so.io_threads = 1;
    so.expensive_threads = 1;
    auto s = http::HttpServer::Start(core_.get(), so);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    opts_.address = "http://" + server_->Addresses()[0];
    opts_.timeout = std::chrono::seconds(120);
  }
  http::ClientResponse Call(std::string_view method, std::string_view path,
                            std::string_view body = "", bool with_token = true) {
    http::ClientOptions o = opts_;
    if (with_token) o.token = root_;
    auto r = http::Call(o, method, path, body);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : http::ClientResponse{};
  }

  std::unique_ptr<http::HttpServer> server_;
  http::ClientOptions opts_;
};

TEST_F(HttpServerTest, AKeyGenerationStallsNeitherItsEventLoopNorTheSeal) {
  StartServer();
  ASSERT_EQ(Call("POST", "/v1/sys/mounts/pki", R"({"type":"pki"})").status, 204);
  std::atomic<bool> done{false};
  http::ClientResponse keygen;
  std::thread gen([&] {
    keygen = Call("POST", "/v1/pki/root/generate/internal",
                  R"({"common_name":"slow","key_type":"rsa","key_bits":8192})");
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The only event loop answers while the RSA-8192 generation (seconds) runs elsewhere.
  EXPECT_EQ(Call("GET", "/v1/sys/health", "", false).status, 200);
  EXPECT_FALSE(done.load()) << "the answer waited for the key generation";
  // Sealing stops the generation instead of waiting for it.
  EXPECT_EQ(Call("PUT", "/v1/sys/seal").status, 204);
  gen.join();
  EXPECT_EQ(keygen.status, 503) << keygen.body;
  EXPECT_THAT(keygen.body, HasSubstr("the server is sealing"));
  EXPECT_TRUE(core_->Sealed());
}

TEST_F(HttpServerTest, ALargeBodyWithoutAValidTokenIsRefusedBeforeItIsRead) {
  StartServer();
  // 2 MiB of JSON the server would have to parse: refused from the headers alone, and the
  // client (still sending) reads the answer rather than a reset.
  std::string body = R"({"v":[0)";
  while (body.size() < (2u << 20)) body += ",0";
  body += "]}";
  auto r = Call("PUT", "/v1/secret/x", body, false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, HasSubstr("permission denied"));
  // With a token the same body reaches the JSON limits: 400 naming Vault's key.
  r = Call("PUT", "/v1/cubbyhole/x", body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("max_json_array_element_count"));
  // A number that overflows to infinity is refused (it once made the secret unreadable).
  r = Call("PUT", "/v1/cubbyhole/x", R"({"a":1e999999})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("out of range"));
  EXPECT_EQ(Call("GET", "/v1/cubbyhole/x").status, 404);
}

}  // namespace
}  // namespace coffer
