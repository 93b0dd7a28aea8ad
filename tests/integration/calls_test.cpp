// Actors that call actors, with the real broker and real workers: chains,
// cycles refused at once, awaiting without blocking the worker, deadlines
// passed down a chain, and a worker killed in the middle of one.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::status;
using clock_type = std::chrono::steady_clock;

const std::string calls_worker = "troupe-test-calls-worker";
using report = std::map<std::string, std::string>;

// The error an ask ended with (ok if none), and its message.
template <class F>
std::pair<status, std::string> outcome(F&& f) {
  try {
    f();
  } catch (const troupe::error& e) {
    return {e.code(), e.message()};
  }
  return {status::ok, ""};
}

long long ms_since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t).count();
}

TEST(Calls, RelayForwardsAndRefusesItsOwnCycleFromTheCommandLine) {
  cluster c;
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  auto r = c.troupe_cli({"call", "relay/a", "forward", R"("squares")", R"("square")", "[7]"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "49\n");
  r = c.troupe_cli(
      {"call", "relay/a", "forward", R"("relay/b")", R"("forward")", R"(["squares", "square", [7]])"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "49\n");
  const auto start = clock_type::now();
  r = c.troupe_cli(
      {"call", "relay/a", "forward", R"("relay/a")", R"("forward")", R"(["squares", "square", [7]])"});
  EXPECT_LT(ms_since(start), 5000);  // at once, not at the 30 s timeout
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: call_cycle: call cycle: relay/a -> relay/a", 0), 0u) << r.err;
  // The callee's error comes back as it is.
  r = c.troupe_cli({"call", "relay", "forward", R"("squares")", R"("nope")", "[]"});
  EXPECT_EQ(r.err, "error: unknown_method: actor 'squares' has no method 'nope'\n");
  EXPECT_GE(c.stat("call_cycles"), 1u);
}

TEST(Calls, TwoActorsCallEachOtherInAChainOfTen) {
  cluster c;
  c.start_worker({}, calls_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  const auto path = c.client().ask<std::vector<std::string>>("ping/10", "hop", 10).get();
  ASSERT_EQ(path.size(), 11u);
  for (int n = 0; n <= 10; ++n)
    EXPECT_EQ(path[static_cast<std::size_t>(n)],
              std::string(n % 2 == 0 ? "ping/" : "pong/") + std::to_string(n));
}

TEST(Calls, ACycleFailsFastWithItsCodeAndNamesTheChain) {
  cluster c;
  c.start_worker({}, calls_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  const auto start = clock_type::now();
  // relay/a -> relay/b -> relay/a
  const auto [code, message] = outcome([&] {
    c.client()
        .ask<long long>(
            call_options{30s}, "relay/a", "forward", std::string("relay/b"), std::string("forward"),
            std::make_tuple(
                std::string("relay/a"), std::string("forward"),
                std::make_tuple(std::string("patient/x"), std::string("quick"), std::make_tuple(1))))
        .get();
  });
  EXPECT_LT(ms_since(start), 5000);
  EXPECT_EQ(code, status::call_cycle);
  EXPECT_EQ(message.rfind("call cycle: relay/a -> relay/b -> relay/a (", 0), 0u) << message;
  // Without the cycle the same chain works.
  EXPECT_EQ(c.client()
                .ask<int>("relay/a", "forward", std::string("relay/b"), std::string("forward"),
                          std::make_tuple(std::string("patient/x"), std::string("quick"), std::make_tuple(1)))
                .get(),
            2);
}

TEST(Calls, AnUnkeyedSelfCallFailsFastOnOneProcessAndWorksOnTwo) {
  cluster c;
  c.start_worker({}, calls_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto self_call = [&] {
    return c.client().ask<int>(
        call_options{30s}, "relay", "forward", std::string("relay"), std::string("forward"),
        std::make_tuple(std::string("patient/x"), std::string("quick"), std::make_tuple(1)));
  };
  const auto start = clock_type::now();
  const auto [code, message] = outcome([&] { self_call().get(); });
  EXPECT_LT(ms_since(start), 5000);
  EXPECT_EQ(code, status::call_cycle);
  EXPECT_EQ(message.rfind("call cycle: relay -> relay (", 0), 0u) << message;
  // With a second process, the inner call goes to the one not waiting.
  c.start_worker({}, calls_worker);
  ASSERT_TRUE(c.wait_for_workers(2));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(self_call().get(), 2);
}

// The calls worker (patient awaits squares) and an examples worker with 4
// credits, so that squares runs in another process.
bool start_patient_beside_squares(cluster& c) {
  c.start_worker({}, calls_worker);
  c.start_worker({"--credits", "4"});
  return c.wait_for_workers(2);
}

TEST(Calls, AnAwaitingMethodLetsItsWorkerServeOtherKeysAndKeepsItsOwnInstanceNonReentrant) {
  cluster c;
  ASSERT_TRUE(start_patient_beside_squares(c));
  auto& cl = c.client();
  auto slow = cl.ask<long long>("patient/slow", "square_slowly", 3LL, 3000);
  // Sent after it, to the same instance: waits until square_slowly has returned.
  auto after = cl.ask<report>("patient/slow", "report");
  std::vector<std::future<int>> quick;
  for (int i = 0; i < 1000; ++i)
    quick.push_back(cl.ask<int>("patient/k" + std::to_string(i % 50), "quick", i));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(quick[static_cast<std::size_t>(i)].get(), i + 1);
  // All 1000 were served while the slow one was still awaiting.
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(after.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(slow.get(), 9);
  const auto r = after.get();
  EXPECT_EQ(r.at("finished"), "1");
  EXPECT_EQ(r.at("last"), "ok");
}

TEST(Calls, AnAwaitingMethodDoesNotTakeItsWorkersWindow) {
  cluster c;
  ASSERT_TRUE(start_patient_beside_squares(c));
  auto& cl = c.client();
  // Slow replies while busy shrink the broker's window for the patient
  // worker to its least: 2 requests.
  auto b1 = cl.ask<int>("patient/b1", "busy", 300);
  auto b2 = cl.ask<int>("patient/b2", "busy", 300);
  auto b3 = cl.ask<int>("patient/b3", "busy", 300);
  ASSERT_EQ(b3.wait_for(10s), std::future_status::ready);
  // patient/slow awaits a 3 s call; its next message waits behind it in
  // the worker. An ask to another key still goes at once: the awaiting
  // request does not count in the window.
  auto slow = cl.ask<long long>("patient/slow", "square_slowly", 3LL, 3000);
  auto after = cl.ask<report>("patient/slow", "report");
  std::this_thread::sleep_for(200ms);  // the call is out
  const auto start = clock_type::now();
  EXPECT_EQ(cl.ask<int>("patient/other", "quick", 1).get(), 2);
  EXPECT_LT(ms_since(start), 1500) << "the ask waited for the awaiting method";
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout);
  EXPECT_EQ(slow.get(), 9);
  EXPECT_EQ(after.get().at("finished"), "1");
}

TEST(Calls, AChildCallEndsByItsParentsDeadline) {
  cluster c;
  c.start_worker({}, calls_worker);
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  const auto start = clock_type::now();
  const auto [code, message] =
      outcome([&] { cl.ask<long long>(call_options{700ms}, "patient/d", "square_slowly", 2LL, 5000).get(); });
  EXPECT_EQ(code, status::deadline_exceeded) << message;
  EXPECT_LT(ms_since(start), 3000);
  // The call patient/d made ended by the same deadline, not after its own 5 s.
  report r;
  ASSERT_TRUE(eventually(
      [&] {
        r = cl.ask<report>(call_options{2s}, "patient/d", "report").get();
        return r.at("finished") == "1";
      },
      5s));
  EXPECT_EQ(r.at("last"), "deadline_exceeded");
  EXPECT_LT(std::stoll(r.at("last_ms")), 2000) << r.at("last_ms");
}

TEST(Calls, AWorkerKilledMidChainEndsEveryAskInTheChain) {
  cluster c;
  c.start_worker({}, calls_worker);
  c.start_worker({"--processes", "1"});  // squares and echo, under a supervisor that reports its death
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  const auto who = cl.ask<std::map<std::string, std::string>>("echo", "whoami").get();
  const pid_t squares_pid = std::stoi(who.at("pid"));
  // client -> relay/a -> patient/k -> squares (sleeping)
  auto chain = cl.ask<long long>(call_options{60s}, "relay/a", "forward", std::string("patient/k"),
                                 std::string("square_slowly"), std::make_tuple(3LL, 30000));
  std::this_thread::sleep_for(500ms);  // let the chain reach squares
  ASSERT_EQ(chain.wait_for(0s), std::future_status::timeout);
  const auto killed = clock_type::now();
  ASSERT_EQ(::kill(squares_pid, SIGKILL), 0);
  ASSERT_EQ(chain.wait_for(10s), std::future_status::ready) << "an ask of the chain hangs";
  const auto [code, message] = outcome([&] { chain.get(); });
  EXPECT_EQ(code, status::worker_lost) << message;
  EXPECT_LT(ms_since(killed), 10000);
  const auto r = cl.ask<report>(call_options{5s}, "patient/k", "report").get();
  EXPECT_EQ(r.at("last"), "worker_lost");
}

TEST(Calls, MessagesWaitingBehindAnAwaitingInstanceDoNotStarveItsCalls) {
  // Four credits, all held by messages for relay/r: the one running awaits
  // patient/x on the same worker, which must still get that call.
  cluster c;
  c.start_worker({"--credits", "4"}, calls_worker);
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  std::vector<std::future<int>> replies;
  for (int i = 0; i < 40; ++i)
    replies.push_back(cl.ask<int>(call_options{20s}, "relay/r", "forward", std::string("patient/x"),
                                  std::string("quick"), std::make_tuple(i)));
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(replies[static_cast<std::size_t>(i)].wait_for(20s), std::future_status::ready);
    EXPECT_EQ(replies[static_cast<std::size_t>(i)].get(), i + 1);
  }
}

TEST(Calls, APlainMethodMayBlockOnAnAskAndATellGoesOneWay) {
  cluster c;
  c.start_worker({}, calls_worker);
  c.start_worker();  // squares
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<long long>("ping/b", "square_blocking", 12LL).get(), 144);
  // Blocking on a call that needs its own process holds that process: the
  // call ends by the caller's deadline, not later.
  const auto start = clock_type::now();
  const auto [code, message] = outcome([&] {
    cl.ask<std::vector<std::string>>(call_options{800ms}, "ping/b", "hop_blocking", std::string("pong/c"))
        .get();
  });
  EXPECT_EQ(code, status::deadline_exceeded) << message;
  EXPECT_LT(ms_since(start), 3000);
  cl.ask<void>("patient/a", "poke", std::string("patient/b")).get();
  EXPECT_TRUE(eventually([&] { return cl.ask<int>("patient/b", "bumps").get() == 1; }, 5s));
}

TEST(Calls, TheOrdersExampleAsksInventoryAndLedger) {
  cluster c;
  c.start_worker({}, "example-orders-worker");
  ASSERT_TRUE(c.wait_for_workers(1));
  const auto r = run({bin("example-orders-client"), c.endpoint()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "order/1: placed: 7 lamp left\n"
            "order/2: placed: 4 lamp left\n"
            "order/3: refused: insufficient funds\n"
            "lamps in stock: 4, alice's balance: 1000\n");
}

}  // namespace
}  // namespace troupe::test
