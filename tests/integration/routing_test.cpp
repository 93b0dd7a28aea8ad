// End to end through the real broker and real worker executables: calls,
// load balancing, sticky keys, ordering, errors and the command line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <set>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::status;

template <class F>
status error_code_of(F&& f) {
  try {
    f();
  } catch (const troupe::error& e) {
    return e.code();
  }
  return status::ok;
}

TEST(Routing, AskTellAndMapThroughAPool) {
  cluster c;
  c.start_worker({"--processes", "2"});
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  EXPECT_EQ(cl.ask<long long>("squares", "square", 7).get(), 49);
  std::vector<long long> xs;
  for (long long i = 0; i < 200; ++i) xs.push_back(i);
  const auto ys = cl.map<long long>(troupe::map_options{.window = 16}, "squares", "square", xs);
  ASSERT_EQ(ys.size(), xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(ys[i], xs[i] * xs[i]);
  const auto v = cl.ask<std::vector<double>>("vectorize", "apply", std::vector<double>{1, 2, 3}).get();
  EXPECT_EQ(v, (std::vector<double>{0, 1, 4}));
}

TEST(Routing, UnkeyedCallsSpreadAndKeyedCallsStick) {
  cluster c;
  c.start_worker({"--processes", "3"});
  ASSERT_TRUE(c.wait_for_workers(3));
  auto& cl = c.client();
  using who = std::map<std::string, std::string>;
  std::set<std::string> unkeyed_pids;
  std::vector<std::future<who>> futures;
  for (int i = 0; i < 60; ++i) futures.push_back(cl.ask<who>("echo", "whoami"));
  for (auto& f : futures) unkeyed_pids.insert(f.get().at("pid"));
  EXPECT_EQ(unkeyed_pids.size(), 3u) << "unkeyed calls should reach every worker";

  for (const std::string key : {"alice", "bob", "carol", "dave"}) {
    std::set<std::string> pids;
    for (int i = 0; i < 20; ++i) {
      auto w = cl.ask<who>("echo/" + key, "whoami").get();
      EXPECT_EQ(w.at("address"), "echo/" + key);
      pids.insert(w.at("pid"));
    }
    EXPECT_EQ(pids.size(), 1u) << key << " moved between workers";
  }
}

TEST(Routing, KeyedMessagesAreHandledInArrivalOrder) {
  cluster c;
  c.start_worker({"--processes", "2", "--credits", "4"});
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  std::vector<std::future<std::int64_t>> totals;
  for (int i = 1; i <= 300; ++i) {
    totals.push_back(cl.ask<std::int64_t>("counter/ordered", "add", i));
    cl.tell("counter/ordered", "add", 0);  // interleaved tells keep their place
  }
  std::int64_t expected = 0;
  for (int i = 1; i <= 300; ++i) {
    expected += i;
    EXPECT_EQ(totals[static_cast<std::size_t>(i - 1)].get(), expected);
  }
  EXPECT_EQ(cl.ask<std::int64_t>("counter/ordered", "get").get(), 45150);
  EXPECT_EQ(cl.ask<std::int64_t>("counter/fresh", "get").get(), 0);
}

// With few credits most requests wait in the broker's queues; every name's
// queue drains as credits come back, and keyed order still holds.
TEST(Routing, QueuedRequestsOfManyNamesAllComplete) {
  cluster c;
  c.start_worker({"--credits", "1"});
  c.start_worker({"--credits", "2"});
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  std::vector<std::future<long long>> squares;
  std::vector<std::future<std::vector<double>>> applied;
  std::vector<std::future<std::int64_t>> counted;
  for (int i = 0; i < 300; ++i) {
    squares.push_back(cl.ask<long long>("squares", "square", i));
    applied.push_back(cl.ask<std::vector<double>>("vectorize", "apply", std::vector<double>{double(i)}));
    counted.push_back(cl.ask<std::int64_t>("counter/q", "add", 1));
  }
  for (int i = 0; i < 300; ++i) {
    const auto x = static_cast<double>(i);
    EXPECT_EQ(squares[static_cast<std::size_t>(i)].get(), i * i);
    EXPECT_EQ(applied[static_cast<std::size_t>(i)].get(), std::vector<double>{x > 2 ? x + 1 : x - 1});
    EXPECT_EQ(counted[static_cast<std::size_t>(i)].get(), i + 1);
  }
  EXPECT_EQ(c.stat("queued"), 0u);
  EXPECT_EQ(c.stat("in_flight"), 0u);
}

// Workers hosting different names: queued requests only ever go to a
// worker that hosts their name, including names registered after it.
TEST(Routing, QueuedRequestsGoOnlyToWorkersHostingTheirName) {
  cluster c;
  c.start_worker({"--credits", "1"});
  ASSERT_TRUE(c.wait_for_workers(1));
  c.start_worker({"--credits", "1"}, "readme-greeter-worker");
  ASSERT_TRUE(c.wait_for_workers(2));
  auto& cl = c.client();
  std::vector<std::future<std::string>> greetings;
  std::vector<std::future<long long>> squares;
  for (int i = 0; i < 100; ++i) {
    greetings.push_back(cl.ask<std::string>("greeter", "greet", std::string("x")));
    squares.push_back(cl.ask<long long>("squares", "square", i));
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(greetings[static_cast<std::size_t>(i)].get(), "hello, x #" + std::to_string(i + 1));
    EXPECT_EQ(squares[static_cast<std::size_t>(i)].get(), i * i);
  }
}

TEST(Routing, EveryErrorCodeReachesTheCaller) {
  cluster c({"--queue-limit", "1"});
  c.start_worker({"--credits", "1"});
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  EXPECT_EQ(error_code_of([&] { cl.ask<int>("nope", "x").get(); }), status::unknown_actor);
  EXPECT_EQ(error_code_of([&] { cl.ask<int>("squares", "nope").get(); }), status::unknown_method);
  EXPECT_EQ(error_code_of([&] { cl.ask<int>("squares", "square", "seven").get(); }), status::bad_args);
  EXPECT_EQ(error_code_of([&] { cl.ask<int>("squares", "square", 1, 2).get(); }), status::bad_args);
  try {
    cl.ask<std::string>("echo", "fail", std::string("disk on fire")).get();
    FAIL() << "expected actor_error";
  } catch (const troupe::error& e) {
    EXPECT_EQ(e.code(), status::actor_error);
    EXPECT_EQ(e.message(), "disk on fire");
  }
  EXPECT_EQ(
      error_code_of([&] { cl.ask<int>(call_options{200ms}, "squares", "square_slowly", 1, 600).get(); }),
      status::deadline_exceeded);
  // The worker still sleeps on that one; its late reply returns the credit.
  ASSERT_TRUE(eventually([&] { return c.stat("in_flight") == 0; }, 5s));
  // The worker is busy sleeping (1 credit), one request waits in the queue
  // (limit 1): the next is refused at once.
  auto busy = cl.ask<long long>("squares", "square_slowly", 2, 1000);  // margin for slow CI
  std::this_thread::sleep_for(50ms);
  auto queued = cl.ask<long long>("squares", "square_slowly", 3, 0);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(error_code_of([&] { cl.ask<long long>("squares", "square", 4).get(); }), status::overloaded);
  EXPECT_EQ(queued.get(), 9);
  EXPECT_EQ(error_code_of([&] { cl.ask<std::string>("$broker", "nope").get(); }), status::unknown_method);
  EXPECT_EQ(cl.ask<std::string>("$broker", "ping").get(), "pong");
  EXPECT_GE(c.stat("overloaded"), 1u);
  EXPECT_GE(c.stat("deadline_exceeded"), 1u);
}

TEST(Routing, ExpiredQueuedRequestsLeaveTheirQueue) {
  // One credit and room for 3 per queue. The worker is busy, so keyed asks
  // wait in its keyed queue and unkeyed ones in the name's queue; they
  // expire newest first. If an expired request kept its place, the asks
  // after it would be refused as `overloaded`.
  cluster c({"--queue-limit", "3"});
  c.start_worker({"--credits", "1"});
  ASSERT_TRUE(c.wait_for_workers(1));
  auto& cl = c.client();
  auto busy = cl.ask<long long>("squares/k", "square_slowly", 2, 3000);  // margin for slow CI
  ASSERT_TRUE(eventually([&] { return c.stat("in_flight") == 1; }, 5s));
  std::vector<std::future<long long>> expiring;
  for (const auto* address : {"squares/k", "squares"})
    for (auto ms : {400ms, 300ms, 200ms})
      expiring.push_back(cl.ask<long long>(call_options{ms}, address, "square", 3));
  for (auto& f : expiring) EXPECT_EQ(error_code_of([&] { f.get(); }), status::deadline_exceeded);
  EXPECT_EQ(c.stat("queued"), 0u);
  std::vector<std::future<long long>> later;
  for (const auto* address : {"squares/k", "squares"})
    for (long long x = 1; x <= 3; ++x) later.push_back(cl.ask<long long>(address, "square", x));
  EXPECT_EQ(busy.get(), 4);
  for (std::size_t i = 0; i < later.size(); ++i) {
    const long long x = static_cast<long long>(i % 3) + 1;
    EXPECT_EQ(later[i].get(), x * x);
  }
  EXPECT_EQ(c.stat("overloaded"), 0u);
}

TEST(Routing, AsksEndWhenNoBrokerAnswers) {
  temp_dir dir;
  troupe::client cl(dir.ipc("nobody.sock"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(error_code_of([&] { cl.ask<int>(call_options{300ms}, "squares", "square", 2).get(); }),
            status::deadline_exceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(CommandLine, CallStatsAndBench) {
  cluster c;
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  auto r = c.troupe_cli({"call", "squares", "square", "12"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "144\n");
  r = c.troupe_cli({"call", "echo", "echo", R"({"a":[1,-2,2.5,null,true,"x"]})"});
  EXPECT_EQ(r.out, "{\"a\":[1,-2,2.5,null,true,\"x\"]}\n");
  // A JSON array stays one argument; negative numbers are values, not flags.
  r = c.troupe_cli({"call", "vectorize", "apply", "[-1, 2.5]"});
  EXPECT_EQ(r.out, "[-2.0,3.5]\n") << r.err;
  r = c.troupe_cli({"call", "squares", "square", "-5"});
  EXPECT_EQ(r.out, "25\n") << r.err;
  r = c.troupe_cli({"call", "squares", "square_slowly", "3", "1"});
  EXPECT_EQ(r.out, "9\n") << r.err;
  r = c.troupe_cli({"call", "squares", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: unknown_method: actor 'squares' has no method 'nope'\n");
  r = c.troupe_cli({"call", "nope", "x"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: unknown_actor: ", 0), 0u) << r.err;
  r = c.troupe_cli({"call", "squares", "square", "not json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos);
  r = c.troupe_cli({"call"});
  EXPECT_EQ(r.exit_code, 2);
  r = c.troupe_cli({"stats"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("\"workers\":1"), std::string::npos) << r.out;
  r = c.troupe_cli({"bench", "--requests", "500", "--window", "8", "--json", "squares", "square", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* key : {"\"requests\":500", "\"errors\":0", "\"seconds\"", "\"throughput\"", "\"p50_us\"",
                          "\"p99_us\"", "\"p999_us\""})
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
}

TEST(CommandLine, CallWithoutABrokerSaysSoWithinTheTimeout) {
  temp_dir dir;
  auto r = run({bin("troupe"), "call", "--broker", dir.ipc("none.sock"), "--timeout-ms", "200", "squares",
                "square", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: no broker at " + dir.ipc("none.sock") + " (is 'troupe broker' running?)\n");
  // With the default 30 s timeout it still says so within a second or two.
  const auto start = std::chrono::steady_clock::now();
  r = run({bin("troupe"), "stats", "--broker", "tcp://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: no broker at tcp://127.0.0.1:1 (is 'troupe broker' running?)\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace troupe::test
