// The broker core's bounds and self-healing (issue 12), driven message by
// message with time moved by hand: queued-bytes budgets, the bound on
// names and their forgetting, credits below the send queue, messages the
// loop could not send, a supervisor's DISCONNECT for a dead or stuck
// process, RELEASE of passivated keys, and the bounded `$broker` calls.
// Every step is followed by audit().
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "broker/core.hpp"
#include "broker_core_outbox.hpp"

namespace troupe {
namespace {

using namespace std::chrono_literals;
using protocol::command;
using test::packed;
using test::sent;

class Bounds : public ::testing::Test {
 protected:
  using time_point = broker_core::time_point;

  void start(broker_options o) {
    opt = std::move(o);
    core = std::make_unique<broker_core>(opt, now);
  }
  void SetUp() override { start({}); }
  void TearDown() override { EXPECT_EQ(core->audit(), ""); }

  void deliver_from(const peer& from, command c, const std::vector<std::string>& body) {
    test::deliver(*core, from, c, body, now);
  }
  void deliver(const std::string& id, command c, const std::vector<std::string>& body) {
    deliver_from(peer{id, peer_role::any, {}}, c, body);
  }
  void ready(const std::string& worker, const std::vector<std::string>& actors, std::uint64_t credits = 10) {
    protocol::ready_info info;
    info.name = worker;
    info.pid = 42;
    info.credits = credits;
    info.actors = actors;
    std::string body;
    protocol::encode_ready(body, info);
    deliver(worker, command::ready, {body});
  }
  void request(const std::string& client, std::uint64_t id, std::string_view address,
               std::string args = "\x90", std::uint64_t timeout_ms = 0, std::string_view method = "m",
               std::uint64_t flags = 0) {
    std::string meta;
    protocol::encode_request_meta(meta, {id, address, method, flags, timeout_ms});
    deliver(client, command::request, {meta, args});
  }
  void reply(const std::string& worker, std::uint64_t broker_id) {
    std::string meta;
    protocol::encode_reply_meta(meta, broker_id, "ok");
    deliver(worker, command::reply, {meta, "\xc0"});
  }
  void release(const std::string& worker, const std::vector<std::string>& addresses) {
    std::string body;
    protocol::encode_release(body, addresses);
    deliver(worker, command::release, {body});
  }
  void advance(std::chrono::milliseconds ms) {
    now += ms;
    core->tick(now);
  }

  std::vector<sent> take() { return test::take_sent(*core); }
  static std::vector<sent> to(const std::vector<sent>& all, const std::string& peer, command c) {
    return test::sent_to(all, peer, c);
  }
  sent only_reply(const std::string& client) {
    const auto replies = to(take(), client, command::reply);
    EXPECT_EQ(replies.size(), 1u);
    return replies.empty() ? sent{} : replies.front();
  }
  // The broker ids of the requests sent to `worker`.
  std::vector<std::uint64_t> requests_to(const std::string& worker) {
    std::vector<std::uint64_t> ids;
    for (const auto& m : to(take(), worker, command::request)) ids.push_back(m.request_id());
    return ids;
  }
  msgpack::object_handle manage(const std::string& method, std::string args = "\x90") {
    request("admin", 999, "$broker", args, 0, method);
    return only_reply("admin").value();
  }
  std::map<std::string, msgpack::object> stats_map(msgpack::object_handle& h) {
    return h.get().as<std::map<std::string, msgpack::object>>();
  }
  std::uint64_t stat(const std::string& key) {
    auto h = manage("stats");
    return stats_map(h).at(key).as<std::uint64_t>();
  }

  broker_options opt;
  time_point now = time_point{} + 1000h;
  std::unique_ptr<broker_core> core;
};

// ---- queued bytes ------------------------------------------------------------

TEST_F(Bounds, RequestsPastTheQueuedBytesOfANameAreOverloaded) {
  broker_options o;
  o.max_queued_bytes_per_name = 1000;
  start(o);
  ready("w1", {"echo"}, 1);
  const std::string big = packed(std::vector<std::string>{std::string(300, 'x')});  // ~305 bytes
  request("c", 1, "echo", big);  // goes to the worker at once: costs the queue nothing
  EXPECT_EQ(requests_to("w1").size(), 1u);
  for (std::uint64_t id = 2; id <= 4; ++id) request("c", id, "echo", big);  // 3 x ~330 bytes wait
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  const auto queued = core->queued_bytes();
  EXPECT_GT(queued, 900u);
  EXPECT_LE(queued, 1000u);
  request("c", 5, "echo", big);
  const auto r = only_reply("c");
  EXPECT_EQ(r.reply_id(), 5u);
  EXPECT_EQ(r.status(), "overloaded");
  EXPECT_NE(r.text().find("--max-queued-bytes-per-name"), std::string::npos) << r.text();
  EXPECT_EQ(stat("over_queued_bytes"), 1u);
  EXPECT_EQ(stat("overloaded"), 1u);
  // A small request still fits, and bytes go back as requests leave the queue.
  request("c", 6, "echo", "\x90");
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  reply("w1", 0);  // an unknown id: dropped, changes nothing
  EXPECT_EQ(core->queued(), 4u);
}

TEST_F(Bounds, QueuedBytesAreGivenBackWhenSentOrExpired) {
  broker_options o;
  o.max_queued_bytes = 1500;
  start(o);
  ready("w1", {"a", "b"}, 1);
  const std::string big = packed(std::vector<std::string>{std::string(600, 'x')});
  request("c", 1, "a", big);
  const auto first = requests_to("w1");
  request("c", 2, "a", big, 1000);
  request("c", 3, "b", big);
  request("c", 4, "b", big);  // over the total: the budget is shared by every name
  const auto r = only_reply("c");
  EXPECT_EQ(r.reply_id(), 4u);
  EXPECT_NE(r.text().find("--max-queued-bytes)"), std::string::npos) << r.text();
  advance(1001ms);  // request 2 expires while queued: its bytes go back
  EXPECT_EQ(to(take(), "c", command::reply).size(), 1u);
  request("c", 5, "b", big);
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  reply("w1", first.at(0));  // request 3 goes to the worker: its bytes go back too
  take();
  EXPECT_EQ(core->queued(), 1u);
  EXPECT_LT(core->queued_bytes(), 700u);
}

// ---- names ---------------------------------------------------------------------

TEST_F(Bounds, AReadyPastTheNameBoundIsRefusedWithAReason) {
  broker_options o;
  o.max_names = 3;
  start(o);
  ready("w1", {"a", "b"});
  take();
  ready("w2", {"b", "c", "d"});  // two new names: 4 > 3
  const auto refused = to(take(), "w2", command::disconnect);
  ASSERT_EQ(refused.size(), 1u);
  const auto reason = msgpack::unpack(refused[0].meta.data(), refused[0].meta.size()).get().as<std::string>();
  EXPECT_NE(reason.find("--max-names"), std::string::npos) << reason;
  EXPECT_EQ(stat("names_refused"), 1u);
  EXPECT_EQ(stat("actors"), 2u);
  EXPECT_EQ(stat("workers"), 1u);
  ready("w3", {"a", "c"});  // one new name: fits
  EXPECT_EQ(to(take(), "w3", command::ready).size(), 1u);
  EXPECT_EQ(stat("actors"), 3u);
}

TEST_F(Bounds, ANameNoWorkerHostsIsForgottenAndItsWaitingRequestsAnswered) {
  broker_options o;
  o.forget_names_after = 10s;
  o.heartbeat = 1h;  // the workers stay alive while time jumps
  start(o);
  ready("w1", {"gone", "kept"});
  ready("w2", {"kept"});
  deliver("w1", command::disconnect, {});  // graceful: removed at once, holding nothing
  take();
  request("c", 1, "gone");  // known, no worker: waits for one
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  advance(9s);
  EXPECT_TRUE(to(take(), "c", command::reply).empty());
  advance(2s);
  const auto r = only_reply("c");
  EXPECT_EQ(r.status(), "unknown_actor");
  EXPECT_NE(r.text().find("forgotten"), std::string::npos) << r.text();
  request("c", 2, "gone");
  EXPECT_EQ(only_reply("c").status(), "unknown_actor");
  EXPECT_EQ(stat("names_forgotten"), 1u);
  EXPECT_EQ(stat("actors"), 1u);
  // The name that kept a worker still routes (it moved into the freed place).
  request("c", 3, "kept");
  EXPECT_EQ(requests_to("w2").size(), 1u);
}

TEST_F(Bounds, ANameComingBackInTimeIsKept) {
  broker_options o;
  o.forget_names_after = 10s;
  o.heartbeat = 1h;  // the workers stay alive while time jumps
  start(o);
  ready("w1", {"x"});
  deliver("w1", command::disconnect, {});
  advance(5s);
  ready("w2", {"x"});
  advance(20s);
  take();
  EXPECT_EQ(stat("names_forgotten"), 0u);
  request("c", 1, "x");
  EXPECT_EQ(requests_to("w2").size(), 1u);
}

TEST_F(Bounds, ANameWithRequestsInFlightIsForgottenOnlyAfterThem) {
  broker_options o;
  o.forget_names_after = 10s;
  o.heartbeat = 1h;  // the workers stay alive while time jumps
  start(o);
  ready("w1", {"x", "y"});
  request("c", 1, "x");
  const auto ids = requests_to("w1");
  ready("w1", {"y"});  // registers again without x; the request stays in flight
  take();
  advance(11s);
  take();
  EXPECT_EQ(stat("names_forgotten"), 0u);
  reply("w1", ids.at(0));
  EXPECT_EQ(only_reply("c").status(), "ok");
  advance(11s);
  advance(1s);
  take();
  EXPECT_EQ(stat("names_forgotten"), 1u);
}

// ---- sends the loop could not make, credits ------------------------------------

TEST_F(Bounds, ARequestThatCannotBeSentRemovesItsWorker) {
  ready("w1", {"squares"});
  request("c", 1, "squares");
  request("c", 2, "squares");
  const auto all = take();
  const auto reqs = to(all, "w1", command::request);
  ASSERT_EQ(reqs.size(), 2u);
  core->on_unsent("w1", command::request, reqs[1].meta, now);
  const auto replies = to(take(), "c", command::reply);
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& r : replies) EXPECT_EQ(r.status(), "worker_lost");
  EXPECT_EQ(stat("unsent"), 1u);
  EXPECT_EQ(stat("workers"), 0u);
}

TEST_F(Bounds, AReplyThatCannotBeSentIsCountedAndOver) {
  ready("w1", {"squares"});
  take();
  core->on_unsent("client", command::reply, "", now);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(stat("unsent"), 1u);
  EXPECT_EQ(stat("workers"), 1u);
}

TEST_F(Bounds, CreditsStayBelowThePeersSendQueue) {
  broker_options o;
  o.send_queue_limit = 64;
  start(o);
  ready("w1", {"squares"}, 1000);
  for (std::uint64_t id = 1; id <= 100; ++id) request("c", id, "squares");
  EXPECT_EQ(requests_to("w1").size(), 16u);  // half of 64, less 16 kept for heartbeats and answers
  EXPECT_EQ(core->queued(), 84u);
}

// ---- a supervisor's DISCONNECT for one of its processes -------------------------

TEST_F(Bounds, ADeadProcessIsRemovedAtOnceOnItsSupervisorsWord) {
  ready("w1", {"squares"});
  request("c", 1, "squares");
  take();
  deliver("supervisor", command::disconnect, {"w1"});
  const auto r = only_reply("c");
  EXPECT_EQ(r.status(), "worker_lost");
  EXPECT_NE(r.text().find("its process is gone"), std::string::npos) << r.text();
  EXPECT_EQ(stat("workers"), 0u);
  EXPECT_EQ(stat("workers_gone"), 1u);
  deliver("supervisor", command::disconnect, {"w1"});  // again: it is gone, nothing to do
  EXPECT_TRUE(take().empty());
}

TEST_F(Bounds, TheStuckAskGetsTimeLimitExceededAndTheOthersWorkerLost) {
  ready("w1", {"squares"});
  request("c1", 1, "squares");
  request("c2", 2, "squares");
  request("c3", 3, "squares", "\x90", 0, "m", protocol::flag_tell);
  const auto ids = requests_to("w1");
  ASSERT_EQ(ids.size(), 3u);
  std::string info;
  protocol::encode_disconnect_info(info, {ids[0], "ran past its time limit of 5000 ms"});
  deliver("supervisor", command::disconnect, {"w1", info});
  const auto all = take();
  const auto r1 = to(all, "c1", command::reply);
  ASSERT_EQ(r1.size(), 1u);
  EXPECT_EQ(r1[0].status(), "time_limit_exceeded");
  EXPECT_NE(r1[0].text().find("5000 ms"), std::string::npos) << r1[0].text();
  const auto r2 = to(all, "c2", command::reply);
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].status(), "worker_lost");
  EXPECT_TRUE(to(all, "c3", command::reply).empty()) << "a tell gets nothing";
  EXPECT_EQ(stat("time_limit_exceeded"), 1u);
  EXPECT_EQ(stat("worker_lost"), 1u);
  // Its credits went with it; a fresh process registers with its own.
  ready("w2", {"squares"}, 4);
  request("c1", 3, "squares");
  EXPECT_EQ(requests_to("w2").size(), 1u);
}

TEST_F(Bounds, AMalformedSupervisorDisconnectIsDroppedAndRemovesNothing) {
  ready("w1", {"squares"});
  take();
  deliver("supervisor", command::disconnect, {"w1", "\x81\xa5stuck\x00"});  // stuck 0
  deliver("supervisor", command::disconnect, {"w1", "\x80", "extra"});
  EXPECT_EQ(stat("dropped"), 2u);
  EXPECT_EQ(stat("workers"), 1u);
}

TEST_F(Bounds, OnlyTheKeyThatRegisteredAWorkerMayDisconnectIt) {
  protocol::ready_info info;
  info.name = "w1";
  info.credits = 4;
  info.actors = {"squares"};
  std::string body;
  protocol::encode_ready(body, info);
  deliver_from(peer{"w1", peer_role::worker, "pool-a"}, command::ready, {body});
  take();
  deliver_from(peer{"intruder", peer_role::worker, "pool-b"}, command::disconnect, {"w1"});
  EXPECT_EQ(stat("workers"), 1u);
  EXPECT_EQ(stat("refused"), 1u);
  deliver_from(peer{"supervisor", peer_role::worker, "pool-a"}, command::disconnect, {"w1"});
  EXPECT_EQ(stat("workers"), 0u);
}

// ---- RELEASE of passivated keys --------------------------------------------------

TEST_F(Bounds, AReleasedKeyIsPlacedAgainOnItsNextRequest) {
  ready("w1", {"counter"});
  request("c", 1, "counter/a");
  reply("w1", requests_to("w1").at(0));
  take();
  EXPECT_EQ(stat("keys"), 1u);
  release("w1", {"counter/a", "counter/never", "counter", "nope/x"});  // only placed keys count
  EXPECT_EQ(stat("keys"), 0u);
  EXPECT_EQ(stat("passivated"), 1u);
  ready("w2", {"counter"});
  take();
  request("c", 2, "counter/a");  // placed anew, on whichever worker
  const auto all = take();
  EXPECT_EQ(to(all, "w1", command::request).size() + to(all, "w2", command::request).size(), 1u);
  EXPECT_EQ(stat("keys"), 1u);
}

TEST_F(Bounds, AReleaseIsNotHonouredWhileARequestForTheKeyIsOnItsWay) {
  ready("w1", {"counter"}, 1);
  request("c", 1, "counter/a");
  request("c", 2, "counter/a");  // waits in w1's keyed queue
  const auto ids = requests_to("w1");
  ASSERT_EQ(ids.size(), 1u);
  release("w1", {"counter/a"});  // sent before the worker saw requests 1 and 2
  EXPECT_EQ(stat("releases_kept"), 1u);
  EXPECT_EQ(stat("keys"), 1u);
  reply("w1", ids[0]);
  const auto second = requests_to("w1");  // the same worker: one activation per key
  ASSERT_EQ(second.size(), 1u);
  release("w1", {"counter/a"});
  EXPECT_EQ(stat("releases_kept"), 2u);
  reply("w1", second[0]);
  take();
  release("w1", {"counter/a"});
  EXPECT_EQ(stat("passivated"), 1u);
  EXPECT_EQ(stat("keys"), 0u);
}

TEST_F(Bounds, AWorkerCannotReleaseAKeyPlacedElsewhere) {
  ready("w1", {"counter"});
  ready("w2", {"counter"});
  request("c", 1, "counter/a");
  const auto all = take();
  const bool on_w1 = !to(all, "w1", command::request).empty();
  release(on_w1 ? "w2" : "w1", {"counter/a"});
  EXPECT_EQ(stat("passivated"), 0u);
  release(on_w1 ? "w1" : "w2", {"not a valid address!"});
  release(on_w1 ? "w1" : "w2", {});  // an empty RELEASE is malformed
  EXPECT_EQ(stat("dropped"), 1u);
}

// ---- bounded management ----------------------------------------------------------

TEST_F(Bounds, ListingsComeInPagesFromACursor) {
  std::vector<std::string> names;
  for (int i = 0; i < 25; ++i) names.push_back("n" + std::to_string(i));
  ready("w1", names);
  take();
  std::vector<std::string> seen;
  std::uint64_t cursor = 0;
  for (int page = 0; page < 5; ++page) {
    auto h = manage("actors", packed(std::vector<std::uint64_t>{10, cursor}));
    auto m = h.get().as<std::map<std::string, msgpack::object>>();
    auto items = m.at("items").as<std::map<std::string, std::map<std::string, std::uint64_t>>>();
    for (const auto& [name, entry] : items) seen.push_back(name);
    if (m.at("next").is_nil()) break;
    cursor = m.at("next").as<std::uint64_t>();
  }
  std::sort(seen.begin(), seen.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(seen, names);
  // Without args: the plain map, as before, of at most 1000 names.
  auto plain = manage("actors").get().as<std::map<std::string, std::map<std::string, std::uint64_t>>>();
  EXPECT_EQ(plain.size(), 25u);
  // Workers too.
  ready("w2", {"n1"});
  take();
  auto h = manage("workers", packed(std::vector<std::uint64_t>{1}));
  auto m = h.get().as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(m.at("items").via.array.size, 1u);
  EXPECT_FALSE(m.at("next").is_nil());
}

TEST_F(Bounds, AWorkersPageHoldsAtMostTwentyThousandNames) {
  for (int w = 0; w < 3; ++w) {
    std::vector<std::string> names;
    for (int i = 0; i < 10000; ++i)
      names.push_back(std::string("w") + std::to_string(w) + "n" + std::to_string(i));
    ready("w" + std::to_string(w), names);
  }
  take();
  std::size_t workers = 0;
  std::uint64_t cursor = 0;
  int pages = 0;
  for (; pages < 5; ++pages) {
    auto h = manage("workers", packed(std::vector<std::uint64_t>{100, cursor}));
    auto m = h.get().as<std::map<std::string, msgpack::object>>();
    EXPECT_LE(m.at("items").via.array.size, 2u);
    workers += m.at("items").via.array.size;
    if (m.at("next").is_nil()) break;
    cursor = m.at("next").as<std::uint64_t>();
  }
  EXPECT_EQ(workers, 3u);
  EXPECT_EQ(pages, 1) << "two pages: 2 workers, then 1";
}

TEST_F(Bounds, ListingArgsOutsideTheFormsAreBadArgs) {
  for (const std::string& args :
       {packed(std::vector<int>{0}), packed(std::vector<int>{10001}), packed(std::vector<int>{1, 2, 3}),
        packed(7), packed(std::vector<int>{-1})}) {
    request("admin", 5, "$broker", args, 0, "actors");
    EXPECT_EQ(only_reply("admin").status(), "bad_args");
  }
}

TEST_F(Bounds, StatsCountsNamesAndKeysWithoutListingThem) {
  ready("w1", {"counter", "squares"});
  request("c", 1, "counter/a");
  request("c", 2, "counter/b");
  take();
  auto h = manage("stats");
  auto s = stats_map(h);
  EXPECT_EQ(s.at("actors").as<std::uint64_t>(), 2u);
  EXPECT_EQ(s.at("keys").as<std::uint64_t>(), 2u);
  auto limits = s.at("limits").as<std::map<std::string, std::uint64_t>>();
  EXPECT_EQ(limits.at("send_queue_limit"), 2048u);
  EXPECT_EQ(limits.at("max_names"), 100000u);
}

// ---- the map behind placements: erase one key, shrink when sparse -------------------

TEST(FlatStringMapErase, AgreesWithStdMapAndShrinks) {
  flat_string_map<int> m;
  std::map<std::string, int> model;
  std::mt19937 rng(12);
  for (int step = 0; step < 200000; ++step) {
    const auto key = std::string("k") + std::to_string(rng() % 5000);
    if (rng() % 3 == 0) {
      EXPECT_EQ(m.erase(key), model.erase(key) == 1);
    } else if (!m.find(key)) {
      m.insert(key, step);
      model[key] = step;
    }
  }
  EXPECT_EQ(m.size(), model.size());
  for (const auto& [k, v] : model) {
    ASSERT_NE(m.find(k), nullptr) << k;
    EXPECT_EQ(*m.find(k), v);
  }
  for (const auto& [k, v] : model) EXPECT_TRUE(m.erase(k));
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.find("k1"), nullptr);
}

}  // namespace
}  // namespace troupe
