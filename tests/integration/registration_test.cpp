// A worker's registration as its operator sees it: acknowledged by the
// broker, with the broker's liveness settings; refused with a reason and
// exit code 2; and "no broker answering" said rather than "serving".
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

bool err_contains(process& p, const std::string& text, std::chrono::milliseconds timeout) {
  return eventually([&] { return p.err().find(text) != std::string::npos; }, timeout);
}

TEST(Registration, AWorkerSaysItServesOnlyOnceTheBrokerAcknowledged) {
  cluster c;
  auto& w = c.start_worker({"--name", "acked"});
  ASSERT_TRUE(c.wait_for_workers(1));
  EXPECT_TRUE(err_contains(w, "registered with the broker at " + c.endpoint() + ": serving", 5s)) << w.err();
}

TEST(Registration, AWorkerWithNoBrokerSaysSoAndNeverClaimsToServe) {
  temp_dir dir;
  process w({bin("troupe-examples-worker"), "--broker", dir.ipc("nobody.sock"), "--heartbeat-ms", "100"},
            dir.path(), "lonely-worker");
  EXPECT_TRUE(err_contains(w, "no broker answering at " + dir.ipc("nobody.sock") + " yet; still trying", 5s))
      << w.err();
  EXPECT_EQ(w.err().find("registered"), std::string::npos) << w.err();
}

TEST(Registration, TheWorkerTakesTheBrokersHeartbeatSettings) {
  // The broker beats every 100 ms and declares a worker dead after 3
  // silent beats; the worker asks for 5 s. If the worker kept its own
  // setting, the broker would drop it within half a second.
  cluster c({"--heartbeat-ms", "100", "--liveness", "3"});
  c.start_worker({"--heartbeat-ms", "5000"});
  ASSERT_TRUE(c.wait_for_workers(1));
  std::this_thread::sleep_for(1500ms);  // several of the broker's liveness windows
  EXPECT_EQ(c.stat("workers"), 1u);
  EXPECT_EQ(c.client().ask<long long>("squares", "square", 3).get(), 9);
}

TEST(Registration, ARefusedWorkerLogsTheReasonAndExitsWithCode2) {
  cluster c;
  auto& w = c.start_worker({"--name", std::string(129, 'x')});  // the protocol wants 1..128 bytes
  const int status = w.wait_exit(10s);
  ASSERT_TRUE(WIFEXITED(status)) << w.err();
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(w.err().find("the broker refused this worker: READY name must be a str of 1..128 bytes"),
            std::string::npos)
      << w.err();
}

TEST(Registration, ASupervisorStopsItsPoolWhenTheBrokerRefusesIt) {
  cluster c;
  // Members are named NAME-1, NAME-2: 129 bytes, one over the protocol's bound.
  auto& pool = c.start_worker({"--name", std::string(127, 'x'), "--processes", "2"});
  const int status = pool.wait_exit(15s);
  ASSERT_TRUE(WIFEXITED(status)) << pool.err();
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(pool.err().find("(refused); stopping the pool"), std::string::npos) << pool.err();
}

}  // namespace
}  // namespace troupe::test
