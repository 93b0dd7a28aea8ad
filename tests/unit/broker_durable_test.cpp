// The core's durable rules (issue 11, docs/durability.md), driven message
// by message with an in-memory store and time moved by hand: confirmation
// after the commit, message ids answered once, redelivery in order, poison
// messages, retries with backoff, delays, dead letters, recovery, and one
// activation per key across restarts.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <optional>
#include <string>
#include <vector>

#include "broker/core.hpp"
#include "broker/store_memory.hpp"
#include "broker_core_outbox.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;
using protocol::command;
using test::packed;
using test::sent;

class Durable : public ::testing::Test {
 protected:
  using time_point = broker_core::time_point;

  void start(durable::memory_store* s = nullptr) {
    core = std::make_unique<broker_core>(opt, now);
    core->attach_store(s ? s : &store, "", now);
  }
  void SetUp() override {
    opt.heartbeat = 1000ms;
    opt.liveness = 3;
    opt.deferred_commit = 0ms;  // every batch on disk at its commit, for the store checks (but see below)
    start();
  }
  void TearDown() override { EXPECT_EQ(core->audit(), ""); }

  // A message in, then the loop's commit, as the socket loop does per batch.
  void deliver(const std::string& peer, command c, const std::vector<std::string>& body, bool commit = true) {
    test::deliver(*core, peer, c, body, now);
    if (commit) core->commit(now);
  }
  void ready(const std::string& w, std::vector<std::string> actors, std::uint64_t credits = 10,
             std::vector<std::string> keys = {}, std::vector<protocol::retry_policy> retry = {}) {
    protocol::ready_info info;
    info.name = w;
    info.credits = credits;
    info.actors = std::move(actors);
    info.keys = std::move(keys);
    info.retry = std::move(retry);
    std::string body;
    protocol::encode_ready(body, info);
    deliver(w, command::ready, {body});
  }
  void send(const std::string& client, std::uint64_t cid, std::string_view address, std::string_view id,
            bool tell = true, std::uint64_t delay_ms = 0, bool commit = true, std::string_view method = "m") {
    protocol::request_meta m{cid, address, method, protocol::flag_durable | (tell ? protocol::flag_tell : 0),
                             0};
    m.has_durable = true;
    m.message_id = id;
    m.delay_ms = delay_ms;
    std::string meta;
    protocol::encode_request_meta(meta, m);
    deliver(client, command::request, {meta, "\x90"}, commit);
  }
  void plain_tell(const std::string& client, std::uint64_t cid, std::string_view address,
                  bool commit = true) {
    std::string meta;
    protocol::encode_request_meta(meta, {cid, address, "plain", protocol::flag_tell, 0});
    deliver(client, command::request, {meta, "\x90"}, commit);
  }
  void reply(const std::string& w, std::uint64_t id, std::string_view status = "ok",
             const std::string& v = "\xc0") {
    std::string meta;
    protocol::encode_reply_meta(meta, id, status);
    deliver(w, command::reply, {meta, v});
  }
  void advance(std::chrono::milliseconds ms) {
    now += ms;
    core->tick(now);
    core->commit(now);
  }
  // Keeps `w` alive while time passes (a heartbeat each interval).
  void beat_through(const std::string& w, std::chrono::milliseconds total) {
    for (auto t = 0ms; t < total; t += 100ms) {
      deliver(w, command::heartbeat, {});
      advance(100ms);
    }
  }
  std::vector<sent> take() { return test::take_sent(*core); }
  static std::vector<sent> to(const std::vector<sent>& all, const std::string& peer, command c) {
    return test::sent_to(all, peer, c);
  }
  std::map<std::string, std::uint64_t> durable_stats() {
    std::string meta;
    protocol::encode_request_meta(meta, {999, "$broker", "stats", 0, 0});
    deliver("admin", command::request, {meta, "\x90"});
    const auto r = to(take(), "admin", command::reply);
    auto oh = r.at(0).value();
    std::map<std::string, std::uint64_t> out;
    for (const auto& kv : oh.get()
                              .as<std::map<std::string, msgpack::object>>()
                              .at("durable")
                              .as<std::map<std::string, msgpack::object>>())
      if (kv.second.type == msgpack::type::POSITIVE_INTEGER) out[kv.first] = kv.second.as<std::uint64_t>();
    return out;
  }

  broker_options opt;
  time_point now = time_point{} + 1000h;
  durable::memory_store store;
  std::unique_ptr<broker_core> core;
};

TEST_F(Durable, TellIsConfirmedAndRoutedOnlyAfterItsCommit) {
  ready("w1", {"counter"});
  take();
  send("c", 1, "counter/x", "m-1", true, 0, /*commit=*/false);
  EXPECT_TRUE(take().empty()) << "confirmed or routed before the commit";
  EXPECT_EQ(store.pending().size(), 0u);
  core->commit(now);
  const auto all = take();
  ASSERT_EQ(store.pending().size(), 1u);
  const auto confirm = to(all, "c", command::reply);
  ASSERT_EQ(confirm.size(), 1u);
  EXPECT_EQ(confirm[0].status(), "ok");
  EXPECT_EQ(confirm[0].reply_id(), 1u);
  const auto work = to(all, "w1", command::request);
  ASSERT_EQ(work.size(), 1u);
  const auto meta = work[0].request();
  EXPECT_TRUE(meta.is_durable());
  EXPECT_EQ(meta.message_id, "m-1");
  EXPECT_EQ(meta.delivery, 1u);
  reply("w1", meta.id);
  EXPECT_EQ(store.pending().size(), 0u);
  EXPECT_EQ(store.results().at("m-1").status, "ok");
}

TEST_F(Durable, OneCommitPerBatch) {
  ready("w1", {"counter"});
  const auto before = store.commits;
  for (int i = 0; i < 50; ++i) send("c", 100 + i, "counter/x", "b-" + std::to_string(i), true, 0, false);
  core->commit(now);
  EXPECT_EQ(store.commits, before + 1);
  EXPECT_EQ(to(take(), "c", command::reply).size(), 50u);
}

// With the default deferral, an outcome alone waits to share the next
// message's fsync (one commit for both), or for its time, and an ask is
// answered before it is on disk.
TEST_F(Durable, AnOutcomeAloneWaitsForTheNextMessagesCommit) {
  opt.deferred_commit = 20ms;
  start();
  ready("w1", {"counter", "squares"});
  take();
  send("c", 1, "counter/x", "m-1");
  const auto first = to(take(), "w1", command::request);
  ASSERT_EQ(first.size(), 1u);
  const auto commits = store.commits;
  reply("w1", first[0].request().id);
  EXPECT_EQ(store.commits, commits) << "an outcome alone was synced at once";
  EXPECT_EQ(store.pending().size(), 1u);
  send("c", 2, "counter/x", "m-2");
  EXPECT_EQ(store.commits, commits + 1) << "the next message did not carry the outcome";
  EXPECT_EQ(store.results().count("m-1"), 1u);
  ASSERT_EQ(store.pending().size(), 1u);
  // An ask's outcome is answered at once; on disk after the deferral.
  send("c", 3, "squares", "ask-1", false);
  const auto work = to(take(), "w1", command::request);
  ASSERT_EQ(work.size(), 2u);
  reply("w1", work[1].request().id, "ok", "\x07");
  EXPECT_EQ(to(take(), "c", command::reply).size(), 1u);
  EXPECT_EQ(store.results().count("ask-1"), 0u);
  EXPECT_LE(core->next_wakeup(), now + 20ms);
  advance(20ms);
  EXPECT_EQ(store.results().count("ask-1"), 1u);
}

TEST_F(Durable, AResentAskIsAnsweredFromItsRecordedResultAndNotRunAgain) {
  ready("w1", {"squares"});
  send("c1", 1, "squares", "ask-1", false);
  auto work = to(take(), "w1", command::request);
  ASSERT_EQ(work.size(), 1u);
  reply("w1", work[0].request().id, "ok", packed(49));
  const auto first = to(take(), "c1", command::reply);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(*first[0].payload, packed(49));
  send("c2", 9, "squares", "ask-1", false);  // another connection, the same message id
  const auto all = take();
  EXPECT_TRUE(to(all, "w1", command::request).empty()) << "ran again";
  const auto again = to(all, "c2", command::reply);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].reply_id(), 9u);
  EXPECT_EQ(*again[0].payload, packed(49));
}

TEST_F(Durable, AResentAskWhileItRunsIsAnsweredToTheLatestSender) {
  ready("w1", {"squares"});
  send("c1", 1, "squares", "ask-2", false);
  const auto id = to(take(), "w1", command::request).at(0).request().id;
  send("c2", 5, "squares", "ask-2", false);
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  reply("w1", id, "ok", packed(4));
  const auto all = take();
  ASSERT_EQ(to(all, "c2", command::reply).size(), 1u);
  EXPECT_EQ(to(all, "c2", command::reply)[0].reply_id(), 5u);
  EXPECT_EQ(durable_stats()["duplicates"], 1u);
}

TEST_F(Durable, AResentTellIsConfirmedAgainAndStoredOnce) {
  ready("w1", {"counter"}, 1);
  send("c", 1, "counter/x", "t-1");
  send("c", 2, "counter/x", "t-1");
  const auto all = take();
  EXPECT_EQ(to(all, "c", command::reply).size(), 2u);
  EXPECT_EQ(to(all, "w1", command::request).size(), 1u);
  EXPECT_EQ(store.pending().size(), 1u);
}

TEST_F(Durable, AStoreThatCannotBeWrittenRefusesAndNeverConfirms) {
  ready("w1", {"counter"});
  take();
  store.fail_with = "store /x: the disk is full";
  send("c", 1, "counter/x", "f-1");
  auto all = take();
  ASSERT_EQ(to(all, "c", command::reply).size(), 1u);
  EXPECT_EQ(to(all, "c", command::reply)[0].status(), "store_unavailable");
  EXPECT_TRUE(to(all, "w1", command::request).empty());
  // Refused at once while it stays broken; plain messages go on.
  send("c", 2, "counter/x", "f-2");
  EXPECT_EQ(to(take(), "c", command::reply).at(0).status(), "store_unavailable");
  plain_tell("c", 3, "counter/x");
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  store.fail_with.clear();
  // The broker finds out on its next commit (here: the plain tell's reply
  // has nothing to write, so a worker registering writes its id).
  ready("w2", {"counter"});
  send("c", 4, "counter/x", "f-4");
  EXPECT_EQ(to(take(), "c", command::reply).at(0).status(), "ok");
}

TEST_F(Durable, WithoutAStoreDurableRequestsAreRefused) {
  core = std::make_unique<broker_core>(opt, now);
  core->attach_store(nullptr, "", now);
  ready("w1", {"counter"});
  take();
  send("c", 1, "counter/x", "n-1");
  const auto r = to(take(), "c", command::reply);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status(), "store_unavailable");
}

TEST_F(Durable, ALostWorkersMessageIsDeliveredAgainBeforeLaterOnesOfItsKey) {
  ready("w1", {"counter"}, 1);
  send("c", 1, "counter/x", "k-1");
  send("c", 2, "counter/x", "k-2");
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);  // k-2 waits behind k-1
  ready("w2", {"counter"}, 1);
  take();
  // w1 goes silent; w2 keeps beating.
  beat_through("w2", opt.heartbeat * (opt.liveness + 1));
  const auto work = to(take(), "w2", command::request);
  ASSERT_GE(work.size(), 1u);
  EXPECT_EQ(work[0].request().message_id, "k-1");
  EXPECT_EQ(work[0].request().delivery, 2u);
  reply("w2", work[0].request().id);
  const auto next = to(take(), "w2", command::request);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].request().message_id, "k-2");
  EXPECT_EQ(durable_stats()["redelivered"], 1u);
}

TEST_F(Durable, AMessageThatKeepsKillingWorkersBecomesADeadLetter) {
  opt.max_deliveries = 2;
  start();
  ready("w1", {"journal"});
  send("c", 1, "journal", "poison", false);
  take();
  for (const char* w : {"w2", "w3"}) {
    ready(w, {"journal"});
    take();
    beat_through(w, opt.heartbeat * (opt.liveness + 1));  // the one holding the message dies
  }
  const auto all = take();
  const auto r = to(all, "c", command::reply);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status(), "worker_lost");
  EXPECT_EQ(store.dead_count(), 1u);
  EXPECT_EQ(store.dead_letters(0, 10).at(0).reason, "poison");
  EXPECT_EQ(store.dead_letters(0, 10).at(0).msg.lost, 2u);
}

TEST_F(Durable, RetriesFollowTheirBackoffThenDeadLetter) {
  protocol::retry_policy p{"pay", "charge", 3, 100, 150, {"actor_error"}};
  ready("w1", {"pay"}, 10, {}, {p});
  send("c", 1, "pay", "r-1", false, 0, true, "charge");
  auto id = to(take(), "w1", command::request).at(0).request().id;
  reply("w1", id, "actor_error", packed(std::string("boom")));
  EXPECT_TRUE(take().empty()) << "answered or retried at once";
  advance(99ms);
  EXPECT_TRUE(to(take(), "w1", command::request).empty()) << "retried before its backoff";
  advance(1ms);
  auto again = to(take(), "w1", command::request);
  ASSERT_EQ(again.size(), 1u);
  reply("w1", again[0].request().id, "actor_error", packed(std::string("boom")));
  advance(149ms);  // 200 ms capped at 150
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  advance(1ms);
  again = to(take(), "w1", command::request);
  ASSERT_EQ(again.size(), 1u);
  reply("w1", again[0].request().id, "actor_error", packed(std::string("boom")));
  const auto r = to(take(), "c", command::reply);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status(), "actor_error");
  ASSERT_EQ(store.dead_count(), 1u);
  const auto d = store.dead_letters(0, 1).at(0);
  EXPECT_EQ(d.reason, "attempts");
  EXPECT_EQ(d.msg.attempts, 3u);
  EXPECT_EQ(d.msg.last_error, "actor_error: boom");
  EXPECT_EQ(durable_stats()["retried"], 2u);
}

TEST_F(Durable, ADelayedTellIsConfirmedAtOnceAndRunsWhenItsTimeComes) {
  ready("w1", {"counter"});
  take();
  send("c", 1, "counter/x", "d-1", true, 500);
  auto all = take();
  EXPECT_EQ(to(all, "c", command::reply).size(), 1u);
  EXPECT_TRUE(to(all, "w1", command::request).empty());
  beat_through("w1", 400ms);
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  beat_through("w1", 200ms);
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
}

TEST_F(Durable, ARestartedBrokerRecoversPendingMessagesInTheirOrder) {
  ready("w1", {"counter"}, 1);
  send("c", 1, "counter/x", "o-1");
  send("c", 2, "counter/x", "o-2");
  send("c", 3, "counter/y", "o-3");
  take();
  // The broker dies: a new core on the same store.
  start();
  EXPECT_EQ(core->durable_pending(), 3u);
  ready("w1", {"counter"}, 10);  // the worker the store remembers: no wait
  const auto work = to(take(), "w1", command::request);
  ASSERT_EQ(work.size(), 3u);
  EXPECT_EQ(work[0].request().message_id, "o-1");
  EXPECT_EQ(work[1].request().message_id, "o-2");
  EXPECT_EQ(work[2].request().message_id, "o-3");
  EXPECT_EQ(work[0].request().delivery, 2u) << "a recovered message may have run before";
}

TEST_F(Durable, APlainKeyedMessageDoesNotOvertakeAnUncommittedDurableOne) {
  ready("w1", {"counter"});
  take();
  send("c", 1, "counter/x", "u-1", true, 0, false);
  plain_tell("c", 2, "counter/x", false);
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  core->commit(now);
  const auto work = to(take(), "w1", command::request);
  ASSERT_EQ(work.size(), 2u);
  EXPECT_TRUE(work[0].request().is_durable());
  EXPECT_EQ(work[1].request().method, "plain");
}

TEST_F(Durable, ARestartedBrokerWaitsForTheWorkersItKnewBeforePlacingKeys) {
  ready("w1", {"counter"});
  ready("w2", {"counter"});
  take();
  start();  // restarted: the store remembers w1 and w2
  ready("w2", {"counter"});
  plain_tell("c", 1, "counter/x");
  EXPECT_TRUE(to(take(), "w2", command::request).empty()) << "placed before its holder came back";
  ready("w1", {"counter"}, 10, {"counter/x"});
  const auto all = take();
  EXPECT_EQ(to(all, "w1", command::request).size(), 1u);
  EXPECT_TRUE(to(all, "w2", command::request).empty());
}

TEST_F(Durable, TheWaitEndsAfterTheLivenessWindow) {
  ready("w1", {"counter"});
  ready("w2", {"counter"});
  take();
  start();
  ready("w2", {"counter"});
  plain_tell("c", 1, "counter/x");
  take();
  beat_through("w2", opt.heartbeat * opt.liveness);
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u);
}

TEST_F(Durable, ASecondClaimOfAKeyIsAnsweredWithRelease) {
  ready("w1", {"counter"}, 10, {"counter/x"});
  ready("w2", {"counter"}, 10, {"counter/x", "counter/y"});
  const auto rel = to(take(), "w2", command::release);
  ASSERT_EQ(rel.size(), 1u);
  const auto addresses = protocol::decode_release(rel[0].meta.data(), rel[0].meta.size());
  ASSERT_TRUE(addresses);
  ASSERT_EQ(addresses->size(), 1u);
  EXPECT_EQ((*addresses)[0], "counter/x");
  plain_tell("c", 1, "counter/y");
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u) << "its other claim stands";
}

TEST_F(Durable, AReadyFromAHeartbeatSocketRegistersTheWorkSocket) {
  protocol::ready_info info;
  info.name = "busy";
  info.credits = 4;
  info.actors = {"counter"};
  std::string body;
  protocol::encode_ready(body, info);
  deliver("hb-socket", command::ready, {body, "work-socket"});
  const auto all = take();
  EXPECT_EQ(to(all, "work-socket", command::ready).size(), 1u);
  plain_tell("c", 1, "counter/x");
  EXPECT_EQ(to(take(), "work-socket", command::request).size(), 1u);
}

TEST_F(Durable, DeadLettersAreRetriedThroughTheManagementActor) {
  opt.max_deliveries = 1;
  start();
  ready("w1", {"journal"});
  send("c", 1, "journal", "dl-1");
  take();
  ready("w2", {"journal"});
  beat_through("w2", opt.heartbeat * (opt.liveness + 1));
  take();
  ASSERT_EQ(store.dead_count(), 1u);
  const auto seq = store.dead_letters(0, 1).at(0).msg.seq;
  std::string meta;
  protocol::encode_request_meta(meta, {50, "$broker", "dead_retry", 0, 0});
  deliver("admin", command::request, {meta, packed(std::vector<std::uint64_t>{seq})});
  const auto all = take();
  EXPECT_EQ(to(all, "admin", command::reply).at(0).status(), "ok");
  EXPECT_EQ(to(all, "w2", command::request).size(), 1u);
  EXPECT_EQ(store.dead_count(), 0u);
}

}  // namespace
}  // namespace troupe
