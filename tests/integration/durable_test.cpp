// Durable messages with real processes (issue 11, docs/durability.md): the
// broker SIGKILLed and restarted while producers send durable tells and
// asks, workers SIGKILLed mid-message, poison messages, retries, a store
// that cannot be written, one activation per key across a restart, and a
// busy worker registering again at once. Every wait is bounded; the
// journal worker (journal_worker.cpp) says what ran, where, how often.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

const std::string journal_worker = "troupe-test-journal-worker";

client_options options_with_timeout(std::chrono::milliseconds t) {
  client_options o;
  o.timeout = t;
  o.curve = {};
  return o;
}

struct journal_entry {
  std::string kind, address, tag, pid;
  long long extra = 0;
};

std::vector<journal_entry> read_journal(const std::filesystem::path& path) {
  std::vector<journal_entry> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    journal_entry e;
    words >> e.kind >> e.address;
    if (e.kind == "add" || e.kind == "crash" || e.kind == "fail") words >> e.tag >> e.pid >> e.extra;
    if (e.kind == "new" || e.kind == "del") words >> e.pid;
    out.push_back(e);
  }
  return out;
}

// Times each tag was applied by journal.add.
std::map<std::string, int> applied(const std::filesystem::path& path) {
  std::map<std::string, int> n;
  for (const auto& e : read_journal(path))
    if (e.kind == "add") ++n[e.tag];
  return n;
}

// Live instances of `address`: built and not destroyed, in live processes.
int live_instances(const std::filesystem::path& path, const std::string& address) {
  std::map<std::string, int> per_pid;
  for (const auto& e : read_journal(path)) {
    if (e.address != address) continue;
    if (e.kind == "new") ++per_pid[e.pid];
    if (e.kind == "del") --per_pid[e.pid];
  }
  int live = 0;
  for (const auto& [pid, n] : per_pid)
    if (n > 0 && kill(std::stoi(pid), 0) == 0) ++live;
  return live;
}

class DurableCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    c = std::make_unique<cluster>(std::vector<std::string>{"--heartbeat-ms", "200"});
    journal = c->dir().path() / "journal.txt";
    setenv("TROUPE_JOURNAL", journal.c_str(), 1);
  }
  void TearDown() override { unsetenv("TROUPE_JOURNAL"); }

  void kill_broker() {
    c->broker().signal(SIGKILL);
    c->broker().wait_exit(5s);
  }
  // Asks until it works (a worker registered), bounded.
  bool answered(const std::string& address, std::chrono::milliseconds within = 10s) {
    return eventually(
        [&] {
          try {
            c->client().ask<long long>(call_options{300ms}, address, "get").get();
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        within);
  }

  std::unique_ptr<cluster> c;
  std::filesystem::path journal;
};

// 20 SIGKILLs of the broker while two producers send durable tells and
// asks: every confirmed tell ran, every answered ask ran, none lost.
TEST_F(DurableCluster, BrokerKilledTwentyTimesLosesNoConfirmedMessage) {
  c->start_worker({"--name", "w1"}, journal_worker);
  c->start_worker({"--name", "w2"}, journal_worker);
  ASSERT_TRUE(answered("journal/x"));
  std::mutex mu;
  std::set<std::string> confirmed, answered_asks;
  std::atomic<bool> stop{false};
  std::atomic<int> unconfirmed{0};
  auto producer = [&](const std::string& prefix) {
    troupe::client p(c->endpoint(), options_with_timeout(8000ms));
    for (int i = 0; !stop; ++i) {
      const auto tag = prefix + std::to_string(i);
      const bool ask = i % 4 == 3;
      try {
        if (ask) {
          p.ask<long long>(call_options{8000ms, true, "id-" + tag}, "journal/y", "add", tag).get();
          std::lock_guard lock(mu);
          answered_asks.insert(tag);
        } else {
          p.tell(tell_options{8000ms, "id-" + tag}, "journal/x", "add", tag).get();
          std::lock_guard lock(mu);
          confirmed.insert(tag);
        }
      } catch (const std::exception&) {
        ++unconfirmed;  // not confirmed: it may or may not run
      }
    }
  };
  std::thread a(producer, "a"), b(producer, "b");
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(150ms);
    kill_broker();
    c->start_broker();
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  a.join();
  b.join();
  // Everything confirmed runs, eventually.
  std::map<std::string, int> ran;
  const bool all_ran = eventually(
      [&] {
        ran = applied(journal);
        for (const auto& t : confirmed)
          if (!ran.count(t)) return false;
        for (const auto& t : answered_asks)
          if (!ran.count(t)) return false;
        return true;
      },
      20s);
  int duplicates = 0;
  for (const auto& [tag, n] : ran) duplicates += n - 1;
  std::printf("confirmed tells %zu, answered asks %zu, unconfirmed %d, duplicates %d\n", confirmed.size(),
              answered_asks.size(), unconfirmed.load(), duplicates);
  std::string missing;
  for (const auto* tags : {&confirmed, &answered_asks})
    for (const auto& t : *tags)
      if (!ran.count(t)) missing += " " + t;
  EXPECT_TRUE(all_ran) << "confirmed messages that never ran:" << missing
                       << "\nbroker stats: " << (all_ran ? std::string() : [&] {
                            auto r = c->troupe_cli({"stats"});
                            return r.out + r.err;
                          }());
  EXPECT_GT(confirmed.size(), 20u);  // enough traffic to mean something, even under ASan on a loaded machine
}

TEST_F(DurableCluster, AWorkerKilledMidMessageHasItDeliveredAgain) {
  auto& first = c->start_worker({"--name", "w1"}, journal_worker);
  ASSERT_TRUE(answered("journal/k"));
  c->client().tell(tell_options{5000ms, "slow-1"}, "journal/k", "slow_add", "slow-1", 1500).get();
  ASSERT_TRUE(eventually([&] { return live_instances(journal, "journal/k") == 1; }, 5s));
  std::this_thread::sleep_for(300ms);  // it runs now
  first.signal(SIGKILL);
  first.wait_exit(5s);
  c->start_worker({"--name", "w2"}, journal_worker);
  EXPECT_TRUE(eventually([&] { return applied(journal)["slow-1"] >= 1; }, 15s)) << "not delivered again";
}

TEST_F(DurableCluster, APoisonMessageBecomesADeadLetter) {
  c = std::make_unique<cluster>(std::vector<std::string>{"--heartbeat-ms", "200", "--max-deliveries", "3"});
  journal = c->dir().path() / "journal.txt";
  setenv("TROUPE_JOURNAL", journal.c_str(), 1);
  c->start_worker({"--name", "pool", "--processes", "1"}, journal_worker);
  ASSERT_TRUE(answered("journal"));
  c->client().tell(tell_options{5000ms, "poison-1"}, "journal", "crash", "p1").get();
  ASSERT_TRUE(eventually(
      [&] {
        auto r = c->troupe_cli({"dead", "list"});
        return r.exit_code == 0 && r.out.find("poison-1") != std::string::npos;
      },
      30s));
  const auto listed = c->troupe_cli({"dead", "list"});
  EXPECT_NE(listed.out.find("\"reason\":\"poison\""), std::string::npos) << listed.out;
  int crashes = 0;
  for (const auto& e : read_journal(journal)) crashes += e.kind == "crash";
  EXPECT_EQ(crashes, 3);
  const auto purged = c->troupe_cli({"dead", "purge", "--all"});
  EXPECT_EQ(purged.exit_code, 0) << purged.err;
  EXPECT_EQ(c->troupe_cli({"dead", "list"}).out, "[]\n");
}

TEST_F(DurableCluster, RetriesFollowTheirBackoffThenDeadLetter) {
  c->start_worker({"--name", "w1"}, journal_worker);
  ASSERT_TRUE(answered("journal"));
  try {
    c->client().ask<long long>(call_options{10000ms, true, "flaky-1"}, "flaky", "fail", "f1").get();
    FAIL() << "a method that always throws succeeded";
  } catch (const troupe::error& e) {
    EXPECT_EQ(e.code(), protocol::status::actor_error);
  }
  std::vector<long long> at;
  for (const auto& e : read_journal(journal))
    if (e.kind == "fail") at.push_back(e.extra);
  ASSERT_EQ(at.size(), 3u);
  EXPECT_GE(at[1] - at[0], 190) << "the first retry came before its 200 ms backoff";
  EXPECT_GE(at[2] - at[1], 390) << "the second retry came before its 400 ms backoff";
  const auto listed = c->troupe_cli({"dead", "list"});
  EXPECT_NE(listed.out.find("\"reason\":\"attempts\""), std::string::npos) << listed.out;
}

TEST_F(DurableCluster, AStoreThatCannotBeWrittenRefusesAndServesTheRest) {
  c->stop_broker();
  c = nullptr;
  temp_dir ro;
  const auto store = (ro.path() / "s.store").string();
  // A store file made immutable: even root cannot write it.
  if (std::system(("touch " + store + " && chattr +i " + store + " 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "chattr +i is not available here";
  c = std::make_unique<cluster>(std::vector<std::string>{"--store", store});
  journal = c->dir().path() / "journal.txt";
  setenv("TROUPE_JOURNAL", journal.c_str(), 1);
  c->start_worker({"--name", "w1"}, journal_worker);
  ASSERT_TRUE(answered("journal/x"));
  const auto r = c->troupe_cli({"tell", "--durable", "journal/x", "add", "\"never\""});
  std::system(("chattr -i " + store).c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("store_unavailable"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cannot be written"), std::string::npos) << r.err;
  EXPECT_EQ(applied(journal).count("never"), 0u);
  EXPECT_EQ(c->troupe_cli({"tell", "journal/x", "add", "\"plain\""}).exit_code, 0);
  EXPECT_TRUE(eventually([&] { return applied(journal).count("plain") == 1; }, 5s));
}

// A full disk, made by a file size limit on the broker: durable messages
// are refused once the store cannot grow, nothing refused runs, and every
// confirmed message is in the store.
TEST_F(DurableCluster, AFullStoreRefusesInsteadOfConfirming) {
  c->stop_broker();
  c = nullptr;
  temp_dir d;
  const auto ep = d.ipc("full.sock");
  const auto store = (d.path() / "full.store").string();
  process broker(
      {"/bin/bash", "-c",
       "trap '' XFSZ; ulimit -f 512; exec " + bin("troupe") + " broker --listen " + ep + " --store " + store},
      d.path(), "broker");
  ASSERT_FALSE(broker.wait_for_line("troupe broker listening on ", 10s).empty()) << broker.err();
  troupe::client p(ep, options_with_timeout(5000ms));
  // No worker: the messages wait in the store and fill it.
  process worker({bin(journal_worker), "--broker", ep}, d.path(), "worker");
  ASSERT_TRUE(eventually(
      [&] {
        try {
          p.ask<long long>(call_options{300ms}, "journal", "get").get();
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s));
  worker.signal(SIGKILL);
  worker.wait_exit(5s);
  const std::string big(20000, 'x');
  int stored = 0;
  std::string refusal;
  for (int i = 0; i < 200 && refusal.empty(); ++i) {
    try {
      p.tell(tell_options{5000ms, "full-" + std::to_string(i)}, "journal", "add", big).get();
      ++stored;
    } catch (const troupe::error& e) {
      refusal = e.message();
      EXPECT_EQ(e.code(), protocol::status::store_unavailable);
    }
  }
  EXPECT_FALSE(refusal.empty()) << "200 messages of 20 kB fit in a 512 kB file";
  EXPECT_NE(refusal.find("the disk is full"), std::string::npos) << refusal;
  EXPECT_GT(stored, 0);
  // Plain messages still go.
  EXPECT_EQ(p.ask<std::string>("$broker", "ping").get(), "pong");
  EXPECT_TRUE(broker.running());
}

// The scenario: journal/x lives on a worker that is busy when the
// broker restarts, and the other worker registers first. One instance of
// journal/x remains, and it has every message.
TEST_F(DurableCluster, OneActivationPerKeyAcrossABrokerRestart) {
  c->start_worker({"--name", "w1"}, journal_worker);
  ASSERT_TRUE(answered("journal/x"));
  c->start_worker({"--name", "w2"}, journal_worker);
  ASSERT_TRUE(c->wait_for_workers(2));
  for (int i = 0; i < 20; ++i) c->client().tell("journal/x", "slow_add", "slow" + std::to_string(i), 100);
  std::this_thread::sleep_for(300ms);
  kill_broker();
  std::this_thread::sleep_for(500ms);
  c->start_broker();
  for (int i = 0; i < 50; ++i)
    c->client()
        .tell(tell_options{10000ms, "after-" + std::to_string(i)}, "journal/x", "add",
              "after" + std::to_string(i))
        .get();
  ASSERT_TRUE(eventually(
      [&] {
        auto ran = applied(journal);
        for (int i = 0; i < 50; ++i)
          if (!ran.count("after" + std::to_string(i))) return false;
        return true;
      },
      20s));
  EXPECT_EQ(live_instances(journal, "journal/x"), 1);
}

TEST_F(DurableCluster, ABusyWorkerRegistersAgainWithinASecond) {
  c->start_worker({"--name", "busy", "--credits", "64"}, journal_worker);
  ASSERT_TRUE(answered("journal"));
  for (int i = 0; i < 64; ++i) c->client().tell("journal", "slow_add", "old" + std::to_string(i), 300);
  std::this_thread::sleep_for(500ms);
  kill_broker();
  c->start_broker();
  const auto restarted = std::chrono::steady_clock::now();
  ASSERT_TRUE(answered("journal", 10s));
  const auto took = std::chrono::steady_clock::now() - restarted;
  std::printf("answered again after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_LT(took, 1500ms);
  std::this_thread::sleep_for(1s);
  int old = 0;
  for (const auto& e : read_journal(journal)) old += e.kind == "add" && e.tag.rfind("old", 0) == 0;
  EXPECT_LE(old, 4) << "requests of the old broker still ran after the restart";
}

}  // namespace
}  // namespace troupe::test
