// Bounds and self-healing with real processes (issue 12): a client that does
// not read cannot grow the broker past its budget; a hung method is replaced
// within its limit and later asks succeed; recycling by request count loses
// no ask; passivated instances are destroyed exactly once and come back; a
// pool process killed with SIGKILL gives worker_lost at once; connections
// beyond the broker's open-file limit leave it serving. Every wait is
// bounded and every process is stopped, also when a test fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <zmq.hpp>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::status;
using steady = std::chrono::steady_clock;

const std::string limits_worker = "troupe-test-limits-worker";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Resident memory of a process, in MiB.
double rss_mb(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// User + system CPU time of a process, in seconds.
double cpu_seconds(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

std::string frame(protocol::command c) {
  const auto h = protocol::header(c);
  return {h.begin(), h.end()};
}

status code_of(std::future<long long>& f) {
  try {
    f.get();
    return status::ok;
  } catch (const troupe::error& e) {
    return e.code();
  }
}

TEST(Bounds, AClientThatDoesNotReadCannotGrowTheBrokerPastItsBudget) {
#ifdef __SANITIZE_ADDRESS__
  // The broker under test is built like this test: AddressSanitizer keeps
  // freed memory in quarantine and never gives it back, so its RSS says
  // nothing about the budget. `make test` measures it.
  GTEST_SKIP() << "RSS is not meaningful under AddressSanitizer";
#endif
  cluster c({"--send-queue-limit", "256"});  // 256 x 64 KiB: 16 MiB of replies per peer at most
  c.start_worker({}, limits_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<std::vector<char>>("hang", "blob", 10).get().size(), 10u);
  const double before = rss_mb(c.broker().pid());

  // 4000 replies of 64 KiB (250 MiB) asked for, none read.
  zmq::context_t ctx(1);
  zmq::socket_t greedy(ctx, zmq::socket_type::dealer);
  greedy.set(zmq::sockopt::linger, 0);
  greedy.set(zmq::sockopt::rcvhwm, 16);
  greedy.connect(c.endpoint());
  std::string meta;
  for (std::uint64_t id = 1; id <= 4000; ++id) {
    protocol::encode_request_meta(meta, {id, "hang", "blob", 0, 60000});
    const std::string args(std::string_view("\x91\xce\x00\x01\x00\x00", 6));  // [65536]
    greedy.send(zmq::buffer(frame(protocol::command::request)), zmq::send_flags::sndmore);
    greedy.send(zmq::buffer(meta), zmq::send_flags::sndmore);
    greedy.send(zmq::buffer(args), zmq::send_flags::none);
  }
  double peak = before;
  const bool handled = eventually(
      [&] {
        peak = std::max(peak, rss_mb(c.broker().pid()));
        return c.stat("requests") >= 4000 && c.stat("in_flight") == 0 && c.stat("queued") == 0;
      },
      60s);
  ASSERT_TRUE(handled) << "the broker should get through the asks";
  peak = std::max(peak, rss_mb(c.broker().pid()));
  EXPECT_LT(peak - before, 80.0) << "unbounded, the broker would hold about 250 MiB of replies";
  EXPECT_GT(c.stat("unsent"), 1000u) << "replies past the client's send queue are dropped and counted";

  // Others are served meanwhile, quickly.
  const auto t0 = steady::now();
  EXPECT_EQ(cl.ask<std::vector<char>>("hang", "blob", 3).get().size(), 3u);
  EXPECT_LT(steady::now() - t0, 1s);

  // The greedy client leaves: what ZeroMQ held for it goes back to the system.
  greedy.close();
  EXPECT_TRUE(eventually([&] { return rss_mb(c.broker().pid()) < before + 48.0; }, 10s))
      << "broker RSS " << rss_mb(c.broker().pid()) << " MiB, " << before << " MiB before";
}

TEST(Bounds, AHungMethodIsReplacedWithinItsLimitAndLaterAsksSucceed) {
  cluster c;
  c.start_worker({"--processes", "1", "--credits", "4"}, limits_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  const auto pid = cl.ask<int>("hang", "pid").get();
  // nap's limit is 1 s; the call asks for 60 s. Three more asks wait behind it.
  const auto t0 = steady::now();
  auto stuck = cl.ask<long long>(call_options{30s}, "hang", "nap", 60000);
  std::this_thread::sleep_for(100ms);
  std::vector<std::future<long long>> behind;
  for (int i = 0; i < 3; ++i) behind.push_back(cl.ask<long long>(call_options{30s}, "hang", "nap", 1));
  ASSERT_EQ(stuck.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(code_of(stuck), status::time_limit_exceeded);
  EXPECT_LT(steady::now() - t0, 4s) << "the limit is 1 s";
  for (auto& f : behind) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(code_of(f), status::worker_lost);
  }
  // A fresh process serves what comes next.
  ASSERT_TRUE(eventually(
      [&] {
        try {
          return cl.ask<int>(call_options{1s}, "hang", "pid").get() != pid;
        } catch (const troupe::error&) {
          return false;
        }
      },
      10s));
  EXPECT_EQ(cl.ask<long long>("hang", "nap", 5).get(), 5);
  EXPECT_EQ(c.stat("time_limit_exceeded"), 1u);
  EXPECT_EQ(c.stat("workers"), 1u);
}

TEST(Bounds, ACallPastItsDeadlinePlusTheGraceIsReplacedToo) {
  cluster c;
  c.start_worker({"--processes", "1", "--deadline-grace-ms", "500"}, limits_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  auto late = cl.ask<long long>(call_options{500ms}, "hang", "forever");
  EXPECT_EQ(code_of(late), status::deadline_exceeded);
  // The credit comes back with a fresh process about 500 ms later.
  EXPECT_TRUE(eventually([&] { return c.stat("workers_gone") == 1; }, 5s));
  ASSERT_TRUE(c.wait_for_workers(1));
  EXPECT_EQ(cl.ask<long long>(call_options{5s}, "hang", "nap", 1).get(), 1);
}

TEST(Bounds, AWorkerOnItsOwnEndsItselfPastATimeLimit) {
  cluster c;
  auto& worker = c.start_worker({}, limits_worker);  // no supervisor: it cannot be replaced
  ASSERT_TRUE(c.wait_for_workers(1));
  auto stuck = c.client().ask<long long>(call_options{30s}, "hang", "nap", 60000);
  ASSERT_EQ(stuck.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(code_of(stuck), status::time_limit_exceeded);
  const int st = worker.wait_exit(10s);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 4) << worker.err();
  EXPECT_EQ(c.stat("workers"), 0u);
}

TEST(Bounds, AStopWaitsAtMostTheStopTimeoutForAStuckMethod) {
  cluster c;
  auto& worker = c.start_worker({"--stop-timeout-ms", "1000"}, limits_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto stuck = c.client().ask<long long>(call_options{30s}, "hang", "forever");
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  worker.signal(SIGTERM);
  ASSERT_EQ(stuck.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(code_of(stuck), status::worker_lost);
  const int st = worker.wait_exit(10s);
  ASSERT_NE(st, -1);
  EXPECT_LT(steady::now() - t0, 3s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << worker.err();
}

TEST(Bounds, RecyclingByRequestCountLosesNoAsk) {
  cluster c;
  auto& pool = c.start_worker({"--processes", "2", "--max-requests", "40"});
  ASSERT_TRUE(c.wait_for_workers(2));
  std::vector<std::tuple<long long>> inputs;
  for (long long x = 0; x < 400; ++x) inputs.emplace_back(x);
  const auto out = c.client().map<long long>(troupe::map_options{.window = 20}, "squares", "square", inputs);
  for (long long x = 0; x < 400; ++x) EXPECT_EQ(out[static_cast<std::size_t>(x)], x * x);
  EXPECT_EQ(c.stat("worker_lost"), 0u);
  EXPECT_EQ(c.stat("errors"), 0u);
  pool.signal(SIGTERM);
  ASSERT_NE(pool.wait_exit(15s), -1);
  const auto err = pool.err();
  EXPECT_GE(count(err, "was recycled"), 4u) << err;
  // Each process built its instance once and destroyed it once.
  std::map<std::string, int> built, destroyed;
  const std::regex line("squares (constructed|destroyed) in pid (\\d+)");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), line); it != std::sregex_iterator(); ++it)
    ++((*it)[1] == "constructed" ? built : destroyed)[(*it)[2]];
  EXPECT_EQ(built, destroyed);
  for (const auto& [pid, n] : built) EXPECT_EQ(n, 1) << "pid " << pid;
}

TEST(Bounds, PassivatedInstancesAreDestroyedOnceAndComeBack) {
  cluster c;
  auto& worker = c.start_worker({}, limits_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<long long>("session/a", "add", 5).get(), 5);
  EXPECT_EQ(cl.ask<long long>("session/b", "add", 7).get(), 7);
  // Idle for its 300 ms: destroyed in the worker, released in the broker.
  ASSERT_TRUE(eventually([&] { return c.stat("passivated") == 2; }, 5s));
  EXPECT_EQ(c.stat("keys"), 0u);
  EXPECT_EQ(cl.ask<long long>("session/a", "get").get(), 0) << "a fresh instance: state is not kept";
  worker.signal(SIGTERM);
  ASSERT_NE(worker.wait_exit(10s), -1);
  const auto err = worker.err();
  EXPECT_EQ(count(err, "session a constructed"), 2u) << err;
  EXPECT_EQ(count(err, "session a destroyed"), 2u) << err;
  EXPECT_EQ(count(err, "session b constructed"), 1u) << err;
  EXPECT_EQ(count(err, "session b destroyed"), 1u) << err;
}

TEST(Bounds, TheCapOnLiveInstancesPassivatesTheLeastRecentlyUsed) {
  cluster c;
  c.start_worker({"--max-instances", "2"});
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  cl.ask<std::int64_t>("counter/a", "add", 1).get();
  cl.ask<std::int64_t>("counter/b", "add", 2).get();
  cl.ask<std::int64_t>("counter/a", "add", 1).get();  // b is now the least recently used
  cl.ask<std::int64_t>("counter/c", "add", 3).get();  // b goes
  ASSERT_TRUE(eventually([&] { return c.stat("passivated") == 1; }, 5s));
  EXPECT_EQ(cl.ask<std::int64_t>("counter/a", "get").get(), 2);
  EXPECT_EQ(cl.ask<std::int64_t>("counter/b", "get").get(), 0);
}

TEST(Bounds, SigkillOfAPoolProcessGivesWorkerLostInWellUnderASecond) {
  cluster c;  // default heartbeats: 1 s, 3 missed
  c.start_worker({"--processes", "1"});
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  const auto pid = std::stoi(cl.ask<std::map<std::string, std::string>>("echo/p", "whoami").get().at("pid"));
  auto slow = cl.ask<long long>(call_options{30s}, "squares", "square_slowly", 2, 20000);
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(slow.wait_for(5s), std::future_status::ready);
  const auto took = steady::now() - t0;
  EXPECT_EQ(code_of(slow), status::worker_lost);
  EXPECT_LT(took, 500ms) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  EXPECT_EQ(c.stat("workers_gone"), 1u);
  ASSERT_TRUE(c.wait_for_workers(1));
  EXPECT_EQ(cl.ask<long long>("squares", "square", 4).get(), 16);
}

// A broker limited to 256 descriptors, and 1000 more connections.
void flood_past_the_descriptor_limit(bool tcp) {
  temp_dir dir;
  const auto listen = tcp ? std::string("tcp://127.0.0.1:*") : dir.ipc("broker.sock");
  process broker({"/usr/bin/prlimit", "--nofile=256", "--", bin("troupe"), "broker", "--listen", listen},
                 dir.path(), "broker");
  const auto endpoint = broker.wait_for_line("troupe broker listening on ", 10s);
  ASSERT_FALSE(endpoint.empty()) << broker.err();
  process worker({bin("troupe-examples-worker"), "--broker", endpoint}, dir.path(), "worker");
  client cl(endpoint);
  ASSERT_TRUE(eventually(
      [&] {
        try {
          return cl.ask<long long>(call_options{500ms}, "squares", "square", 2).get() == 4;
        } catch (const troupe::error&) {
          return false;
        }
      },
      10s));
  rlimit own{};
  getrlimit(RLIMIT_NOFILE, &own);
  own.rlim_cur = own.rlim_max;
  setrlimit(RLIMIT_NOFILE, &own);
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, 4096);
  std::vector<zmq::socket_t> flood;
  const double cpu0 = cpu_seconds(broker.pid());
  const auto t0 = steady::now();
  for (int i = 0; i < 1000; ++i) {
    flood.emplace_back(ctx, zmq::socket_type::dealer);
    flood.back().set(zmq::sockopt::linger, 0);
    flood.back().connect(endpoint);
  }
  std::this_thread::sleep_for(2s);
  const double cpu =
      (cpu_seconds(broker.pid()) - cpu0) / std::chrono::duration<double>(steady::now() - t0).count();
  ASSERT_TRUE(broker.running()) << broker.err();
  EXPECT_LT(cpu, 0.5) << "the broker must not spin on a listener it cannot accept from";
  // The connections it has are served.
  EXPECT_EQ(cl.ask<long long>(call_options{5s}, "squares", "square", 3).get(), 9);
  EXPECT_TRUE(
      eventually([&] { return broker.err().find("out of file descriptors") != std::string::npos; }, 5s))
      << broker.err();
  EXPECT_NE(broker.err().find("open files:"), std::string::npos);
  flood.clear();
  // Once they are gone, new clients connect again.
  EXPECT_TRUE(eventually(
      [&] {
        try {
          client fresh(endpoint);
          return fresh.ask<long long>(call_options{1s}, "squares", "square", 5).get() == 25;
        } catch (const troupe::error&) {
          return false;
        }
      },
      15s));
}

TEST(Bounds, ThousandConnectionsOverA256DescriptorLimitLeaveTheBrokerServingOnIpc) {
  flood_past_the_descriptor_limit(false);
}

TEST(Bounds, ThousandConnectionsOverA256DescriptorLimitLeaveTheBrokerServingOnTcp) {
  flood_past_the_descriptor_limit(true);
}

}  // namespace
}  // namespace troupe::test
