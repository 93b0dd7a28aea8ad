// The broker core driven message by message: no sockets, no processes, no
// sleeps. Time is a variable the tests move by hand.
#include "broker/core.hpp"
#include "broker_core_outbox.hpp"

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace troupe {
namespace {

using namespace std::chrono_literals;
using protocol::command;
using protocol::status;
using test::packed;
using test::sent;

std::string ready_body(const std::vector<std::string>& actors, std::uint64_t credits,
                       const std::string& name = "w") {
  protocol::ready_info info;
  info.name = name;
  info.pid = 42;
  info.credits = credits;
  info.actors = actors;
  std::string body;
  protocol::encode_ready(body, info);
  return body;
}

class BrokerCore : public ::testing::Test {
 protected:
  using time_point = broker_core::time_point;

  void start(broker_options o = {}) {
    opt = o;
    core = std::make_unique<broker_core>(opt, now);
  }
  void SetUp() override { start(); }
  // Whatever a test did, the core's tables must still agree.
  void TearDown() override { EXPECT_EQ(core->audit(), ""); }

  // Delivers a message made of a header and body frames.
  void deliver(const std::string& peer, command c, const std::vector<std::string>& body) {
    test::deliver(*core, peer, c, body, now);
  }
  void deliver_raw(const std::string& peer, const std::vector<std::string>& frames_text) {
    std::vector<zmq::message_t> frames;
    for (const auto& b : frames_text) frames.emplace_back(b.data(), b.size());
    const auto count = frames.size();
    core->on_message(peer, std::span(frames).first(std::min(count, broker_core::max_frames)), count, now);
  }

  void ready(const std::string& worker, const std::vector<std::string>& actors, std::uint64_t credits = 10) {
    deliver(worker, command::ready, {ready_body(actors, credits, worker)});
  }

  void request(const std::string& client, std::uint64_t id, std::string_view address,
               std::string_view method = "m", std::string args = "\x90", std::uint64_t flags = 0,
               std::uint64_t timeout_ms = 0) {
    std::string meta;
    protocol::encode_request_meta(meta, {id, address, method, flags, timeout_ms});
    deliver(client, command::request, {meta, args});
  }
  void tell(const std::string& client, std::uint64_t id, std::string_view address) {
    request(client, id, address, "m", "\x90", protocol::flag_tell);
  }

  void reply(const std::string& worker, std::uint64_t broker_id, std::string_view status_text = "ok",
             const std::string& value = "\xc0") {
    std::string meta;
    protocol::encode_reply_meta(meta, broker_id, status_text);
    deliver(worker, command::reply, {meta, value});
  }

  void advance(std::chrono::milliseconds ms) {
    now += ms;
    core->tick(now);
  }

  // Everything sent since the last call.
  std::vector<sent> take() { return test::take_sent(*core); }
  // The messages of `all` to `to` with command `c`.
  static std::vector<sent> to(const std::vector<sent>& all, const std::string& peer, command c) {
    return test::sent_to(all, peer, c);
  }
  // Takes everything sent and expects exactly one REPLY to `client`.
  sent only_reply(const std::string& client) {
    const auto all = take();
    const auto replies = to(all, client, command::reply);
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? sent{} : replies.front();
  }
  std::string status_of_only_reply(const std::string& client) { return only_reply(client).reply_status(); }
  // Replies to the oldest of `held` (broker ids of requests sent to
  // `worker`) and appends what the core sent that worker in return; returns
  // how many requests that was.
  std::size_t reply_oldest(const std::string& worker, std::deque<std::uint64_t>& held) {
    reply(worker, held.front());
    held.pop_front();
    const auto sent = to(take(), worker, command::request);
    for (const auto& m : sent) held.push_back(m.request().id);
    return sent.size();
  }

  msgpack::object_handle manage(const std::string& method) {
    request("admin", 999, "$broker", method);
    return only_reply("admin").value();
  }
  std::map<std::string, std::map<std::string, std::uint64_t>> actors_listing() {
    return manage("actors").get().as<std::map<std::string, std::map<std::string, std::uint64_t>>>();
  }

  broker_options opt;
  time_point now = time_point{} + 1000h;
  std::unique_ptr<broker_core> core;
};

// ---- routing and credits ---------------------------------------------------

TEST_F(BrokerCore, RequestGoesToTheWorkerAndTheReplyBackToTheClient) {
  ready("w1", {"squares"});
  request("c1", 7, "squares", "square", packed(std::vector<int>{7}), 0, 5000);
  auto to_worker = to(take(), "w1", command::request);
  ASSERT_EQ(to_worker.size(), 1u);
  const auto meta = to_worker[0].request();
  EXPECT_EQ(meta.address, "squares");
  EXPECT_EQ(meta.method, "square");
  EXPECT_EQ(meta.timeout_ms, 5000u);
  EXPECT_NE(meta.id, 0u);
  EXPECT_EQ(*to_worker[0].payload, packed(std::vector<int>{7}));  // args forwarded byte for byte
  reply("w1", meta.id, "ok", packed(49));
  const auto r = only_reply("c1");
  EXPECT_EQ(r.reply_id(), 7u);
  EXPECT_EQ(r.reply_status(), "ok");
  EXPECT_EQ(*r.payload, packed(49));
  EXPECT_EQ(core->in_flight(), 0u);
}

TEST_F(BrokerCore, AWorkerNeverHoldsMoreThanItsCredits) {
  ready("w1", {"squares"}, 2);
  for (std::uint64_t id = 1; id <= 5; ++id) request("c", id, "squares");
  auto sent_to_worker = to(take(), "w1", command::request);
  ASSERT_EQ(sent_to_worker.size(), 2u);
  EXPECT_EQ(core->queued(), 3u);
  EXPECT_EQ(core->in_flight(), 2u);
  // Each reply returns one credit, which takes the next queued request.
  reply("w1", sent_to_worker[0].request().id);
  auto after = take();
  EXPECT_EQ(to(after, "c", command::reply).size(), 1u);
  EXPECT_EQ(to(after, "w1", command::request).size(), 1u);
  EXPECT_EQ(core->queued(), 2u);
}

// ---- the adaptive window ----------------------------------------------------

TEST_F(BrokerCore, AFreshWorkerGetsTheFirstWindowThenUpToAllItsCreditsForQuickReplies) {
  ready("w1", {"squares"}, 500);
  take();
  for (std::uint64_t id = 1; id <= 2500; ++id) request("c", id, "squares");
  std::deque<std::uint64_t> held;
  for (const auto& m : to(take(), "w1", command::request)) held.push_back(m.request().id);
  EXPECT_EQ(held.size(), 64u);  // the first window: nothing is known of the worker yet
  // Replies that arrive with no time between them: the worker is quicker
  // than the clock can tell, so it may hold all its credits, never more.
  for (int i = 0; i < 1500; ++i) {
    reply_oldest("w1", held);
    ASSERT_LE(held.size(), 500u);
    ASSERT_EQ(held.size(), core->in_flight());
  }
  EXPECT_EQ(held.size(), 500u);
}

TEST_F(BrokerCore, SlowRepliesShrinkTheWindowToAFewRequestsAndQuickOnesOpenItAgain) {
  ready("w1", {"squares"}, 1000);
  take();
  for (std::uint64_t id = 1; id <= 400; ++id) request("c", id, "squares");
  std::deque<std::uint64_t> held;
  for (const auto& m : to(take(), "w1", command::request)) held.push_back(m.request().id);
  ASSERT_EQ(held.size(), 64u);
  // Each request takes the worker 5 ms: 10 ms of work is two requests. It
  // is sent nothing more until it holds fewer than two, then one per reply.
  for (int i = 0; i < 100; ++i) {
    now += 5ms;
    const auto left = held.size() - 1;  // what it holds once this reply is in
    const auto sent = reply_oldest("w1", held);
    if (i >= 1) {
      EXPECT_EQ(sent, left >= 2 ? 0u : 2u - left) << "reply " << i;
    }
  }
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(core->queued(), 400u - 100u - 2u);
  // Quick replies again: within a few dozen the window opens past the first 64.
  for (int i = 0; i < 150; ++i) reply_oldest("w1", held);
  EXPECT_GT(held.size(), 64u);
}

TEST_F(BrokerCore, AWorkerHoldsAtMost64MaximumSizeArgsFramesOfBytesWhateverItsCredits) {
  broker_options o;
  o.limits.max_message_bytes = 1000;
  start(o);
  ready("w1", {"squares"}, 1000);
  take();
  // Quick small requests open the window to all 1000 credits...
  for (std::uint64_t id = 1; id <= 100; ++id) request("c", id, "squares");
  std::deque<std::uint64_t> held;
  for (const auto& m : to(take(), "w1", command::request)) held.push_back(m.request().id);
  while (!held.empty()) reply_oldest("w1", held);
  // ...but of requests with 1000-byte args it gets 64: 64,000 bytes.
  for (std::uint64_t id = 101; id <= 300; ++id) request("c", id, "squares", "m", std::string(1000, 'x'));
  for (const auto& m : to(take(), "w1", command::request)) held.push_back(m.request().id);
  EXPECT_EQ(held.size(), 64u);
  reply_oldest("w1", held);  // one returned, one more sent
  EXPECT_EQ(held.size(), 64u);
  // Small requests still go while the budget has room: none has now.
  request("c", 301, "squares");
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
}

TEST_F(BrokerCore, UnkeyedRequestsSpreadRoundRobin) {
  ready("w1", {"squares"});
  ready("w2", {"squares"});
  ready("w3", {"squares"});
  take();
  for (std::uint64_t id = 1; id <= 9; ++id) request("c", id, "squares");
  const auto all = take();
  EXPECT_EQ(to(all, "w1", command::request).size(), 3u);
  EXPECT_EQ(to(all, "w2", command::request).size(), 3u);
  EXPECT_EQ(to(all, "w3", command::request).size(), 3u);
}

TEST_F(BrokerCore, QueuedRequestsGoOnlyToWorkersHostingTheirName) {
  ready("w1", {"a"}, 1);
  ready("w2", {"b"}, 1);
  request("c", 1, "a");
  request("c", 2, "a");  // waits for w1
  request("c", 3, "b");
  auto first = take();
  ASSERT_EQ(to(first, "w2", command::request).size(), 1u);
  reply("w2", to(first, "w2", command::request)[0].request().id);
  EXPECT_TRUE(to(take(), "w2", command::request).empty()) << "w2 does not host 'a'";
  reply("w1", to(first, "w1", command::request)[0].request().id);
  const auto next = to(take(), "w1", command::request);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].request().address, "a");
}

// ---- keyed placement -------------------------------------------------------

TEST_F(BrokerCore, AKeyStaysOnOneWorkerAndKeepsItsOrder) {
  ready("w1", {"counter"}, 1);
  ready("w2", {"counter"}, 1);
  take();
  for (std::uint64_t id = 1; id <= 4; ++id) request("c", id, "counter/alice", "add");
  auto all = take();
  const auto on_w1 = to(all, "w1", command::request);
  const auto on_w2 = to(all, "w2", command::request);
  ASSERT_EQ(on_w1.size() + on_w2.size(), 1u) << "one credit: the key's other requests wait in order";
  const std::string holder = on_w1.empty() ? "w2" : "w1";
  EXPECT_EQ(core->queued(), 3u);
  auto id = (on_w1.empty() ? on_w2 : on_w1)[0].request().id;
  for (std::uint64_t expected_client_id = 1; expected_client_id <= 4; ++expected_client_id) {
    reply(holder, id);
    all = take();
    const auto replies = to(all, "c", command::reply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].reply_id(), expected_client_id) << "handled in arrival order";
    const auto next = to(all, holder, command::request);
    if (expected_client_id < 4) {
      ASSERT_EQ(next.size(), 1u) << "the next request of the key goes to the same worker";
      id = next[0].request().id;
    }
  }
  EXPECT_EQ(actors_listing().at("counter").at("keys"), 1u);
}

TEST_F(BrokerCore, KeyedRequestsWaitForAWorkerOfAKnownNameAndKeepTheirOrder) {
  ready("w1", {"counter"}, 1);
  deliver("w1", command::disconnect, {});  // leaves at once: it held nothing
  take();
  EXPECT_EQ(core->live_workers(), 0u);
  request("c", 1, "counter/k");  // the name is known: it waits
  request("c", 2, "counter/k");
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(core->queued(), 2u);
  ready("w2", {"counter"}, 1);
  auto first = to(take(), "w2", command::request);
  ASSERT_EQ(first.size(), 1u);
  request("c", 3, "counter/k");  // must not overtake request 2
  EXPECT_TRUE(to(take(), "w2", command::request).empty());
  reply("w2", first[0].request().id);
  auto all = take();
  EXPECT_EQ(to(all, "c", command::reply)[0].reply_id(), 1u);
  reply("w2", to(all, "w2", command::request)[0].request().id);
  all = take();
  EXPECT_EQ(to(all, "c", command::reply)[0].reply_id(), 2u);
}

// ---- queue bounds ------------------------------------------------------------

TEST_F(BrokerCore, AFullQueueAnswersOverloadedAtOnce) {
  broker_options o;
  o.queue_limit = 2;
  start(o);
  ready("w1", {"squares"}, 1);
  for (std::uint64_t id = 1; id <= 3; ++id) request("c", id, "squares");  // 1 in flight, 2 queued
  take();
  request("c", 4, "squares");
  EXPECT_EQ(status_of_only_reply("c"), "overloaded");
  tell("c", 5, "squares");  // a tell over the bound is dropped silently, and counted
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(core->counters().overloaded, 1u);
  // The same bound for a key's queue on its worker.
  request("c", 6, "squares/k");
  request("c", 7, "squares/k");
  take();
  request("c", 8, "squares/k");
  EXPECT_EQ(status_of_only_reply("c"), "overloaded");
}

// ---- deadlines ---------------------------------------------------------------

TEST_F(BrokerCore, AQueuedRequestEndsAtItsDeadlineAndLeavesItsQueue) {
  broker_options o;
  o.queue_limit = 3;
  start(o);
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares/k", "m", "\x90", 0, 10'000);  // holds the only credit
  take();
  // Keyed ones wait in the worker's keyed queue, unkeyed ones in the name's
  // queue; they expire newest first.
  std::uint64_t id = 10;
  for (const auto* address : {"squares/k", "squares"})
    for (std::uint64_t ms : {400, 300, 200}) request("c", id++, address, "m", "\x90", 0, ms);
  EXPECT_EQ(core->queued(), 6u);
  EXPECT_EQ(core->next_wakeup(), now + 200ms);
  advance(400ms);
  const auto expired = to(take(), "c", command::reply);
  ASSERT_EQ(expired.size(), 6u);
  for (const auto& r : expired) EXPECT_EQ(r.reply_status(), "deadline_exceeded");
  EXPECT_EQ(core->queued(), 0u);
  // Their places are free: three more fit in each queue.
  for (const auto* address : {"squares/k", "squares"})
    for (int i = 0; i < 3; ++i) request("c", id++, address);
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  EXPECT_EQ(core->counters().overloaded, 0u);
}

TEST_F(BrokerCore, ADeadlinePassedWhileNoLiveWorkerHostsTheNameSaysSo) {
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares", "m", "\x90", 0, 10'000);  // holds the only credit: a busy worker
  request("c", 2, "squares", "m", "\x90", 0, 100);     // waits behind it
  const auto held = to(take(), "w1", command::request);
  ASSERT_EQ(held.size(), 1u);
  advance(100ms);
  const auto busy = to(take(), "c", command::reply);
  ASSERT_EQ(busy.size(), 1u);
  EXPECT_EQ(busy[0].text(), "the request's timeout passed") << "a worker hosts it: no hint";

  deliver("w1", command::disconnect, {});              // leaves; it holds request 1 still
  reply("w1", held[0].request().id, "ok", packed(1));  // the last reply: it is gone
  take();
  advance(2s);
  request("c", 3, "squares", "m", "\x90", 0, 100);
  advance(100ms);
  const auto gone = to(take(), "c", command::reply);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].reply_status(), "deadline_exceeded");
  EXPECT_EQ(
      gone[0].text(),
      "the request's timeout passed while no live worker hosts actor 'squares' (the last one left 2 s ago; "
      "after 300 s without one the name is forgotten and calls get unknown_actor at once)");
}

TEST_F(BrokerCore, AnInFlightRequestEndsAtItsDeadlineAndTheLateReplyReturnsTheCredit) {
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares", "m", "\x90", 0, 100);
  const auto held = to(take(), "w1", command::request);
  ASSERT_EQ(held.size(), 1u);
  request("c", 2, "squares", "m", "\x90", 0, 10'000);  // waits for the credit
  advance(100ms);
  EXPECT_EQ(status_of_only_reply("c"), "deadline_exceeded");
  EXPECT_EQ(core->in_flight(), 1u) << "the worker still holds it";
  reply("w1", held[0].request().id, "ok", packed(1));
  const auto all = take();
  EXPECT_TRUE(to(all, "c", command::reply).empty()) << "the late result is dropped";
  EXPECT_EQ(to(all, "w1", command::request).size(), 1u) << "its credit took the next request";
  EXPECT_EQ(core->counters().dropped, 1u);
}

TEST_F(BrokerCore, TheWorkerIsToldTheTimeLeft) {
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares", "m", "\x90", 0, 10'000);
  request("c", 2, "squares", "m", "\x90", 0, 1'000);
  const auto first = to(take(), "w1", command::request);
  now += 400ms;
  reply("w1", first[0].request().id);
  const auto second = to(take(), "w1", command::request);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].request().timeout_ms, 600u);
}

TEST_F(BrokerCore, TimeoutsAreClampedToOneDayAndZeroMeansTheDefault) {
  broker_options o;
  o.default_timeout = 500ms;
  start(o);
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares", "m", "\x90", 0, ~std::uint64_t{0});
  EXPECT_EQ(to(take(), "w1", command::request)[0].request().timeout_ms, 86'400'000u);
  request("c", 2, "squares");  // queued behind it, with the default timeout
  advance(opt.default_timeout);
  EXPECT_EQ(status_of_only_reply("c"), "deadline_exceeded");
}

// ---- worker loss, draining, re-registration ---------------------------------

TEST_F(BrokerCore, ASilentWorkerIsLostAndEveryAskItHeldIsAnswered) {
  ready("w1", {"squares"});
  ready("w2", {"counter"});
  request("c", 1, "squares");
  request("c", 2, "squares");
  tell("c", 3, "squares");
  request("c", 4, "counter/k");
  take();
  for (int i = 0; i < 4; ++i) {  // only w2 keeps talking
    now += opt.heartbeat;
    deliver("w2", command::heartbeat, {});
    core->tick(now);
  }
  const auto replies = to(take(), "c", command::reply);
  ASSERT_EQ(replies.size(), 2u) << "every ask w1 held, and no tell";
  for (const auto& r : replies) {
    EXPECT_EQ(r.reply_status(), "worker_lost");
    // The reason names the settings that declared it dead.
    EXPECT_EQ(r.text(), "worker 'w1' was lost while handling the request (silent for longer than " +
                            std::to_string((opt.heartbeat * opt.liveness).count()) + " ms (heartbeat " +
                            std::to_string(opt.heartbeat.count()) + " ms x liveness " +
                            std::to_string(opt.liveness) + "))");
  }
  EXPECT_EQ(core->live_workers(), 1u);
  EXPECT_EQ(core->in_flight(), 1u);
}

TEST_F(BrokerCore, ALostWorkersKeysArePlacedAgainOnTheNextRequest) {
  ready("w1", {"counter"});
  request("c", 1, "counter/k");
  reply("w1", to(take(), "w1", command::request)[0].request().id);
  take();
  ready("w2", {"counter"});
  advance(opt.heartbeat * (opt.liveness + 1));  // both silent: both lost
  deliver("w2", command::ready, {ready_body({"counter"}, 10)});
  take();
  EXPECT_EQ(actors_listing().at("counter").at("keys"), 0u);
  request("c", 2, "counter/k");
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u);
}

TEST_F(BrokerCore, ADrainingWorkerGetsNoNewWorkAndLeavesAfterItsLastReply) {
  ready("w1", {"squares"}, 10);
  request("c", 1, "squares");
  const auto held = to(take(), "w1", command::request);
  deliver("w1", command::disconnect, {});
  EXPECT_EQ(to(take(), "w1", command::disconnect).size(), 1u) << "acknowledged";
  request("c", 2, "squares");  // waits: the only worker is draining
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  reply("w1", held[0].request().id);
  EXPECT_EQ(to(take(), "c", command::reply).size(), 1u);
  EXPECT_EQ(core->live_workers(), 0u);
  EXPECT_EQ(core->counters().worker_lost, 0u);
  ready("w2", {"squares"});
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u);
}

// Fuzzing finding: a second READY without a name left its keys placed on
// the worker, which then answered them unknown_actor for ever.
TEST_F(BrokerCore, ASecondReadyReleasesTheKeysOfNamesNoLongerHosted) {
  ready("w1", {"counter", "squares"}, 1);
  request("c", 1, "counter/alice");
  const auto held = to(take(), "w1", command::request);
  request("c", 2, "counter/alice");  // waits in w1's keyed queue
  ready("w1", {"squares"}, 1);
  ready("w2", {"counter"}, 1);
  auto moved = to(take(), "w2", command::request);
  ASSERT_EQ(moved.size(), 1u) << "the waiting request follows the key to a worker hosting it";
  EXPECT_EQ(moved[0].request().address, "counter/alice");
  request("c", 3, "counter/alice");
  reply("w2", moved[0].request().id);
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u);
  EXPECT_EQ(actors_listing().at("counter").at("keys"), 1u);
  reply("w1", held[0].request().id);  // the one it held still completes
  EXPECT_EQ(to(take(), "c", command::reply)[0].reply_id(), 1u);
  advance(opt.heartbeat * (opt.liveness + 1));
  EXPECT_EQ(core->live_workers(), 0u);
  EXPECT_EQ(actors_listing().at("counter").at("keys"), 0u);
}

TEST_F(BrokerCore, ASecondReadyKeepsWhatItHoldsAndTakesNewCredits) {
  ready("w1", {"squares"}, 1);
  request("c", 1, "squares");
  request("c", 2, "squares");
  take();
  ready("w1", {"squares"}, 2);
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  EXPECT_EQ(core->in_flight(), 2u);
  EXPECT_EQ(core->live_workers(), 1u);
}

// ---- heartbeats ----------------------------------------------------------------

TEST_F(BrokerCore, TheBrokerSendsHeartbeatsAndDeclaresSilentWorkersDead) {
  ready("w1", {"squares"});
  take();
  advance(opt.heartbeat);
  EXPECT_EQ(to(take(), "w1", command::heartbeat).size(), 1u);
  advance(opt.heartbeat);
  advance(opt.heartbeat);
  EXPECT_EQ(core->live_workers(), 1u) << "silent for exactly liveness x interval: still alive";
  advance(opt.heartbeat);
  EXPECT_EQ(core->live_workers(), 0u);
}

TEST_F(BrokerCore, AHeartbeatOnBehalfOfAWorkSocketKeepsItAliveAndIsAnswered) {
  ready("w1", {"squares"});
  take();
  for (int i = 0; i < 10; ++i) {
    now += opt.heartbeat;
    deliver("hb1", command::heartbeat, {"w1"});
    core->tick(now);
  }
  EXPECT_EQ(core->live_workers(), 1u);
  const auto all = take();
  EXPECT_EQ(to(all, "hb1", command::heartbeat).size(), 10u);
  deliver("hb2", command::heartbeat, {"nobody"});
  EXPECT_EQ(to(take(), "hb2", command::disconnect).size(), 1u) << "unknown worker: register again";
}

TEST_F(BrokerCore, AnUnknownWorkerIsAskedToRegisterAgain) {
  deliver("ghost", command::heartbeat, {});
  EXPECT_EQ(to(take(), "ghost", command::disconnect).size(), 1u);
  reply("ghost", 12345);
  EXPECT_EQ(to(take(), "ghost", command::disconnect).size(), 1u);
  EXPECT_EQ(core->counters().dropped, 1u);
  deliver("ghost", command::disconnect, {});
  EXPECT_TRUE(take().empty());
}

// ---- bad input -------------------------------------------------------------------

TEST_F(BrokerCore, MalformedRequestsAreAnsweredBadRequest) {
  ready("w1", {"squares"});
  take();
  std::string meta;
  protocol::encode_request_meta(meta, {5, "squares", "m", 0, 0});
  deliver("c", command::request, {meta});  // one frame short
  auto r = only_reply("c");
  EXPECT_EQ(r.reply_status(), "bad_request");
  EXPECT_EQ(r.reply_id(), 0u);
  deliver("c", command::request, {"\x93\x01\x02\x03", "\x90"});
  EXPECT_EQ(only_reply("c").reply_id(), 0u) << "unreadable meta: id 0";

  const std::string long_method(200, 'm');
  const std::string huge_args(opt.limits.max_message_bytes + 1, '\x00');
  struct bad {
    std::uint64_t id;
    std::string address, method;
    std::uint64_t flags;
    std::string args;
  };
  for (const auto& b : std::vector<bad>{{0, "squares", "m", 0, "\x90"},
                                        {6, "squares", "m", 4, "\x90"},
                                        {7, "bad name!", "m", 0, "\x90"},
                                        {8, "squares/", "m", 0, "\x90"},
                                        {9, "squares", long_method, 0, "\x90"},
                                        {10, "squares", "m", 0, huge_args}}) {
    request("c", b.id, b.address, b.method, b.args, b.flags);
    r = only_reply("c");
    EXPECT_EQ(r.reply_status(), "bad_request") << b.address << " " << b.flags;
    EXPECT_EQ(r.reply_id(), b.id);
  }
  EXPECT_EQ(core->counters().bad_requests, 8u);
  EXPECT_EQ(core->queued() + core->in_flight(), 0u);
}

TEST_F(BrokerCore, UnknownNamesAndGarbageAreAnsweredOrDroppedAndCounted) {
  request("c", 1, "nobody");
  const auto r = only_reply("c");
  EXPECT_EQ(r.reply_status(), "unknown_actor");
  EXPECT_EQ(r.text(), "no worker hosts actor 'nobody'");
  tell("c", 2, "nobody");
  deliver_raw("c", {"XYZ\x01\x01"});
  deliver_raw("c", {});
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(core->counters().dropped, 3u);
}

// A refused READY says why, so the worker can tell "fix your registration"
// from "the broker restarted" (a DISCONNECT without a reason).
TEST_F(BrokerCore, ARefusedReadyIsAnsweredWithTheReason) {
  deliver("w", command::ready, {"\x80"});
  auto refused = to(take(), "w", command::disconnect);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(msgpack::unpack(refused[0].meta.data(), refused[0].meta.size()).get().as<std::string>(),
            "READY info lacks 'credits'");
  EXPECT_EQ(core->live_workers(), 0u);

  ready("w", {"squares"}, 5);
  const auto acks = to(take(), "w", command::ready);
  ASSERT_EQ(acks.size(), 1u);
  const auto ack = protocol::decode_ready_ack(acks[0].meta.data(), acks[0].meta.size());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->heartbeat_ms, static_cast<std::uint64_t>(opt.heartbeat.count()));
  EXPECT_EQ(ack->liveness, static_cast<std::uint64_t>(opt.liveness));

  // A registered worker whose next READY is refused is a worker no more:
  // what it held is answered.
  request("c", 1, "squares");
  ready("w", {"bad name!"}, 5);
  const auto all = take();
  EXPECT_EQ(to(all, "w", command::disconnect).size(), 1u);
  EXPECT_EQ(to(all, "c", command::reply)[0].reply_status(), "worker_lost");
  EXPECT_EQ(core->live_workers(), 0u);
}

TEST_F(BrokerCore, ForgedOrMisdirectedRepliesAreDropped) {
  ready("w1", {"squares"});
  ready("w2", {"squares"});
  take();
  request("c", 1, "squares");
  auto all = take();
  const std::string holder = to(all, "w1", command::request).empty() ? "w2" : "w1";
  const std::string other = holder == "w1" ? "w2" : "w1";
  const auto id = to(all, holder, command::request)[0].request().id;
  reply(other, id);                                   // not its request
  reply(holder, id + (1ull << 32));                   // wrong generation
  reply(holder, id ^ 1);                              // another slot
  deliver(holder, command::reply, {"\xc0", "\xc0"});  // unreadable meta
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  EXPECT_EQ(core->counters().dropped, 4u);
  reply(holder, id);
  EXPECT_EQ(only_reply("c").reply_id(), 1u);
  reply(holder, id);  // twice: the slot is gone
  EXPECT_TRUE(take().empty());
}

// ---- management ------------------------------------------------------------------

TEST_F(BrokerCore, ManagementAnswersPingStatsActorsAndWorkers) {
  ready("w1", {"counter", "squares"}, 3);
  request("c", 1, "counter/a");
  request("c", 2, "counter/b");
  tell("c", 3, "squares");
  take();
  EXPECT_EQ(manage("ping").get().as<std::string>(), "pong");

  const auto actors = actors_listing();
  EXPECT_EQ(actors.at("counter").at("keys"), 2u);
  EXPECT_EQ(actors.at("counter").at("workers"), 1u);
  EXPECT_EQ(actors.at("squares").at("queued"), 0u);

  const auto workers = manage("workers");
  const auto& list = workers.get().via.array;
  ASSERT_EQ(list.size, 1u);
  auto w = list.ptr[0].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(w.at("name").as<std::string>(), "w1");
  EXPECT_EQ(w.at("credits").as<int>(), 3);
  EXPECT_EQ(w.at("in_flight").as<int>(), 3);
  EXPECT_EQ(w.at("keys").as<int>(), 2);
  EXPECT_EQ(w.at("state").as<std::string>(), "ready");
  EXPECT_EQ(w.at("actors").as<std::vector<std::string>>(), (std::vector<std::string>{"counter", "squares"}));

  now += 1500ms;
  const auto stats = manage("stats");
  auto s = stats.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(s.at("uptime_ms").as<std::uint64_t>(), 1500u);
  EXPECT_EQ(s.at("workers").as<int>(), 1);
  EXPECT_EQ(s.at("in_flight").as<int>(), 3);
  EXPECT_EQ(s.at("requests").as<int>(), 7);  // 3 + ping, actors, workers, stats
  EXPECT_TRUE(s.count("actors"));

  request("admin", 5, "$broker", "nope");
  const auto r = only_reply("admin");
  EXPECT_EQ(r.reply_status(), "unknown_method");
  EXPECT_EQ(r.text(), "$broker has no method 'nope'");
  request("admin", 6, "$broker", "ping", "\x90", protocol::flag_tell);
  EXPECT_TRUE(take().empty()) << "a tell to $broker gets no reply";
}

// ---- roles and keys (CURVE) -------------------------------------------------------
//
// With CURVE on, the socket loop passes each message's key: its name and
// the roles of the directories it is in. These tests hand the core those
// peers directly.

class BrokerCoreRoles : public BrokerCore {
 protected:
  static peer as_worker(std::string_view id, std::string_view key = "pool") {
    return {id, peer_role::worker, key};
  }
  static peer as_client(std::string_view id, std::string_view key = "shop") {
    return {id, peer_role::client, key};
  }
  static peer as_admin(std::string_view id) { return {id, peer_role::client | peer_role::admin, "ops"}; }

  void deliver_as(const peer& from, command c, const std::vector<std::string>& body) {
    std::vector<zmq::message_t> frames;
    const auto hdr = protocol::header(c);
    frames.emplace_back(hdr.data(), hdr.size());
    for (const auto& b : body) frames.emplace_back(b.data(), b.size());
    const auto count = frames.size();
    core->on_message(from, std::span(frames).first(std::min(count, broker_core::max_frames)), count, now);
  }
  void ready_as(const peer& from, const std::vector<std::string>& actors, std::uint64_t credits = 10) {
    deliver_as(from, command::ready, {ready_body(actors, credits, std::string(from.id))});
  }
  void request_as(const peer& from, std::uint64_t id, std::string_view address,
                  std::string_view method = "m") {
    std::string meta;
    protocol::encode_request_meta(meta, {id, address, method, 0, 0});
    deliver_as(from, command::request, {meta, "\x90"});
  }
  void reply_as(const peer& from, std::uint64_t broker_id) {
    std::string meta;
    protocol::encode_reply_meta(meta, broker_id, "ok");
    deliver_as(from, command::reply, {meta, "\xc0"});
  }
  std::uint64_t refused() const { return core->counters().refused; }

  // Log lines the core wrote.
  std::vector<std::string> log;
  void SetUp() override {
    BrokerCore::SetUp();
    core->set_log([this](const std::string& line) { log.push_back(line); });
  }
  void start_with(broker_options o) {
    start(o);
    core->set_log([this](const std::string& line) { log.push_back(line); });
  }
};

TEST_F(BrokerCoreRoles, AClientKeyThatSendsReadyGetsNothingAndTheRealWorkersGetEveryRequest) {
  ready_as(as_worker("w1"), {"squares"});
  take();
  ready_as(as_client("impostor"), {"squares", "payments"}, 100000);
  EXPECT_TRUE(take().empty()) << "no acknowledgement, no DISCONNECT: nothing at all";
  EXPECT_EQ(refused(), 1u);
  EXPECT_EQ(core->live_workers(), 1u);
  EXPECT_EQ(core->names(), 1u) << "`payments` was not created";
  for (std::uint64_t i = 1; i <= 20; ++i) request_as(as_client("c"), i, "squares");
  const auto all = take();
  EXPECT_EQ(to(all, "w1", command::request).size(), 10u) << "10 credits";
  for (const auto& m : all) EXPECT_NE(m.to, "impostor");
  EXPECT_EQ(core->queued(), 10u);
}

TEST_F(BrokerCoreRoles, AWorkerKeyMayNotSendRequests) {
  ready_as(as_worker("w1"), {"squares"});
  take();
  request_as(as_worker("w2"), 1, "squares");
  request_as(as_worker("w2"), 2, "$broker", "ping");
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(refused(), 2u);
  EXPECT_EQ(core->counters().requests, 0u) << "a refused command is no request";
  EXPECT_EQ(core->in_flight(), 0u);
}

TEST_F(BrokerCoreRoles, WorkerCommandsFromAClientKeyAreDroppedWithoutRevealingRoutingIds) {
  ready_as(as_worker("w1"), {"squares"});
  request_as(as_client("c"), 1, "squares");
  const auto id = to(take(), "w1", command::request).at(0).request().id;
  // Known and unknown routing ids get the same answer: none.
  deliver_as(as_client("spy"), command::heartbeat, {"w1"});
  deliver_as(as_client("spy"), command::heartbeat, {"nobody"});
  deliver_as(as_client("spy"), command::heartbeat, {});
  reply_as(as_client("spy"), id);
  deliver_as(as_client("spy"), command::disconnect, {});
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(refused(), 5u);
  EXPECT_EQ(core->in_flight(), 1u);
  reply_as(as_worker("w1"), id);
  EXPECT_EQ(status_of_only_reply("c"), "ok");
}

TEST_F(BrokerCoreRoles, AHeartbeatOnBehalfOfAWorkerCountsOnlyFromTheKeyThatRegisteredIt) {
  ready_as(as_worker("w1", "pool"), {"squares"});
  take();
  // Another worker key names w1: answered exactly as an unknown routing id,
  // and it does not keep w1 alive.
  for (int i = 0; i < 2 * opt.liveness; ++i) {
    now += opt.heartbeat;
    deliver_as(as_worker("hb-other", "other-pool"), command::heartbeat, {"w1"});
    const auto spoofed = to(take(), "hb-other", command::disconnect);
    deliver_as(as_worker("hb-other", "other-pool"), command::heartbeat, {"nobody"});
    const auto unknown = to(take(), "hb-other", command::disconnect);
    EXPECT_EQ(spoofed.size(), 1u);
    EXPECT_EQ(unknown.size(), 1u);
    core->tick(now);
    take();
  }
  EXPECT_EQ(core->live_workers(), 0u) << "the spoofed heartbeats kept a silent worker alive";
  // One refusal per heartbeat while w1 was registered (it is lost at the
  // tick after liveness x interval of silence); after that w1 is unknown.
  EXPECT_EQ(refused(), static_cast<std::uint64_t>(opt.liveness + 1));

  // From the registering key, through its own heartbeat socket, it counts.
  ready_as(as_worker("w2", "pool"), {"squares"});
  take();
  for (int i = 0; i < 2 * opt.liveness; ++i) {
    now += opt.heartbeat;
    deliver_as(as_worker("hb-w2", "pool"), command::heartbeat, {"w2"});
    EXPECT_EQ(to(take(), "hb-w2", command::heartbeat).size(), 1u);
    core->tick(now);
  }
  EXPECT_EQ(core->live_workers(), 1u);
}

TEST_F(BrokerCoreRoles, ARoutingIdTakenOverByAnotherKeyCannotReplyRegisterOrLeaveForIt) {
  ready_as(as_worker("w1", "pool"), {"squares"});
  request_as(as_client("c"), 1, "squares");
  const auto id = to(take(), "w1", command::request).at(0).request().id;
  // The worker's connection closed and another worker key took its routing id.
  reply_as(as_worker("w1", "other-pool"), id);
  ready_as(as_worker("w1", "other-pool"), {"squares", "payments"});
  deliver_as(as_worker("w1", "other-pool"), command::disconnect, {});
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(refused(), 3u);
  EXPECT_EQ(core->names(), 1u);
  EXPECT_EQ(core->in_flight(), 1u);
  reply_as(as_worker("w1", "pool"), id);
  EXPECT_EQ(status_of_only_reply("c"), "ok");
}

TEST_F(BrokerCoreRoles, AKeyNoLongerAcceptedIsRefusedEverything) {
  ready_as(as_worker("w1"), {"squares"});
  take();
  const peer revoked{"w1", peer_role::none, {}};
  deliver_as(revoked, command::heartbeat, {});
  request_as(revoked, 1, "squares");
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(refused(), 2u);
}

TEST_F(BrokerCoreRoles, ManagementOtherThanPingAnswersOnlyAdminKeysWhenThereAreAny) {
  opt.admins_keys = "admins";  // the core only asks whether there is an admin directory
  start_with(opt);
  ready_as(as_worker("w1"), {"squares"});
  take();
  request_as(as_client("c"), 1, "$broker", "ping");
  EXPECT_EQ(only_reply("c").text(), "pong");
  for (const auto* method : {"stats", "workers", "actors", "nope"})
    request_as(as_client("c"), 2, "$broker", method);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(refused(), 4u);
  request_as(as_admin("a"), 3, "$broker", "stats");
  const auto stats = only_reply("a").value().get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(stats.at("refused").as<int>(), 4);
  EXPECT_EQ(stats.at("refused_handshakes").as<int>(), 0);
}

TEST_F(BrokerCoreRoles, WorkersListShowsPidsAndKeysToAdminsOnly) {
  ready_as(as_worker("w1", "pool"), {"squares"});
  take();
  // The handle owns the objects that the listing's map refers to.
  auto listing = [&](const peer& who) {
    request_as(who, 1, "$broker", "workers");
    return only_reply(std::string(who.id)).value();
  };
  auto first_worker = [](const msgpack::object_handle& h) {
    return h.get().via.array.ptr[0].as<std::map<std::string, msgpack::object>>();
  };
  // No admin directory: every client may ask, but only admins see pids.
  const auto client_reply = listing(as_client("c"));
  const auto seen_by_client = first_worker(client_reply);
  EXPECT_EQ(seen_by_client.count("pid"), 0u);
  EXPECT_EQ(seen_by_client.count("key"), 0u);
  EXPECT_EQ(seen_by_client.at("name").as<std::string>(), "w1");
  const auto admin_reply = listing(as_admin("a"));
  const auto seen_by_admin = first_worker(admin_reply);
  EXPECT_EQ(seen_by_admin.at("pid").as<int>(), 42);
  EXPECT_EQ(seen_by_admin.at("key").as<std::string>(), "pool");
}

TEST_F(BrokerCoreRoles, TheNamePolicyBoundsWhatAWorkerKeyRegistersAndAClientKeyCalls) {
  core->set_name_policy(
      std::make_shared<const name_policy>(name_policy::parse("worker pool squares counter\n"
                                                             "worker billing payments\n"
                                                             "client shop squares payments\n"
                                                             "client * counter\n",
                                                             "policy")));
  ready_as(as_worker("w1", "billing"), {"payments"});
  ready_as(as_worker("w2", "pool"), {"squares", "counter"});
  take();
  // A key compromised in the squares pool cannot claim payments: refused
  // and told why, so the worker stops rather than retrying.
  ready_as(as_worker("w3", "pool"), {"squares", "payments"});
  const auto refusal = to(take(), "w3", command::disconnect);
  ASSERT_EQ(refusal.size(), 1u);
  EXPECT_NE(refusal[0].meta.find("may not register actor 'payments'"), std::string::npos);
  EXPECT_EQ(core->live_workers(), 2u);
  EXPECT_EQ(refused(), 1u);

  request_as(as_client("c", "shop"), 1, "payments");
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  request_as(as_client("c", "other"), 2, "payments");
  EXPECT_TRUE(take().empty()) << "not in the policy of key 'other'";
  request_as(as_client("c", "other"), 3, "counter/k");
  EXPECT_EQ(to(take(), "w2", command::request).size(), 1u) << "`client *` applies to every client key";
  EXPECT_EQ(refused(), 2u);
}

TEST_F(BrokerCoreRoles, RefusalsAreLoggedWithTheKeysNameAtMostOncePerSecondPerKey) {
  for (int i = 0; i < 50; ++i) request_as(as_worker("w", "pool"), 1, "squares");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("key 'pool'"), std::string::npos) << log[0];
  deliver_as(as_client("c", "shop"), command::heartbeat, {});
  ASSERT_EQ(log.size(), 2u) << "another key has its own allowance";
  EXPECT_NE(log[1].find("key 'shop'"), std::string::npos) << log[1];
  now += 1s;
  request_as(as_worker("w", "pool"), 1, "squares");
  ASSERT_EQ(log.size(), 3u);
  EXPECT_NE(log[2].find("49 more"), std::string::npos) << log[2];
  EXPECT_EQ(refused(), 52u);
}

TEST_F(BrokerCoreRoles, WithCurveOffEveryPeerHasEveryRole) {
  // The string_view overload is the plaintext broker's: role `any`, no key.
  ready("w1", {"squares"});
  request("c", 1, "$broker", "workers");
  const auto w = only_reply("c").value().get().via.array.ptr[0].as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(w.at("pid").as<int>(), 42);
  EXPECT_EQ(w.count("key"), 0u);
  EXPECT_EQ(refused(), 0u);
}

// ---- call chains: requests made from inside methods (calls.cpp) -------------

// A REQUEST from a method's caller socket: `links` are the instances waiting
// up its chain, with the broker ids of the requests they run.
std::string chained_meta(std::uint64_t id, std::string_view address,
                         const std::vector<protocol::chain_link>& links, std::uint64_t flags = 0) {
  std::string chain, meta;
  protocol::encode_chain(chain, links);
  protocol::request_meta m{id, address, "m", flags, 0};
  m.chain = chain;
  protocol::encode_request_meta(meta, m);
  return meta;
}

TEST_F(BrokerCore, AKeyedRequestWhoseTargetWaitsUpItsChainFailsAtOnceNamingTheChain) {
  ready("w1", {"counter", "ledger"});
  request("c", 1, "counter/a");
  const auto first = to(take(), "w1", command::request).at(0).request().id;
  // counter/a asks ledger/b: forwarded with its chain, byte for byte.
  const auto ask_ledger = chained_meta(2, "ledger/b", {{"counter/a", first}});
  deliver("caller", command::request, {ask_ledger, "\x90"});
  const auto to_ledger = to(take(), "w1", command::request);
  ASSERT_EQ(to_ledger.size(), 1u);
  const auto forwarded = to_ledger[0].request();
  const auto links = protocol::decode_chain(forwarded.chain);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].address, "counter/a");
  EXPECT_EQ(links[0].id, first);
  // ledger/b asks counter/a: counter/a waits for ledger/b, which would wait for it.
  deliver("caller", command::request,
          {chained_meta(3, "counter/a", {{"counter/a", first}, {"ledger/b", forwarded.id}}), "\x90"});
  const auto r = only_reply("caller");
  EXPECT_EQ(r.reply_id(), 3u);
  EXPECT_EQ(r.reply_status(), "call_cycle");
  EXPECT_EQ(r.text().rfind("call cycle: counter/a -> ledger/b -> counter/a (", 0), 0u) << r.text();
  // Another key of the same name is no cycle; a tell that would loop is dropped unanswered.
  deliver("caller", command::request, {chained_meta(4, "counter/z", {{"counter/a", first}}), "\x90"});
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  deliver("caller", command::request,
          {chained_meta(5, "counter/a", {{"counter/a", first}}, protocol::flag_tell), "\x90"});
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(core->counters().dropped, 1u);
}

TEST_F(BrokerCore, AnUnkeyedSelfCallFailsAtOnceWhenItsOnlyWorkerWaitsUpTheChain) {
  ready("w1", {"relay"});
  request("c", 1, "relay");
  const auto first = to(take(), "w1", command::request).at(0).request().id;
  deliver("caller", command::request, {chained_meta(2, "relay", {{"relay", first}}), "\x90"});
  const auto r = only_reply("caller");
  EXPECT_EQ(r.reply_status(), "call_cycle");
  EXPECT_EQ(r.text().rfind("call cycle: relay -> relay (every worker process hosting 'relay'", 0), 0u)
      << r.text();
  EXPECT_EQ(core->in_flight(), 1u);
  EXPECT_EQ(core->queued(), 0u);
  // A link whose request has ended holds no worker: nothing waits on it.
  reply("w1", first);
  take();
  deliver("caller", command::request, {chained_meta(3, "relay", {{"relay", first}}), "\x90"});
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
}

TEST_F(BrokerCore, AnUnkeyedSelfCallGoesToAnotherWorkerEvenABusyOne) {
  ready("w1", {"relay"}, 1);
  ready("w2", {"relay"}, 1);
  take();
  request("c", 1, "relay");
  auto all = take();
  const auto on_w1 = to(all, "w1", command::request);
  const auto on_w2 = to(all, "w2", command::request);
  ASSERT_EQ(on_w1.size() + on_w2.size(), 1u);
  const std::string waiting = on_w1.empty() ? "w2" : "w1";
  const std::string other = on_w1.empty() ? "w1" : "w2";
  const auto first = (on_w1.empty() ? on_w2 : on_w1)[0].request().id;
  request("c", 2, "relay");  // the other worker's one credit is taken
  ASSERT_EQ(to(take(), other, command::request).size(), 1u);
  // The self-calls go to the other worker at once, never to the waiting one.
  for (std::uint64_t id = 3; id <= 5; ++id)
    deliver("caller", command::request, {chained_meta(id, "relay", {{"relay", first}}), "\x90"});
  all = take();
  EXPECT_TRUE(to(all, waiting, command::request).empty());
  const auto moved = to(all, other, command::request);
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_EQ(protocol::decode_chain(moved[0].request().chain).at(0).id, first);
  EXPECT_EQ(core->queued(), 0u);
}

TEST_F(BrokerCore, ACallFromAnAwaitingMethodIsNotHeldBackByItsWorkersCredits) {
  // One credit, held by relay/r, which awaits a call to squares on the
  // same worker: without passing the credits, it would wait for itself.
  ready("w1", {"relay", "squares", "counter"}, 1);
  take();
  request("c", 1, "relay/r");
  const auto caller = to(take(), "w1", command::request).at(0).request().id;
  deliver("caller", command::request, {chained_meta(2, "squares", {{"relay/r", caller}}), "\x90"});
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  // A chain whose caller is not in flight here proves nothing: it waits.
  deliver("caller", command::request, {chained_meta(3, "squares", {{"relay/r", caller + 1}}), "\x90"});
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  // Keyed: it passes the credits, but not a request of its own key queued before it.
  deliver("caller", command::request, {chained_meta(4, "counter/b", {{"relay/r", caller}}), "\x90"});
  EXPECT_EQ(to(take(), "w1", command::request).size(), 1u);
  request("c", 5, "counter/z");
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  deliver("caller", command::request, {chained_meta(6, "counter/z", {{"relay/r", caller}}), "\x90"});
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  EXPECT_EQ(core->queued(), 3u);
}

TEST_F(BrokerCore, AnAwaitingRequestDoesNotCountInItsWorkersWindow) {
  ready("w1", {"relay", "counter"});
  ready("w2", {"slow"});
  take();
  // Slow replies shrink w1's window to its least, 2 requests.
  request("c", 1, "counter/x");
  request("c", 2, "counter/x");
  auto held = to(take(), "w1", command::request);
  ASSERT_EQ(held.size(), 2u);
  reply("w1", held[0].request().id);
  advance(std::chrono::milliseconds(1000));
  reply("w1", held[1].request().id);
  take();
  // relay/r runs on w1 and awaits a call to slow/s on w2.
  request("c", 3, "relay/r");
  const auto caller = to(take(), "w1", command::request).at(0).request().id;
  deliver("w1-caller", command::request, {chained_meta(4, "slow/s", {{"relay/r", caller}}), ""});
  const auto call = to(take(), "w2", command::request).at(0).request().id;
  // While it awaits, w1 serves others: a message for relay/r (which waits
  // in the worker behind it) and an ask to another key both go at once.
  request("c", 5, "relay/r");
  request("c", 6, "counter/y");
  EXPECT_EQ(to(take(), "w1", command::request).size(), 2u);
  // Once the call is answered, relay/r works again and counts: the window is full.
  reply("w2", call);
  EXPECT_EQ(to(take(), "w1-caller", command::reply).size(), 1u);
  request("c", 7, "counter/z");
  EXPECT_TRUE(to(take(), "w1", command::request).empty());
  EXPECT_EQ(core->queued(), 1u);
}

TEST_F(BrokerCore, MalformedChainsAreBadRequests) {
  ready("w1", {"counter"});
  take();
  std::vector<protocol::chain_link> long_chain(protocol::max_chain_length + 1, {"counter/x", 1});
  for (const auto& links : {long_chain, std::vector<protocol::chain_link>{{"$broker", 1}},
                            std::vector<protocol::chain_link>{{"bad name", 1}}}) {
    deliver("caller", command::request, {chained_meta(9, "counter/a", links), "\x90"});
    EXPECT_EQ(status_of_only_reply("caller"), "bad_request");
  }
  // 7 elements with a durable map that the flag does not ask for.
  std::string chain, meta;
  protocol::encode_chain(chain, {{"counter/x", 1}});
  protocol::request_meta m{9, "counter/a", "m", 0, 0};
  m.has_durable = true;
  m.message_id = "id-1";
  m.chain = chain;
  protocol::encode_request_meta(meta, m);
  deliver("caller", command::request, {meta, "\x90"});
  EXPECT_EQ(status_of_only_reply("caller"), "bad_request");
}

}  // namespace
}  // namespace troupe
