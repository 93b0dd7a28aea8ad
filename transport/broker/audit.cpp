// Consistency checks over the core's tables, for unit tests and fuzzers:
// what the routing code keeps in several places must agree.
#include <algorithm>
#include <unordered_set>

#include "broker/core.hpp"

namespace troupe {

std::size_t broker_core::placed_keys() const {
  std::size_t n = 0;
  for (const auto& [name, a] : actors_) n += a->keys.size();
  return n;
}

std::string broker_core::audit() const {
  if (queued_ + in_flight_ != requests_.live_count()) return "queued + in_flight != live requests";
  if (auto e = audit_durable(); !e.empty()) return e;
  std::size_t in_flight = 0, worker_keys = 0, queued_ids = 0;
  std::unordered_set<std::uint64_t> seen;
  auto check_queue = [&](const std::deque<std::uint64_t>& q, const char* which) -> std::string {
    for (const auto id : q) {
      if (!seen.insert(id).second) return std::string("a request waits twice, in ") + which;
      const auto* r = requests_.find(id);
      if (!r) return std::string("a stale id waits in ") + which;
      if (r->state != request_state::queued) return std::string("an in-flight request waits in ") + which;
      ++queued_ids;
    }
    return {};
  };
  for (std::uint32_t wi = 0; wi < workers_.size(); ++wi) {
    const auto& w = workers_[wi];
    if (!w.in_use) {
      if (w.keys || w.in_flight || !w.keyed_queue.empty()) return "a removed worker holds keys or requests";
      continue;
    }
    in_flight += w.in_flight;
    worker_keys += w.keys;
    for (const auto* a : w.actors)
      if (std::find(a->workers.begin(), a->workers.end(), wi) == a->workers.end())
        return "worker '" + w.name + "' is missing from the workers of '" + a->name + "'";
    if (auto e = check_queue(w.keyed_queue, "a keyed queue"); !e.empty()) return e;
  }
  if (in_flight != in_flight_) return "workers' in_flight do not add up";
  // Each worker's count and args bytes against the requests it holds.
  std::vector<std::uint32_t> held(workers_.size(), 0);
  std::vector<std::size_t> bytes(workers_.size(), 0);
  std::vector<std::uint32_t> awaiting(workers_.size(), 0);
  for (std::uint32_t ri = 0; ri < requests_.capacity(); ++ri) {
    if (!requests_.live(ri) || requests_[ri].state != request_state::in_flight) continue;
    const auto wi = requests_[ri].worker;
    if (wi >= workers_.size() || !workers_[wi].in_use) return "an in-flight request names no live worker";
    ++held[wi];
    bytes[wi] += requests_[ri].args_bytes;
    if (requests_[ri].calls_out > 0) ++awaiting[wi];
  }
  for (std::uint32_t wi = 0; wi < workers_.size(); ++wi) {
    const auto& w = workers_[wi];
    if (!w.in_use) continue;
    if (held[wi] != w.in_flight) return "worker '" + w.name + "' holds other requests than it counts";
    if (bytes[wi] != w.bytes_in_flight)
      return "worker '" + w.name + "' holds other args bytes than it counts";
    if (awaiting[wi] != w.awaiting) return "worker '" + w.name + "' awaits other requests than it counts";
    if (w.window < 1 || w.window > w.credits)
      return "worker '" + w.name + "' has a window outside 1..credits";
  }
  for (const auto& [name, a] : actors_) {
    if (auto e = check_queue(a->queue, "a name's queue"); !e.empty()) return e;
    if (!a->queue.empty() && !a->listed) return "'" + name + "' has waiting requests but is not listed";
    for (const auto wi : a->workers)
      if (wi >= workers_.size() || !workers_[wi].in_use || !workers_[wi].hosts_actor(*a))
        return "'" + name + "' lists a worker that does not host it";
    std::string bad;
    const actor_entry& actor = *a;  // a lambda may not capture a structured binding before clang 16
    a->keys.for_each([&](std::string_view key, const placement& p) {
      if (bad.empty() && !placement_valid(p))
        bad = "key '" + actor.name + "/" + std::string(key) + "' names no live worker";
      if (bad.empty() && !workers_[p.worker].hosts_actor(actor))
        bad = "key '" + actor.name + "/" + std::string(key) + "' is placed on a worker not hosting it";
    });
    if (!bad.empty()) return bad;
  }
  if (worker_keys != placed_keys()) return "workers' key counts do not add up";
  // Parked requests (durable.cpp) are queued but wait in no queue.
  if (queued_ids + durable_->parked != queued_) return "queued requests missing from every queue";
  return audit_bounds();
}

}  // namespace troupe
