// Faults and lifecycle with real processes: SIGKILL mid-request, a broker
// restart, graceful stops, and the lazy-construction seed scenario.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <regex>
#include <set>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::status;

// Fast liveness so a dead worker is noticed within about 600 ms.
const std::vector<std::string> fast_heartbeat = {"--heartbeat-ms", "200", "--liveness", "3"};

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::size_t count_lines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(Faults, KilledWorkerGivesWorkerLostAndItsKeysMove) {
  cluster c(fast_heartbeat);
  auto& victim = c.start_worker(fast_heartbeat);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<std::int64_t>("counter/k", "add", 5).get(), 5);
  auto slow = cl.ask<long long>(call_options{10s}, "squares", "square_slowly", 3, 5000);
  std::this_thread::sleep_for(200ms);  // let it reach the worker
  const auto killed_at = std::chrono::steady_clock::now();
  victim.signal(SIGKILL);
  try {
    slow.get();
    FAIL() << "expected worker_lost";
  } catch (const troupe::error& e) {
    EXPECT_EQ(e.code(), status::worker_lost);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 3s);
  EXPECT_EQ(c.stat("workers"), 0u);
  {
    // The dead worker's keys are forgotten at once.
    auto actors = c.management("actors");
    auto by_name = actors.get().as<std::map<std::string, std::map<std::string, std::uint64_t>>>();
    EXPECT_EQ(by_name.at("counter").at("keys"), 0u);
  }

  // The name is known, so a request now waits for a worker instead of failing.
  auto waiting = cl.ask<std::int64_t>("counter/k", "get");
  c.start_worker(fast_heartbeat);
  EXPECT_EQ(waiting.get(), 0);  // a fresh instance: state lived in the dead process
  EXPECT_EQ(cl.ask<std::int64_t>("counter/k", "add", 2).get(), 2);
}

TEST(Faults, KillingAPoolWorkerMidLoadEndsEveryRequestAndTheSupervisorRestartsIt) {
  cluster c(fast_heartbeat);
  c.start_worker(with({"--processes", "3"}, fast_heartbeat));
  ASSERT_TRUE(c.wait_for_workers(3));
  auto& cl = c.client();
  const auto victim =
      std::stoi(cl.ask<std::map<std::string, std::string>>("echo/victim", "whoami").get().at("pid"));

  std::vector<std::future<long long>> results;
  for (long long i = 0; i < 300; ++i) results.push_back(cl.ask<long long>("squares", "square_slowly", i, 10));
  std::this_thread::sleep_for(150ms);
  ASSERT_EQ(kill(victim, SIGKILL), 0);

  int ok = 0, lost = 0;
  for (long long i = 0; i < 300; ++i) {
    ASSERT_EQ(results[static_cast<std::size_t>(i)].wait_for(20s), std::future_status::ready)
        << "request " << i << " hangs";
    try {
      EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * i);
      ++ok;
    } catch (const troupe::error& e) {
      EXPECT_EQ(e.code(), status::worker_lost) << e.what();
      ++lost;
    }
  }
  EXPECT_EQ(ok + lost, 300);
  EXPECT_GE(lost, 1);
  EXPECT_GE(ok, 200);
  ASSERT_TRUE(c.wait_for_workers(3, 10s)) << "the supervisor should restart the killed worker";
  const auto again =
      std::stoi(cl.ask<std::map<std::string, std::string>>("echo/victim", "whoami").get().at("pid"));
  EXPECT_NE(again, victim);
}

// Heartbeats come from the worker's I/O thread, so a method that runs for
// many liveness periods does not make its worker look dead.
TEST(Faults, ALongMethodDoesNotLookLikeADeadWorker) {
  const std::vector<std::string> tight = {"--heartbeat-ms", "100", "--liveness", "3"};
  cluster c(tight);
  c.start_worker(tight);
  ASSERT_TRUE(c.wait_for_workers(1));
  EXPECT_EQ(c.client().ask<long long>("squares", "square_slowly", 4, 1500).get(), 16);
  EXPECT_EQ(c.stat("worker_lost"), 0u);
  EXPECT_EQ(c.stat("workers"), 1u);
}

TEST(Faults, BrokerRestartWhileWorkersRun) {
  cluster c(fast_heartbeat);
  c.start_worker(with({"--processes", "2"}, fast_heartbeat));
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<long long>("squares", "square", 5).get(), 25);
  c.stop_broker();
  // With the broker gone, an ask still ends.
  try {
    cl.ask<long long>(call_options{300ms}, "squares", "square", 6).get();
    FAIL() << "no broker, yet a value";
  } catch (const troupe::error& e) {
    EXPECT_EQ(e.code(), status::deadline_exceeded);
  }
  c.start_broker();
  ASSERT_TRUE(c.wait_for_workers(2, 10s)) << "workers should register with the new broker";
  EXPECT_EQ(cl.ask<long long>("squares", "square", 7).get(), 49);
  EXPECT_EQ(cl.ask<std::int64_t>("counter/after", "add", 1).get(), 1);
}

TEST(Lifecycle, GracefulStopFinishesHeldRequestsAndDestroysOnce) {
  cluster c;
  auto& worker = c.start_worker({"--credits", "4"});
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  std::vector<std::future<long long>> held;
  for (long long i = 1; i <= 4; ++i) held.push_back(cl.ask<long long>("squares", "square_slowly", i, 150));
  std::this_thread::sleep_for(100ms);
  worker.signal(SIGTERM);
  for (long long i = 1; i <= 4; ++i) EXPECT_EQ(held[static_cast<std::size_t>(i - 1)].get(), i * i);
  const int status = worker.wait_exit(10s);
  ASSERT_NE(status, -1) << "worker did not stop";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(count_lines(worker.err(), "squares constructed"), 1u);
  EXPECT_EQ(count_lines(worker.err(), "squares destroyed"), 1u);
  EXPECT_TRUE(eventually([&] { return c.stat("workers") == 0; }, 5s));
  EXPECT_EQ(c.stat("worker_lost"), 0u);
}

TEST(Lifecycle, KeysOfAWorkerThatLeavesGracefullyMoveWithoutErrors) {
  cluster c;
  auto& a = c.start_worker();
  auto& b = c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  using who = std::map<std::string, std::string>;
  const auto pid = cl.ask<who>("echo/d", "whoami").get().at("pid");
  auto& leaving = std::to_string(a.pid()) == pid ? a : b;
  // Requests keep coming while the key's worker drains and leaves.
  std::vector<std::future<who>> during;
  leaving.signal(SIGTERM);
  for (int i = 0; i < 50; ++i) {
    during.push_back(cl.ask<who>("echo/d", "whoami"));
    std::this_thread::sleep_for(5ms);
  }
  for (auto& f : during) EXPECT_NO_THROW(f.get());
  ASSERT_NE(leaving.wait_exit(10s), -1);
  EXPECT_NE(cl.ask<who>("echo/d", "whoami").get().at("pid"), pid);
  EXPECT_EQ(c.stat("worker_lost"), 0u);
}

// The seed scenario: 8 inputs on a pool of 3 processes builds at most 3
// instances, and each is destroyed exactly once, in its own process.
TEST(Lifecycle, EightInputsOnThreeProcesses) {
  cluster c;
  auto& pool = c.start_worker({"--processes", "3"});
  ASSERT_TRUE(c.wait_for_workers(3));
  std::vector<std::tuple<long long, int>> inputs;
  for (long long x = 1; x <= 8; ++x) inputs.emplace_back(x, 50);
  const auto out =
      c.client().map<long long>(troupe::map_options{.window = 8}, "squares", "square_slowly", inputs);
  EXPECT_EQ(out, (std::vector<long long>{1, 4, 9, 16, 25, 36, 49, 64}));
  pool.signal(SIGTERM);
  ASSERT_NE(pool.wait_exit(15s), -1);
  const auto err = pool.err();
  std::set<std::string> built, destroyed;
  std::smatch m;
  const std::regex line("squares (constructed|destroyed) in pid (\\d+)");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), line); it != std::sregex_iterator(); ++it) {
    auto& set = (*it)[1] == "constructed" ? built : destroyed;
    EXPECT_TRUE(set.insert((*it)[2]).second) << "twice in one process: " << (*it)[0];
  }
  EXPECT_GE(built.size(), 1u);
  EXPECT_LE(built.size(), 3u);
  EXPECT_EQ(built, destroyed);
}

TEST(Lifecycle, DuplicateRegistrationIsRefusedAtStartup) {
  auto r = run({bin("troupe-test-duplicate-worker")}, 10s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("actor name 'dup' is registered twice"), std::string::npos) << r.err;
  r = run({bin("troupe-examples-worker"), "--list"}, 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("squares: square square_slowly"), std::string::npos) << r.out;
  r = run({bin("troupe-examples-worker"), "--processes", "0"}, 10s);
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace troupe::test
