// The KMS plugin's gRPC service and server, against a fake Transit, over a real unix socket with
// a real gRPC client; the ciphertext and socket-path parsers; the token file source.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kms/kms_v2.grpc.pb.h"
#include "kms/server.h"
#include "kms/service.h"
#include "kms/token_source.h"
#include "kms/transit.h"
#include "util/mutex.h"
#include "util/status.h"

namespace coffer::kms {
namespace {

// Transit in memory: "ciphertext" is "vault:v<N>:" + reversed plaintext; versions rotate on
// demand; an error can be injected for every call.
class FakeTransit final : public Transit {
 public:
  absl::StatusOr<EncryptResult> Encrypt(std::string_view plaintext,
                                        std::chrono::milliseconds) override {
    if (int ms = delay_ms.load(); ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    MutexLock l(&mu_);
    if (!fail_.ok()) return Failure();
    ++encrypts_;
    return EncryptResult{
        Cat("vault:v", version_, ":", std::string(plaintext.rbegin(), plaintext.rend())), version_};
  }
  absl::StatusOr<std::string> Decrypt(std::string_view ciphertext,
                                      std::chrono::milliseconds) override {
    MutexLock l(&mu_);
    if (!fail_.ok()) return Failure();
    ASSIGN_OR_RETURN(int64_t v, CiphertextVersion(ciphertext));
    if (v > version_) return absl::InvalidArgumentError("invalid ciphertext: no such key version");
    std::string_view body = ciphertext.substr(ciphertext.find(':', 7) + 1);
    return std::string(body.rbegin(), body.rend());
  }
  absl::StatusOr<int64_t> LatestVersion(std::chrono::milliseconds) override {
    MutexLock l(&mu_);
    if (!fail_.ok()) return Failure();
    ++reads_;
    return version_;
  }
  void Rotate() {
    MutexLock l(&mu_);
    ++version_;
  }
  void Fail(const absl::Status& st) {
    MutexLock l(&mu_);
    fail_ = st;
  }
  int reads() {
    MutexLock l(&mu_);
    return reads_;
  }
  std::atomic<int> delay_ms{0};  // Encrypt takes this long (a slow Coffer)

 private:
  // A new Status each time: a copy of fail_ would share its heap rep, whose reference count
  // changes in (uninstrumented) libabsl_status, which ThreadSanitizer cannot see.
  absl::Status Failure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::Status(fail_.code(), std::string(fail_.message()));
  }

  Mutex mu_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = 1;
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
  int encrypts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
};

class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/coffer-kms-test-XXXXXX";
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class KmsPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    ServiceOptions so;
    so.key = "kube";
    so.refresh = absl::Seconds(5);
    so.max_plaintext = 1024;
    service_ = std::make_unique<KmsService>(&transit_, so, &clock_);
    path_ = dir_.path() + "/run/kms.sock";
    ServerOptions o;
    o.socket_path = path_;
    auto s = PluginServer::Start(service_.get(), o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    stub_ = v2::KeyManagementService::NewStub(
        grpc::CreateChannel("unix://" + path_, grpc::InsecureChannelCredentials()));
  }

  v2::StatusResponse Status() {
    grpc::ClientContext ctx;
    v2::StatusResponse resp;
    grpc::Status st = stub_->Status(&ctx, v2::StatusRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
  grpc::Status Encrypt(std::string_view plaintext, v2::EncryptResponse* resp) {
    grpc::ClientContext ctx;
    v2::EncryptRequest req;
    req.set_plaintext(std::string(plaintext));
    req.set_uid("uid-1");
    return stub_->Encrypt(&ctx, req, resp);
  }
  grpc::Status Decrypt(const v2::EncryptResponse& e, v2::DecryptResponse* resp) {
    grpc::ClientContext ctx;
    v2::DecryptRequest req;
    req.set_ciphertext(e.ciphertext());
    req.set_key_id(e.key_id());
    req.set_uid("uid-2");
    return stub_->Decrypt(&ctx, req, resp);
  }

  TempDir dir_;
  FakeClock clock_;
  FakeTransit transit_;
  std::unique_ptr<KmsService> service_;
  std::string path_;
  std::unique_ptr<PluginServer> server_;
  std::unique_ptr<v2::KeyManagementService::Stub> stub_;
};

TEST_F(KmsPlugin, StatusReportsVersionHealthAndKeyId) {
  v2::StatusResponse s = Status();
  EXPECT_EQ(s.version(), "v2");
  EXPECT_EQ(s.healthz(), "ok");
  EXPECT_EQ(s.key_id(), "transit/kube:v1");
}

TEST_F(KmsPlugin, SocketIsOwnerOnlyAndItsNewFolderToo) {
  struct stat st {};
  ASSERT_EQ(lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat((dir_.path() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  server_->Shutdown();
  EXPECT_NE(lstat(path_.c_str(), &st), 0) << "the socket is removed on shutdown";
}

TEST_F(KmsPlugin, EncryptDecryptRoundTrip) {
  const std::string dek = std::string("\x00\x01", 2) + "\xfe\xff secret dek bytes";
  v2::EncryptResponse e;
  ASSERT_TRUE(Encrypt(dek, &e).ok());
  EXPECT_EQ(e.key_id(), "transit/kube:v1");
  EXPECT_EQ(e.ciphertext().substr(0, 9), "vault:v1:");
  v2::DecryptResponse d;
  grpc::Status st = Decrypt(e, &d);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(d.plaintext(), dek);
}

TEST_F(KmsPlugin, RotationChangesKeyIdAfterRefreshAndOldCiphertextDecrypts) {
  EXPECT_EQ(Status().key_id(), "transit/kube:v1");
  v2::EncryptResponse old;
  ASSERT_TRUE(Encrypt("old dek", &old).ok());
  transit_.Rotate();
  const int reads = transit_.reads();
  EXPECT_EQ(Status().key_id(), "transit/kube:v1") << "cached within the refresh interval";
  EXPECT_EQ(transit_.reads(), reads);
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(Status().key_id(), "transit/kube:v2");
  v2::EncryptResponse e;
  ASSERT_TRUE(Encrypt("new dek", &e).ok());
  EXPECT_EQ(e.key_id(), "transit/kube:v2");
  v2::DecryptResponse d;
  ASSERT_TRUE(Decrypt(old, &d).ok());
  EXPECT_EQ(d.plaintext(), "old dek");
}

TEST_F(KmsPlugin, EncryptWithNewVersionUpdatesStatusAtOnce) {
  EXPECT_EQ(Status().key_id(), "transit/kube:v1");
  transit_.Rotate();
  v2::EncryptResponse e;
  ASSERT_TRUE(Encrypt("dek", &e).ok());
  EXPECT_EQ(e.key_id(), "transit/kube:v2");
  EXPECT_EQ(Status().key_id(), "transit/kube:v2");
}

TEST_F(KmsPlugin, OversizedPlaintextIsInvalidArgument) {
  v2::EncryptResponse e;
  grpc::Status st = Encrypt(std::string(1025, 'x'), &e);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("at most 1024"), std::string::npos) << st.error_message();
}

TEST_F(KmsPlugin, GarbageCiphertextIsInvalidArgument) {
  v2::EncryptResponse e;
  e.set_ciphertext("not a transit ciphertext");
  v2::DecryptResponse d;
  EXPECT_EQ(Decrypt(e, &d).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(KmsPlugin, CofferErrorsMapToGrpcCodesWithActionableMessages) {
  transit_.Fail(
      absl::PermissionDeniedError("POST transit/encrypt/kube: HTTP 403: permission denied"));
  v2::EncryptResponse e;
  grpc::Status st = Encrypt("dek", &e);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("permission denied"), std::string::npos);
  EXPECT_NE(st.error_message().find("transit/encrypt/kube"), std::string::npos);

  transit_.Fail(absl::UnavailableError("GET transit/keys/kube: HTTP 503: Vault is sealed"));
  st = Encrypt("dek", &e);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(st.error_message().find("sealed"), std::string::npos);

  transit_.Fail(absl::InvalidArgumentError("bad"));
  EXPECT_EQ(Encrypt("dek", &e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(KmsPlugin, StatusIsUnhealthyWithTheReasonWhenCofferIsDown) {
  EXPECT_EQ(Status().healthz(), "ok");
  transit_.Fail(absl::UnavailableError("GET transit/keys/kube: HTTP 503: Vault is sealed"));
  clock_.Advance(absl::Seconds(6));
  v2::StatusResponse s = Status();
  EXPECT_EQ(s.version(), "v2");
  EXPECT_NE(s.healthz(), "ok");
  EXPECT_NE(s.healthz().find("sealed"), std::string::npos) << s.healthz();
  EXPECT_EQ(s.key_id(), "transit/kube:v1") << "the last known key";
  transit_.Fail(absl::OkStatus());
  EXPECT_EQ(Status().healthz(), "ok") << "an error is not cached";
}

TEST_F(KmsPlugin, SecondPluginOnALiveSocketIsRefused) {
  ServerOptions o;
  o.socket_path = path_;
  auto s = PluginServer::Start(service_.get(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(s.status())) << s.status();
  EXPECT_EQ(Status().healthz(), "ok") << "the first one still serves";
}

TEST(KmsConcurrency, CallsBeyondTheLimitWaitForATurnUntilTheirDeadline) {
  TempDir dir;
  FakeClock clock;
  FakeTransit transit;
  transit.delay_ms = 400;
  ServiceOptions so;
  so.key = "kube";
  so.max_in_flight = 1;
  KmsService service(&transit, so, &clock);
  ServerOptions o;
  o.socket_path = dir.path() + "/kms.sock";
  auto server = PluginServer::Start(&service, o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v2::KeyManagementService::NewStub(
      grpc::CreateChannel("unix://" + o.socket_path, grpc::InsecureChannelCredentials()));
  auto encrypt = [&](std::chrono::milliseconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    v2::EncryptRequest req;
    req.set_plaintext("dek");
    v2::EncryptResponse resp;
    return stub->Encrypt(&ctx, req, &resp);
  };
  grpc::Status first;
  std::thread slow([&] { first = encrypt(std::chrono::seconds(10)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the slow call holds the turn
  grpc::Status st = encrypt(std::chrono::milliseconds(150));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("turn"), std::string::npos) << st.error_message();
  st = encrypt(std::chrono::seconds(5));  // waits for the slow one, then runs
  EXPECT_TRUE(st.ok()) << st.error_message();
  slow.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
}

TEST(KmsSocket, StaleSocketIsReplacedAndOtherFilesAreRefused) {
  TempDir dir;
  const std::string stale = dir.path() + "/stale.sock";
  {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, stale.data(), stale.size());
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
    ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);  // bound, never listened: what a killed process leaves behind
  }
  EXPECT_TRUE(PrepareSocketPath(stale).ok());
  EXPECT_FALSE(std::filesystem::exists(stale));

  const std::string file = dir.path() + "/regular";
  std::ofstream(file) << "not a socket";
  absl::Status st = PrepareSocketPath(file);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(std::filesystem::exists(file)) << "never deleted";
}

TEST(KmsParse, CiphertextVersion) {
  EXPECT_EQ(*CiphertextVersion("vault:v1:abc"), 1);
  EXPECT_EQ(*CiphertextVersion("vault:v42:abc"), 42);
  for (std::string_view bad :
       {"", "vault:", "vault:v:abc", "vault:v0:abc", "vault:vx:abc", "vault:v1", "Vault:v1:abc",
        "vault:v-1:abc", "vault:v99999999999999999999:abc"})
    EXPECT_FALSE(CiphertextVersion(bad).ok()) << bad;
}

TEST(KmsParse, SocketPath) {
  EXPECT_EQ(*SocketPath("unix:///run/kms/coffer.sock"), "/run/kms/coffer.sock");
  EXPECT_EQ(*SocketPath("unix:/run/kms.sock"), "/run/kms.sock");
  EXPECT_EQ(*SocketPath("/run/kms.sock"), "/run/kms.sock");
  EXPECT_FALSE(SocketPath("127.0.0.1:8080").ok());
  EXPECT_FALSE(SocketPath("unix://relative.sock").ok());
  EXPECT_FALSE(SocketPath("unix:///" + std::string(200, 'a')).ok());
}

TEST(KmsTokenFile, ReadAgainWhenTheFileChanges) {
  TempDir dir;
  const std::string path = dir.path() + "/token";
  std::ofstream(path) << "s.first\n";
  auto src = FileTokenSource::Create(path);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(*(*src)->Token(), "s.first");
  // Replaced atomically (as the agent writes it): a new inode.
  std::ofstream(path + ".tmp") << "s.second-token\n";
  std::filesystem::rename(path + ".tmp", path);
  EXPECT_EQ(*(*src)->Token(), "s.second-token");
  std::filesystem::remove(path);
  EXPECT_FALSE((*src)->Token().ok());
  EXPECT_FALSE(FileTokenSource::Create(dir.path() + "/missing").ok());
  std::ofstream(path) << "\n";
  EXPECT_FALSE(FileTokenSource::Create(path).ok()) << "an empty file holds no token";
}

}  // namespace
}  // namespace coffer::kms
