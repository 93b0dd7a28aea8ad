// What the broker core keeps for durable messages (docs/durability.md):
// per request, its place in the store and its counts; for the core, the
// store, the batch being collected for the next commit, the messages by
// id, the schedule of delays and retries, the retry policies workers
// declared, and what a restarted broker waits for before placing keys.
// Only durable requests and management calls touch any of it: a plain
// request costs one test of an empty vector (core.cpp, accept_request).
#pragma once

#include <chrono>
#include <cstdint>
#include <queue>
#include <string>
#include <unordered_set>
#include <vector>

#include "broker/store.hpp"
#include "troupe/protocol.hpp"
#include "troupe/string_map.hpp"

namespace troupe {

// A durable request's own state (broker_core::request::durable).
struct durable_info {
  std::uint64_t seq = 0;
  std::string id;                // the client's message id
  std::uint32_t attempts = 0;    // runs that ended in an outcome its policy retries
  std::uint32_t lost = 0;        // deliveries that ended with the worker lost
  std::uint32_t deliveries = 0;  // deliveries since it was accepted or recovered (to the worker: this + 1)
  durable::unix_ms not_before = 0;
  durable::unix_ms accepted = 0;
  std::string last_error;
  bool committed = false;  // on disk: it may be confirmed and routed
};

struct durable_counters {
  std::uint64_t stored = 0, duplicates = 0, finished = 0, redelivered = 0, retried = 0, dead = 0;
  std::uint64_t refused = 0, commits = 0, recovered = 0;
  std::uint64_t claimed = 0, claims_refused = 0;  // keys placed by READY claims; claims answered RELEASE
};

struct durable_state {
  using time_point = std::chrono::steady_clock::time_point;

  durable::store* store = nullptr;  // null: --store none
  std::string store_error;          // why the store cannot be written now; "" when it can
  durable::batch batch;             // changes since the last commit
  // Requests accepted since the last commit, in arrival order: durable ones
  // (confirmed and routed once committed) and plain keyed ones that must not
  // overtake a durable one of their address.
  std::vector<std::uint64_t> uncommitted;
  std::unordered_set<std::string, string_hash, std::equal_to<>>
      uncommitted_addresses;  // keyed ones among them
  // Replies that wait for the commit (a re-sent tell's confirmation, a
  // dead letter retried): `value` is msgpack.
  struct pending_reply {
    std::string client;
    std::uint64_t id = 0;
    std::string value;
  };
  std::vector<pending_reply> after_commit;
  string_map<std::uint64_t> by_id;        // message id -> request id, every durable request held
  string_map<durable::result> finishing;  // outcomes in `batch` not yet committed, by message id
  std::uint64_t next_seq = 1;
  // A batch that holds no message waiting for its confirmation and no dead
  // letter (outcomes, schedules, workers joining or leaving) waits up to deferred_commit to
  // share the fsync of the next one that does: a message that finished is
  // answered at once from `finishing`, and after a crash in between it at
  // worst runs again (at least once). Without this, one durable message at
  // a time waits for the previous one's outcome to be synced before its own.
  std::chrono::milliseconds deferred_commit{20};  // broker_options::deferred_commit
  time_point deferred_since{};                    // when the batch began to wait; {}: not waiting
  // Delays and retries: (due, request id), earliest first.
  using due_entry = std::pair<time_point, std::uint64_t>;
  std::priority_queue<due_entry, std::vector<due_entry>, std::greater<>> schedule;
  std::size_t parked = 0;
  string_map<protocol::retry_policy> policies;  // "actor/method" -> policy, from READY
  durable_counters count;
  time_point next_expiry{};

  // One activation per key across restarts (restore.cpp): the routing ids
  // of the workers registered before the restart, expected back until
  // restore_until; keyed requests for unclaimed keys wait meanwhile.
  std::unordered_set<std::string> expected_workers;
  time_point restore_until{};
  std::vector<std::uint64_t> held_for_restore;
  bool restoring = false;

  std::chrono::seconds result_ttl{3600};
  std::uint32_t max_deliveries = 5;
  // Wall-clock milliseconds at the core's start, for times that must
  // survive a restart (the steady clock does not).
  durable::unix_ms wall_at_start = 0;
  time_point started{};

  durable::unix_ms wall(time_point now) const {
    return wall_at_start + std::chrono::duration_cast<std::chrono::milliseconds>(now - started).count();
  }
  time_point steady(durable::unix_ms at) const {
    return started + std::chrono::milliseconds(at - wall_at_start);
  }
};

}  // namespace troupe
