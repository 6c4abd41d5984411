// 1,000 simulated node agents against one Coffer server, in one process: each is the real
// coffer::agent::Agent (its own token, keys made locally, CSRs, sign/:role over TLS with a new
// connection per request, atomic fsynced file writes), one thread each, released together.
//
//   agents_bench ADDR CA_FILE ROOT_TOKEN CLUSTER SERVER_PID WORKDIR
//
// Phase 1 (bootstrap): every agent exchanges its init token (WORKDIR/tokens/<node>.token) and
// gets its certificates. Phase 2 (renew all at once): every agent renews every certificate
// (`agent once --force`). For each phase: wall time until the last agent has converged, requests
// failed, and the server's CPU time (utime+stime from /proc/SERVER_PID/stat) over the phase.
//
//   agents_bench ... WORKDIR rotate MAX_UNAVAILABLE   (bench/rotation/run.sh)
//
// Instead of phase 2: every agent runs as `coffer agent run` does (Agent::Run: its loop and its
// long poll on the rotation document), idles 10 s (server CPU with 1,000 polls open), then
// `coffer cluster rotate-ca --ca kubernetes` drives every node through trust, reissue and
// finalize, MAX_UNAVAILABLE at a time; per phase: wall time and server CPU.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "cluster/profile.h"
#include "cluster/rotation.h"
#include "cluster/setup.h"
#include "http/api.h"
#include "util/log.h"

using namespace coffer;

namespace {

double ServerCpuSeconds(const std::string& pid) {
  std::ifstream f("/proc/" + pid + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  std::istringstream in(s.substr(p + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct PhaseResult {
  double wall = 0, cpu = 0, p50 = 0, p99 = 0;
  int failed = 0;
};

PhaseResult Phase(std::vector<std::unique_ptr<agent::Agent>>& agents, bool force,
                  const std::string& pid) {
  std::barrier start(static_cast<std::ptrdiff_t>(agents.size() + 1));
  std::atomic<int> failed{0};
  std::vector<double> done(agents.size());
  std::vector<std::thread> threads;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < agents.size(); ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      if (!agents[i]->Once(force)) failed++;
      done[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  }
  double cpu0 = ServerCpuSeconds(pid);
  t0 = std::chrono::steady_clock::now();
  start.arrive_and_wait();
  for (auto& t : threads) t.join();
  PhaseResult r;
  r.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu = ServerCpuSeconds(pid) - cpu0;
  r.failed = failed.load();
  std::sort(done.begin(), done.end());
  r.p50 = done[done.size() / 2];
  r.p99 = done[done.size() * 99 / 100];
  return r;
}

// Every agent running (Agent::Run), then a rotation of the kubernetes CA driven to the end;
// a monitor reads the rotation document every 50 ms and notes when each phase began.
int Rotate(std::vector<std::unique_ptr<agent::Agent>>& agents, const http::Api& api,
           const std::string& cluster, const std::string& pid, int max_unavailable) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> runs;
  runs.reserve(agents.size());
  for (auto& a : agents) runs.emplace_back([&a, &stop] { a->Run(&stop); });
  std::this_thread::sleep_for(std::chrono::seconds(5));  // every loop and long poll started
  double cpu0 = ServerCpuSeconds(pid);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  std::printf("%-36s %9.2f %9s %9s %9.2fs\n", "idle, all agents watching (10 s)", 10.0, "-", "-",
              ServerCpuSeconds(pid) - cpu0);

  struct Mark {
    std::string phase;
    std::chrono::steady_clock::time_point at;
    double cpu;
  };
  std::vector<Mark> marks;
  std::atomic<bool> finished{false};
  std::thread monitor([&] {
    std::string last;
    while (!finished.load()) {
      auto r = api.Read(cluster + "/nodes/data/_rotation");
      if (r.ok())
        if (auto* d = r->if_contains("data"); d && d->is_object())
          if (auto* p = d->as_object().if_contains("phase");
              p && p->is_string() && std::string(p->as_string()) != last) {
            last = std::string(p->as_string());
            marks.push_back({last, std::chrono::steady_clock::now(), ServerCpuSeconds(pid)});
          }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  cluster::RotateOptions o;
  o.cluster = cluster;
  o.ca = "kubernetes";
  o.max_unavailable = max_unavailable;
  o.timeout_s = 3600;
  std::ostringstream out;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = ServerCpuSeconds(pid);
  auto st = cluster::RotateCa(api, o, out);
  const auto t1 = std::chrono::steady_clock::now();
  const double c1 = ServerCpuSeconds(pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  finished.store(true);
  monitor.join();
  stop.store(true);
  for (auto& t : runs) t.join();
  if (!st.ok()) {
    std::cerr << "rotation failed: " << st << "\n" << out.str();
    return 1;
  }
  marks.push_back({"end", t1, c1});
  for (size_t i = 0; i + 1 < marks.size(); ++i) {
    if (marks[i].phase == "done") break;
    const double wall = std::chrono::duration<double>(marks[i + 1].at - marks[i].at).count();
    std::printf("%-36s %9.2f %9s %9s %9.2fs\n", ("rotation phase " + marks[i].phase).c_str(), wall,
                "-", "-", marks[i + 1].cpu - marks[i].cpu);
  }
  std::printf("%-36s %9.2f %9s %9s %9.2fs\n", "rotation total (rotate-ca)",
              std::chrono::duration<double>(t1 - t0).count(), "-", "-", c1 - c0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool rotate = argc == 9 && std::string(argv[7]) == "rotate";
  if (argc != 7 && !rotate) {
    std::cerr << "usage: agents_bench ADDR CA_FILE ROOT_TOKEN CLUSTER SERVER_PID WORKDIR "
                 "[rotate MAX_UNAVAILABLE]\n";
    return 1;
  }
  std::string addr = argv[1], ca = argv[2], token = argv[3], cluster = argv[4], pid = argv[5],
              dir = argv[6];
  (void)log::Configure("error", "text");
  http::ClientOptions o;
  o.address = addr;
  o.ca_cert = ca;
  o.token = token;
  http::Api api(o);
  auto spec = cluster::LoadSpec(api, cluster);
  if (!spec.ok()) {
    std::cerr << spec.status() << "\n";
    return 1;
  }
  std::vector<std::unique_ptr<agent::Agent>> agents;
  size_t certs = 0;
  for (const auto& n : spec->nodes) {
    cluster::AgentLayout l;
    l.server_address = addr;
    l.server_ca_file = ca;
    l.root = dir + "/nodes/" + n.name;
    l.state_dir = dir + "/nodes/" + n.name + "/state";
    l.api_server = "https://127.0.0.1:6443";
    boost::json::object ac = cluster::AgentConfig(*spec, n, l);
    // rotation_wait: the default (20 s), as a node would run; the stop at the end waits for it.
    auto cfg = agent::ParseConfig(boost::json::serialize(ac));
    if (!cfg.ok()) {
      std::cerr << cfg.status() << "\n";
      return 1;
    }
    std::filesystem::create_directories(l.state_dir);
    std::filesystem::rename(dir + "/tokens/" + n.name + ".token", l.state_dir + "/init-token");
    certs += cfg->certificates.size();
    agents.push_back(std::make_unique<agent::Agent>(std::move(*cfg), RealClock::Get()));
  }
  std::printf("agents=%zu certificates=%zu cores=%u\n", agents.size(), certs,
              std::thread::hardware_concurrency());
  std::printf("%-36s %9s %9s %9s %10s %7s %s\n", "phase", "wall_s", "p50_s", "p99_s", "server_cpu",
              "failed", "certs/s");
  auto report = [&](const char* name, const PhaseResult& r) {
    std::printf("%-36s %9.2f %9.2f %9.2f %9.2fs %7d %.0f\n", name, r.wall, r.p50, r.p99, r.cpu,
                r.failed, static_cast<double>(certs) / r.wall);
  };
  report("bootstrap (init token + first certs)", Phase(agents, false, pid));
  if (rotate) return Rotate(agents, api, cluster, pid, std::atoi(argv[8]));
  report("renew all at once (--force)", Phase(agents, true, pid));
  return 0;
}
