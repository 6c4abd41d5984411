// EtcdStorage against a real etcd (Debian's etcd-server), started by the test on 127.0.0.1 free
// ports: the whole storage conformance suite, then what only etcd has (several endpoints, TLS
// client certificates, etcd's own users, the transaction limit).
#include "etcd/etcd_storage.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "storage/storage_conformance.h"
#include "util/encoding.h"
#include "util/status.h"

namespace coffer::etcd {
namespace {

namespace fs = std::filesystem;
using storage::WriteOp;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// One etcd member in a temporary folder, killed with the object.
class EtcdProcess {
 public:
  // `tls_dir`: serve https with client certificate authentication (server.crt, server.key,
  // ca.crt in that folder).
  explicit EtcdProcess(const std::string& tls_dir = "") {
    dir_ = fs::temp_directory_path() / Cat("coffer-etcd-", getpid(), "-", counter_.fetch_add(1));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    port_ = FreePort();
    const std::string scheme = tls_dir.empty() ? "http" : "https";
    url_ = Cat(scheme, "://127.0.0.1:", port_);
    std::vector<std::string> args = {"/usr/bin/etcd",
                                     "--name",
                                     "t",
                                     "--data-dir",
                                     (dir_ / "data").string(),
                                     "--listen-client-urls",
                                     url_,
                                     "--advertise-client-urls",
                                     url_,
                                     "--listen-peer-urls",
                                     Cat("http://127.0.0.1:", FreePort()),
                                     "--listen-metrics-urls",
                                     Cat("http://127.0.0.1:", FreePort()),
                                     "--log-level",
                                     "error"};
    if (!tls_dir.empty()) {
      for (const char* a : {"--client-cert-auth", "--trusted-ca-file"}) args.emplace_back(a);
      args.push_back(tls_dir + "/ca.crt");
      args.emplace_back("--cert-file");
      args.push_back(tls_dir + "/server.crt");
      args.emplace_back("--key-file");
      args.push_back(tls_dir + "/server.key");
    }
    args_ = std::move(args);
    Spawn();
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  const std::string& url() const { return url_; }
  const fs::path& dir() const { return dir_; }
  pid_t pid() const { return pid_; }
  // Kills etcd and starts it again on the same ports and data.
  void Restart() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    Spawn();
  }

  // Waits until a storage on it opens (etcd takes about a second to elect itself).
  absl::StatusOr<std::unique_ptr<EtcdStorage>> Open(const EtcdOptions& o) {
    absl::Status last;
    for (int i = 0; i < 100; ++i) {
      auto s = EtcdStorage::Open(o);
      if (s.ok()) return s;
      last = s.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  }

 private:
  void Spawn() {
    const std::string log = (dir_ / "etcd.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> argv;
      argv.reserve(args_.size() + 1);
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }

  static inline std::atomic<int> counter_{0};
  std::vector<std::string> args_;
  fs::path dir_;
  int port_ = 0;
  std::string url_;
  pid_t pid_ = -1;
};

EtcdProcess& Shared() {
  static auto* e = new EtcdProcess();  // killed by the test binary's exit (see below)
  static const bool registered = [] {
    std::atexit([] { delete e; });
    return true;
  }();
  (void)registered;
  return *e;
}

EtcdOptions Plain(const std::string& url, const std::string& prefix) {
  EtcdOptions o;
  o.endpoints = {url};
  o.prefix = prefix;
  return o;
}

std::string UniquePrefix() {
  static std::atomic<int> n{0};
  return Cat("/coffer-test-", getpid(), "-", n.fetch_add(1), "/");
}

}  // namespace
}  // namespace coffer::etcd

namespace coffer::storage {
namespace {

INSTANTIATE_TEST_SUITE_P(Etcd, StorageConformance,
                         ::testing::Values(Backend{"etcd",
                                                   [](const fs::path&) -> std::unique_ptr<Storage> {
                                                     auto s = etcd::Shared().Open(
                                                         etcd::Plain(etcd::Shared().url(),
                                                                     etcd::UniquePrefix()));
                                                     if (!s.ok()) ADD_FAILURE() << s.status();
                                                     return s.ok() ? std::move(*s) : nullptr;
                                                   }}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::storage

namespace coffer::etcd {
namespace {

TEST(EtcdStorage, KeysLiveUnderThePrefixAsTheyWereGiven) {
  const std::string prefix = UniquePrefix();
  auto s = Shared().Open(Plain(Shared().url(), prefix));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Put("core/keyring", std::string("\x00\xff\x01", 3)).ok());
  // etcd itself holds the key under the prefix, the value byte for byte (base64 in the JSON).
  auto raw = (*s)->Call("kv/range",
                        boost::json::object{{"key", Base64Encode(Cat(prefix, "core/keyring"))}});
  ASSERT_TRUE(raw.ok()) << raw.status();
  const auto& kv = raw->at("kvs").as_array().at(0).as_object();
  EXPECT_EQ(*Base64Decode(kv.at("value").as_string()), std::string("\x00\xff\x01", 3));
  // Another prefix sees nothing of it.
  auto other = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->Get("core/keyring")->has_value());
  EXPECT_TRUE((*other)->List("")->empty());
}

// What an HA standby's watch sees (EtcdStorage::WatchOnce): every put and delete under its
// prefix after the revision it starts from, once, keys relative to the prefix; nothing of
// another prefix; a heartbeat's revision once everything before it has been delivered.
TEST(EtcdStorage, TheWatchSeesEveryChangeUnderThePrefixOnce) {
  auto s = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  auto other = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  ASSERT_TRUE(s.ok() && other.ok());
  ASSERT_TRUE((*s)->Put("sys/token/id/old", "x").ok());
  auto rev = (*s)->Revision();
  ASSERT_TRUE(rev.ok()) << rev.status();
  ASSERT_TRUE((*s)->Put("core/keyring", "k2").ok());
  ASSERT_TRUE((*s)->Delete("sys/token/id/old").ok());
  ASSERT_TRUE((*other)->Put("core/keyring", "elsewhere").ok());
  ASSERT_TRUE((*s)->Write({{WriteOp::Kind::kPut, "logical/u/role/web", "r"},
                           {WriteOp::Kind::kPut, "sys/policy/reader", "p"}})
                  .ok());
  auto beat = (*s)->Heartbeat("standby-1");
  ASSERT_TRUE(beat.ok()) << beat.status();
  int64_t next = *rev + 1;
  std::vector<std::string> keys;
  int64_t through = 0;
  std::atomic<bool> stop{false};
  auto collect = [&](const EtcdStorage::WatchBatch& b) {
    keys.insert(keys.end(), b.keys.begin(), b.keys.end());
    through = b.through;
    if (through >= *beat) stop = true;
  };
  auto st = (*s)->WatchOnce(&next, std::chrono::milliseconds(3000), collect, &stop);
  ASSERT_TRUE(st.ok()) << st;
  // The heartbeat is the backend's own key: it moves `through`, it is not a change to drop.
  EXPECT_EQ(keys, (std::vector<std::string>{"core/keyring", "sys/token/id/old",
                                            "logical/u/role/web", "sys/policy/reader"}));
  EXPECT_EQ(through, *beat);
  EXPECT_EQ(next, *beat + 1);
  // Nor is it listed.
  EXPECT_EQ(*(*s)->List("core/"), std::vector<std::string>{"keyring"});
  // From where it stopped: nothing again, and what changes meanwhile arrives; a stream on which
  // nothing arrives is reported as failed (a standby's heartbeats would have arrived).
  keys.clear();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE((*s)->Put("core/mounts", "m").ok());
  });
  st = (*s)->WatchOnce(&next, std::chrono::milliseconds(500), collect, nullptr);
  writer.join();
  EXPECT_TRUE(absl::IsUnavailable(st)) << st;
  EXPECT_EQ(keys, std::vector<std::string>{"core/mounts"});
}

TEST(EtcdStorage, AWatchFromACompactedRevisionSaysSo) {
  auto s = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  ASSERT_TRUE(s.ok());
  auto rev = (*s)->Revision();
  ASSERT_TRUE(rev.ok());
  ASSERT_TRUE((*s)->Put("a", "1").ok());
  ASSERT_TRUE((*s)->Put("a", "2").ok());
  auto now = (*s)->Revision();
  ASSERT_TRUE(now.ok());
  ASSERT_TRUE(
      (*s)->Call("kv/compaction", boost::json::object{{"revision", std::to_string(*now)}}).ok());
  int64_t next = *rev + 1;
  auto st = (*s)->WatchOnce(
      &next, std::chrono::milliseconds(2000), [](const EtcdStorage::WatchBatch&) {}, nullptr);
  EXPECT_TRUE(absl::IsOutOfRange(st)) << st;
  // Where to start again: after the current revision (the caller reloads everything).
  EXPECT_EQ(next, *now + 1);
}

TEST(EtcdStorage, ABatchIsOneTransactionAndTheLastOperationOnAKeyWins) {
  auto s = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Put("a", "old").ok());
  std::vector<WriteOp> ops = {{WriteOp::Kind::kDelete, "a", ""},
                              {WriteOp::Kind::kPut, "a", "new"},
                              {WriteOp::Kind::kPut, "b", "1"},
                              {WriteOp::Kind::kPut, "c", "2"},
                              {WriteOp::Kind::kDelete, "c", ""}};
  ASSERT_TRUE((*s)->Write(std::move(ops)).ok());
  EXPECT_EQ(**(*s)->Get("a"), "new");
  EXPECT_EQ(**(*s)->Get("b"), "1");
  EXPECT_FALSE((*s)->Get("c")->has_value());
  // More keys than etcd takes in one transaction: refused, nothing written (not split).
  std::vector<WriteOp> big;
  big.reserve(129);
  for (int i = 0; i < 129; ++i) big.push_back({WriteOp::Kind::kPut, Cat("big/", i), "v"});
  absl::Status st = (*s)->Write(std::move(big));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("--max-txn-ops"), std::string_view::npos) << st;
  EXPECT_TRUE((*s)->List("big/")->empty());
}

TEST(EtcdStorage, MovesToTheNextEndpointWhenOneIsDown) {
  const int dead = FreePort();  // nothing listens there
  EtcdOptions o = Plain(Cat("http://127.0.0.1:", dead), UniquePrefix());
  o.endpoints.push_back(Shared().url());
  auto s = Shared().Open(o);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Put("k", "v").ok());
  EXPECT_EQ(**(*s)->Get("k"), "v");
  // No endpoint at all: the server does not start, and says which address failed.
  auto none = EtcdStorage::Open(Plain(Cat("http://127.0.0.1:", dead), "/x/"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find(Cat("127.0.0.1:", dead)), std::string_view::npos)
      << none.status();
}

// `after` naming a key inside a folder (a caller resuming from a deeper name) continues past that
// folder, as the memory and SQLite backends do.
TEST(EtcdStorage, ListAfterANameInsideAFolder) {
  auto s = Shared().Open(Plain(Shared().url(), UniquePrefix()));
  ASSERT_TRUE(s.ok()) << s.status();
  for (const char* k : {"a/b", "a/c", "b", "c/d"}) ASSERT_TRUE((*s)->Put(k, "v").ok());
  EXPECT_EQ(*(*s)->List("", "a/b"), (std::vector<std::string>{"b", "c/"}));
  EXPECT_EQ(*(*s)->List("", "a/"), (std::vector<std::string>{"b", "c/"}));
  EXPECT_EQ(*(*s)->List("", "a"), (std::vector<std::string>{"a/", "b", "c/"}));
}

// A write whose connection breaks after it was sent is not sent again (a late repeat could undo a
// later write): the caller is told it may or may not have been applied. A read is repeated.
TEST(EtcdStorage, AWriteIsNotRepeatedOnceSent) {
  EtcdProcess e;
  EtcdOptions o = Plain(e.url(), UniquePrefix());
  o.max_idle_time = std::chrono::minutes(5);  // the pooled connection outlives the restart
  // No lock, so no lease keepalive: nothing else uses (and replaces) the pooled connection while
  // etcd restarts.
  o.lock = false;
  auto s = e.Open(o);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Put("k", "v1").ok());  // leaves a kept-alive connection in the pool
  // etcd is stopped and started again on the same port: the pooled connection is dead.
  e.Restart();
  auto again = e.Open(Plain(e.url(), "/probe/"));  // waits until it serves again
  ASSERT_TRUE(again.ok()) << again.status();
  absl::Status st = (*s)->Put("k", "v2");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("may or may not have been applied"), std::string_view::npos) << st;
  // The pool dropped its dead connections: the next write and reads go through.
  ASSERT_TRUE((*s)->Put("k", "v3").ok());
  EXPECT_EQ(**(*s)->Get("k"), "v3");
}

// One server per path: a second one waits for the lock, says who holds it, and gets it as soon as
// the first closes. The lock key is never listed.
TEST(EtcdStorage, OneServerPerPath) {
  EtcdOptions o = Plain(Shared().url(), UniquePrefix());
  auto first = Shared().Open(o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE((*first)->List("")->empty());
  EXPECT_TRUE((*first)->List("core/")->empty());
  ASSERT_TRUE((*first)->Put("core/keyring", "k").ok());
  EXPECT_EQ(*(*first)->List(""), (std::vector<std::string>{"core/"}));
  EXPECT_EQ(*(*first)->List("core/"), (std::vector<std::string>{"keyring"}));

  EtcdOptions second = o;
  second.lock_wait = std::chrono::seconds(1);
  auto refused = EtcdStorage::Open(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("another Coffer server holds"), std::string_view::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find(Cat("pid=", getpid())), std::string_view::npos)
      << refused.status();
  // Clearing core/ (as init does) keeps the lock.
  ASSERT_TRUE((*first)->DeletePrefix("core/").ok());
  EXPECT_FALSE((*first)->Get("core/keyring")->has_value());
  ASSERT_TRUE((*first)->Put("core/keyring", "k").ok());
  first->reset();  // closing gives the lock back: no wait for the lease to lapse
  auto now_ok = EtcdStorage::Open(second);
  ASSERT_TRUE(now_ok.ok()) << now_ok.status();
  EXPECT_EQ(**(*now_ok)->Get("core/keyring"), "k");
}

// Fencing: once the lock is no longer this server's (its lease lapsed while it was paused, and
// another server may hold the lock now), none of its writes reaches etcd.
TEST(EtcdStorage, AServerThatLostItsLockWritesNothing) {
  EtcdOptions o = Plain(Shared().url(), UniquePrefix());
  auto a = Shared().Open(o);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->Put("x", "1").ok());
  // Another process removes the lock (as its lease's expiry would) and a new server takes it.
  EtcdOptions raw = o;
  raw.lock = false;
  auto admin = EtcdStorage::Open(raw);
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Delete("core/lock").ok());
  auto b = EtcdStorage::Open(o);
  ASSERT_TRUE(b.ok()) << b.status();
  absl::Status st = (*a)->Put("x", "from-the-deposed-one");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("lost the lock"), std::string_view::npos) << st;
  std::vector<WriteOp> batch = {{WriteOp::Kind::kPut, "y", "2"}};
  EXPECT_FALSE((*a)->Write(std::move(batch)).ok());
  EXPECT_FALSE((*a)->DeletePrefix("").ok());
  EXPECT_EQ(**(*b)->Get("x"), "1");
  EXPECT_FALSE((*b)->Get("y")->has_value());
  ASSERT_TRUE((*b)->Put("x", "from-the-new-one").ok());
  EXPECT_EQ(**(*b)->Get("x"), "from-the-new-one");
}

// The lease of the lock holder `s` (read from etcd), revoked as its expiry would.
void RevokeLockLease(const EtcdOptions& o) {
  EtcdOptions raw = o;
  raw.lock = false;
  auto admin = EtcdStorage::Open(raw);
  ASSERT_TRUE(admin.ok());
  auto r = (*admin)->Call("kv/range",
                          boost::json::object{{"key", Base64Encode(Cat(o.prefix, "core/lock"))}});
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& kv = r->at("kvs").as_array().at(0).as_object();
  ASSERT_TRUE(
      (*admin)->Call("lease/revoke", boost::json::object{{"ID", kv.at("lease")}}, true).ok());
}

// A server whose lease lapsed takes the lock again when nobody held it in between, and carries on.
TEST(EtcdStorage, ALapsedLockIsRetakenWhenNobodyHeldIt) {
  EtcdOptions o = Plain(Shared().url(), UniquePrefix());
  o.lock_ttl = std::chrono::seconds(3);  // the keeper looks every second
  auto a = Shared().Open(o);
  ASSERT_TRUE(a.ok()) << a.status();
  RevokeLockLease(o);
  absl::Status st;
  for (int i = 0; i < 100; ++i) {
    st = (*a)->Put("x", "after");
    if (st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(**(*a)->Get("x"), "after");
}

// ... but never when another server held it meanwhile, even if that one is gone again: it may
// have written (a rotated keyring), and this server's caches are stale.
TEST(EtcdStorage, ALapsedLockIsNotRetakenAfterAnotherHolder) {
  EtcdOptions o = Plain(Shared().url(), UniquePrefix());
  o.lock_ttl = std::chrono::seconds(3);
  auto a = Shared().Open(o);
  ASSERT_TRUE(a.ok()) << a.status();
  // Own keys cannot be written through the interface.
  EXPECT_EQ((*a)->Put("core/lock", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*a)->Delete("core/lock-epoch").code(), absl::StatusCode::kInvalidArgument);
  RevokeLockLease(o);
  {
    auto b = EtcdStorage::Open(o);  // the lock is free: b takes it, writes, and closes
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_TRUE((*b)->Put("core/keyring", "rotated-by-b").ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // a's keeper has looked
  absl::Status st = (*a)->Put("core/keyring", "stale-from-a");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  auto c = EtcdStorage::Open(o);  // the next server gets the lock and b's data
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(**(*c)->Get("core/keyring"), "rotated-by-b");
}

// Endpoints that accept connections and never answer (a hung etcd): a call gives up after three
// request timeouts in all, instead of waiting that long on every endpoint in turn.
TEST(EtcdStorage, ACallGivesUpAfterThreeTimeoutsInAll) {
  std::vector<int> fds;
  EtcdOptions o;
  o.prefix = "/x/";
  o.request_timeout = std::chrono::seconds(1);
  o.lock = false;
  for (int i = 0; i < 6; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    o.endpoints.push_back(Cat("http://127.0.0.1:", ntohs(a.sin_port)));
    fds.push_back(fd);
  }
  auto s = EtcdStorage::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("gave up after 3s"), std::string_view::npos) << s.status();
  EXPECT_EQ(s.status().message().find(o.endpoints.back()), std::string_view::npos)
      << "the last endpoint was tried: " << s.status();
  for (int fd : fds) close(fd);
}

TEST(EtcdStorage, ConfigKeysAreVaults) {
  auto o = ParseEtcdOptions({{"address", "https://127.0.0.1:2379, https://127.0.0.2:2379"},
                             {"etcd_api", "v3"},
                             {"path", "vault"},
                             {"request_timeout", "7s"},
                             {"lock_timeout", "20s"}});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoints,
            (std::vector<std::string>{"https://127.0.0.1:2379", "https://127.0.0.2:2379"}));
  EXPECT_EQ(o->prefix, "vault/");
  EXPECT_EQ(o->request_timeout, std::chrono::seconds(7));
  EXPECT_EQ(o->lock_ttl, std::chrono::seconds(20));
  EXPECT_EQ(o->lock_wait, std::chrono::seconds(45));
  EXPECT_NE(ParseEtcdOptions({{"etcd_api", "v2"}}).status().message().find("v3 API only"),
            std::string_view::npos);
  EXPECT_FALSE(ParseEtcdOptions({{"address", "127.0.0.1:2379"}}).ok());
  EXPECT_FALSE(ParseEtcdOptions({{"tls_cert_file", "/c.crt"}}).ok());
  EXPECT_FALSE(ParseEtcdOptions({{"username", "u"}}).ok());
  EXPECT_FALSE(ParseEtcdOptions({{"request_timeout", "soon"}}).ok());
  EXPECT_FALSE(ParseEtcdOptions({{"request_timeout", "5s"}, {"lock_timeout", "6s"}}).ok());
  // A password is never sent in clear.
  auto clear = ParseEtcdOptions(
      {{"address", "http://127.0.0.1:2379"}, {"username", "u"}, {"password", "p"}});
  ASSERT_FALSE(clear.ok());
  EXPECT_NE(clear.status().message().find("in clear"), std::string_view::npos) << clear.status();
}

// mTLS and etcd's own users: the way a production etcd is set up.
TEST(EtcdStorage, ClientCertificatesAndEtcdUsers) {
  const fs::path tls = fs::temp_directory_path() / Cat("coffer-etcd-tls-", getpid());
  fs::remove_all(tls);
  fs::create_directories(tls);
  const std::string d = tls.string();
  const std::string script = Cat(
      "set -e; cd ", d,
      "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
      "-subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null;"
      " for n in server client; do openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
      " -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null;"
      " printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext;"
      " openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1"
      " -extfile ext -out $n.crt 2>/dev/null; done;"
      // A client certificate without a CommonName, as etcd's gateway wants with etcd users on.
      " openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /O=coffer"
      " -keyout nocn.key -out nocn.csr 2>/dev/null;"
      " openssl x509 -req -in nocn.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1"
      " -extfile ext -out nocn.crt 2>/dev/null");
  ASSERT_EQ(std::system(script.c_str()), 0);
  EtcdProcess e(d);
  EtcdOptions o = Plain(e.url(), UniquePrefix());
  // The first storage cannot give its lock back once etcd wants a password: a short lease.
  o.lock_ttl = std::chrono::seconds(2);
  o.tls_ca_file = d + "/ca.crt";
  o.tls_cert_file = d + "/client.crt";
  o.tls_key_file = d + "/client.key";
  auto s = e.Open(o);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->Put("k", "v").ok());
  EXPECT_EQ(**(*s)->Get("k"), "v");
  // Without a client certificate the handshake is refused.
  EtcdOptions anon = o;
  anon.tls_cert_file.clear();
  anon.tls_key_file.clear();
  auto refused = EtcdStorage::Open(anon);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();

  // etcd's users: root with a password, authentication on. Then a wrong password is refused
  // with etcd's reason, and the right one works (a token fetched, sent on every call).
  using boost::json::object;
  ASSERT_TRUE((*s)->Call("auth/user/add", object{{"name", "root"}, {"password", "pw-1"}}).ok());
  ASSERT_TRUE((*s)->Call("auth/user/grant", object{{"user", "root"}, {"role", "root"}}).ok());
  ASSERT_TRUE((*s)->Call("auth/enable", object{}).ok());
  // A certificate with a CommonName is refused by etcd's gateway now, with a hint.
  EtcdOptions with_cn = o;
  with_cn.username = "root";
  with_cn.password = "pw-1";
  auto cn = EtcdStorage::Open(with_cn);
  ASSERT_FALSE(cn.ok());
  EXPECT_NE(cn.status().message().find("must have no CommonName"), std::string_view::npos)
      << cn.status();
  // A wrong password is refused with etcd's reason; the right one works (a token fetched and
  // sent on every call).
  EtcdOptions wrong = with_cn;
  wrong.tls_cert_file = d + "/nocn.crt";
  wrong.tls_key_file = d + "/nocn.key";
  wrong.password = "nope";
  auto denied = EtcdStorage::Open(wrong);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_NE(denied.status().message().find("authentication failed"), std::string_view::npos)
      << denied.status();
  EXPECT_EQ(denied.status().message().find("nope"), std::string_view::npos);
  EtcdOptions right = wrong;
  right.password = "pw-1";
  auto authed = EtcdStorage::Open(right);
  ASSERT_TRUE(authed.ok()) << authed.status();
  EXPECT_EQ(**(*authed)->Get("k"), "v");
  ASSERT_TRUE((*authed)->Put("k2", "v2").ok());
  // Without any credentials etcd refuses: permission denied, not "unavailable".
  EtcdOptions none = right;
  none.username.clear();
  none.password.clear();
  auto anon_user = EtcdStorage::Open(none);
  ASSERT_FALSE(anon_user.ok());
  EXPECT_EQ(anon_user.status().code(), absl::StatusCode::kPermissionDenied) << anon_user.status();
  fs::remove_all(tls);
}

}  // namespace
}  // namespace coffer::etcd
