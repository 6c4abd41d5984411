// The audit broker's edge cases: a write that fails part-way leaves no torn line, a file that
// cannot be reopened is retried on the broker's clock, and both show in the metrics and the log.
#include "core/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "boost/json.hpp"
#include "core/metrics.h"
#include "storage/memory_storage.h"
#include "util/clock.h"
#include "util/log.h"

namespace coffer::core {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "s3cret-password-never-logged";
constexpr char kToken[] = "hvs.client-token-never-logged";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The file's lines, each parsed; fails the test if any line is not a whole JSON object.
std::vector<json::object> Entries(const fs::path& p) {
  const std::string text = ReadAll(p);
  std::vector<json::object> out;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the file ends in a partial line";
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    EXPECT_TRUE(!ec && v.is_object()) << "not a whole JSON entry: " << line;
    if (!ec && v.is_object()) out.push_back(v.as_object());
  }
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("coffer-audit-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(logs());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path logs() const { return dir_ / "logs"; }
  fs::path file() const { return logs() / "audit.log"; }

  void EnableFile() {
    ASSERT_TRUE(broker_
                    .Enable("file", "file", "", json::object{{"file_path", file().string()}},
                            /*local=*/false)
                    .ok());
  }
  absl::Status Log(const std::string& path) {
    Request r;
    r.id = "id-" + path;
    r.op = Operation::kUpdate;
    r.path = path;
    r.data = json::object{{"password", kSecret}};
    r.client_token = kToken;
    return broker_.LogRequest(r, std::nullopt, absl::OkStatus());
  }
  // As after log rotation into a directory that cannot be recreated: the old directory moves
  // away and a regular file takes its name, so opening logs/audit.log fails (even for root).
  void BreakDirectory() {
    fs::rename(logs(), dir_ / "logs.rotated");
    std::ofstream(logs()) << "not a directory\n";
  }
  void RepairDirectory() {
    fs::remove(logs());
    fs::create_directories(logs());
  }
  std::string Prom() const { return metrics_.Prometheus(); }

  fs::path dir_;
  storage::MemoryStorage barrier_;
  FakeClock clock_;
  Metrics metrics_;
  AuditBroker broker_{&barrier_, &clock_, &metrics_};
};

// A write that crosses RLIMIT_FSIZE is partial and the next one fails with EFBIG: the same
// shape as a disk that fills up mid-entry. Runs in a child so the limit binds only there.
TEST_F(AuditTest, WriteFailingPartWayLeavesNoTornLine) {
  EnableFile();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Log("secret/before").ok());
  const auto size_before = fs::file_size(file());

  int err_pipe[2];
  ASSERT_EQ(::pipe(err_pipe), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err_pipe[1], 2);  // the child's log, for the parent to read
    ::close(err_pipe[0]);
    (void)log::Configure("info", "text");
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{};
    ::getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = size_before + 64;  // the entry is several hundred bytes: 64 get written
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
    const absl::Status st = Log("secret/torn");
    if (st.code() != absl::StatusCode::kInternal) ::_exit(11);  // refused: the core sends 500
    if (st.message().find("partly written entry was removed") == std::string_view::npos)
      ::_exit(12);
    const std::string prom = Prom();
    if (prom.find("coffer_audit_device_failed{path=\"file/\"} 1\n") == std::string::npos ||
        prom.find("coffer_audit_write_failures_total{path=\"file/\"} 1\n") == std::string::npos)
      ::_exit(13);
    ::_exit(0);
  }
  ::close(err_pipe[1]);
  std::string child_log;
  char buf[4096];
  for (ssize_t n; (n = ::read(err_pipe[0], buf, sizeof buf)) > 0;) child_log.append(buf, n);
  ::close(err_pipe[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child log:\n" << child_log;

  EXPECT_EQ(fs::file_size(file()), size_before);
  EXPECT_THAT(child_log, HasSubstr("[error] audit device failed"));
  EXPECT_THAT(child_log, HasSubstr("path=file/"));
  EXPECT_THAT(child_log, HasSubstr("File too large"));
  EXPECT_THAT(child_log, Not(HasSubstr(kSecret)));
  EXPECT_THAT(child_log, Not(HasSubstr(kToken)));
  EXPECT_THAT(child_log, Not(HasSubstr("secret/torn")));

  // Without the limit the next entry is whole, on its own line.
  ASSERT_TRUE(Log("secret/after").ok());
  const auto entries = Entries(file());
  ASSERT_EQ(entries.size(), 7u);  // the test write, five, and the one after
  EXPECT_EQ(entries.back().at("request").at("path").as_string(), "secret/after");
  for (const auto& e : entries) EXPECT_NE(e.at("request").at("path").as_string(), "secret/torn");
}

// A reopen that fails (SIGHUP after rotation into a broken directory) is retried by a later
// write once the backoff has passed, with no second Reopen; the metric and the log follow.
TEST_F(AuditTest, FailedReopenIsRetriedByALaterWrite) {
  ASSERT_TRUE(log::Configure("info", "text").ok());  // stderr, captured below
  EnableFile();
  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 0\n"));
  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_write_failures_total{path=\"file/\"} 0\n"));
  ASSERT_TRUE(Log("secret/one").ok());

  ::testing::internal::CaptureStderr();
  BreakDirectory();
  const absl::Status reopen = broker_.Reopen();
  EXPECT_THAT(reopen.message(), HasSubstr("Not a directory"));
  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 1\n"));

  absl::Status st = Log("secret/refused");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);  // fail closed: the request is refused
  EXPECT_THAT(st.message(), HasSubstr("the next attempt to open it is in 1s"));

  RepairDirectory();
  clock_.Advance(absl::Milliseconds(999));
  st = Log("secret/still-waiting");  // repaired, but the backoff has not passed
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(st.message(), HasSubstr("the next attempt to open it is in 1ms"));
  EXPECT_FALSE(fs::exists(file()));

  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(Log("secret/recorded").ok());
  const std::string log_text = ::testing::internal::GetCapturedStderr();

  const auto entries = Entries(file());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("request").at("path").as_string(), "secret/recorded");
  EXPECT_THAT(ReadAll(dir_ / "logs.rotated" / "audit.log"), HasSubstr("secret/one"));

  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 0\n"));
  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_write_failures_total{path=\"file/\"} 2\n"));
  const json::object j = metrics_.Json();
  EXPECT_THAT(json::serialize(j.at("Gauges")),
              HasSubstr(R"({"Name":"coffer.audit.device_failed","Value":0,)"));

  EXPECT_THAT(log_text, HasSubstr("[error] audit device failed"));
  EXPECT_THAT(log_text, HasSubstr("Not a directory"));
  EXPECT_THAT(log_text, HasSubstr("[warn] audit device recovered path=file/"));
  EXPECT_THAT(log_text, HasSubstr("missed_entries=2"));
  EXPECT_THAT(log_text, Not(HasSubstr(kSecret)));
  EXPECT_THAT(log_text, Not(HasSubstr(kToken)));
}

// The wait between attempts doubles from 1 s and stays at 60 s.
TEST_F(AuditTest, ReopenBackoffDoublesUpToAMinute) {
  EnableFile();
  BreakDirectory();
  ASSERT_FALSE(broker_.Reopen().ok());
  for (int wait : {1, 2, 4, 8, 16, 32, 60, 60}) {
    if (wait > 1) {
      clock_.Advance(absl::Seconds(wait - 1));
      EXPECT_THAT(Log("secret/x").message(), HasSubstr("the next attempt to open it is in 1s"))
          << "after " << wait - 1 << "s of " << wait << "s";
    }
    clock_.Advance(absl::Seconds(1));
    const absl::Status st = Log("secret/x");  // this one tries, and fails
    EXPECT_THAT(st.message(), HasSubstr("cannot open audit file"));
    EXPECT_THAT(st.message(), Not(HasSubstr("next attempt"))) << "at " << wait << "s";
  }
  RepairDirectory();
  clock_.Advance(absl::Seconds(59));
  EXPECT_FALSE(Log("secret/x").ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Log("secret/x").ok());
  EXPECT_THAT(Prom(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 0\n"));
}

// A device whose file cannot be opened at unseal stays enabled, refuses requests, shows as
// failed, and starts recording once its file can be opened.
TEST_F(AuditTest, DeviceThatCannotOpenAtLoadIsRetried) {
  EnableFile();
  BreakDirectory();
  Metrics metrics;
  AuditBroker after_unseal(&barrier_, &clock_, &metrics);
  ASSERT_TRUE(after_unseal.Load().ok());
  EXPECT_THAT(metrics.Prometheus(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 1\n"));
  Request r;
  r.path = "secret/a";
  EXPECT_EQ(after_unseal.LogRequest(r, std::nullopt, absl::OkStatus()).code(),
            absl::StatusCode::kInternal);
  RepairDirectory();
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(after_unseal.LogRequest(r, std::nullopt, absl::OkStatus()).ok());
  EXPECT_EQ(Entries(file()).size(), 1u);
  EXPECT_THAT(metrics.Prometheus(), HasSubstr("coffer_audit_device_failed{path=\"file/\"} 0\n"));
  EXPECT_THAT(metrics.Prometheus(),
              HasSubstr("coffer_audit_write_failures_total{path=\"file/\"} 1\n"));

  // Disabled or sealed away, a device leaves the metrics.
  after_unseal.Clear();
  EXPECT_THAT(metrics.Prometheus(), Not(HasSubstr("{path=\"file/\"}")));
  ASSERT_TRUE(broker_.Disable("file").ok());
  EXPECT_THAT(Prom(), Not(HasSubstr("{path=\"file/\"}")));
}

}  // namespace
}  // namespace coffer::core
