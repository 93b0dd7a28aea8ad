// One activation per key across broker restarts (docs/protocol.md, "One
// activation per key"): workers claim the keys whose instances they hold
// when they register; a restarted broker restores those placements, and
// until the workers it knew have registered again (at most liveness ×
// heartbeat after it started) a keyed request for a key nobody claimed
// waits instead of activating the key a second time. A key claimed by a
// second worker stays where it is, and the claimant is told to drop its
// instance (RELEASE).
#include "broker/core.hpp"
#include "broker/durable.hpp"

namespace troupe {

using protocol::command;

void broker_core::claim_keys(std::uint32_t wi, const std::vector<std::string>& keys) {
  std::vector<std::string> drop;
  for (const auto& address : keys) {
    const auto parts = protocol::split_address(address);
    if (!parts || parts->key.empty()) continue;
    const auto it = actors_.find(parts->name);
    if (it == actors_.end() || !workers_[wi].hosts_actor(*it->second)) {
      drop.push_back(address);  // a name it does not host (any more): its instance has no use
      continue;
    }
    auto& a = *it->second;
    auto* p = a.keys.find(parts->key);
    if (p && placement_valid(*p)) {
      if (p->worker != wi) drop.push_back(address);
      continue;
    }
    if (!p) p = &a.keys.insert(parts->key, placement{});
    *p = placement{wi, workers_[wi].generation, 0, ++placement_serial_};
    ++workers_[wi].keys;
    ++durable_->count.claimed;
  }
  if (drop.empty()) return;
  durable_->count.claims_refused += drop.size();
  auto& m = out_.push(workers_[wi].identity, command::release);
  protocol::encode_release(m.meta, drop);
}

// A worker registered: the store remembers it, and a broker waiting for
// the workers it knew may stop waiting.
void broker_core::note_registered(std::uint32_t wi, bool fresh, time_point now) {
  auto& d = *durable_;
  const auto& identity = workers_[wi].identity;
  if (fresh && d.store) d.batch.workers_joined.push_back(identity);
  if (!d.restoring) return;
  d.expected_workers.erase(identity);
  if (d.expected_workers.empty()) return end_restore(now);
  route_held(now, false);
}

// READY from a worker's heartbeat socket, naming its work socket: the
// worker registers again while its main thread is busy (docs/protocol.md,
// READY). Handled as a READY from the work socket, which gets the answer.
void broker_core::on_ready_for(const peer& sender, const zmq::message_t& named, const zmq::message_t& info,
                               time_point now) {
  const std::string_view id(static_cast<const char*>(named.data()), named.size());
  if (id.empty() || id.size() > 255 || id[0] == '\0') {
    ++count_.dropped;
    return;
  }
  peer work = sender;
  work.id = id;
  on_ready(work, info, now);
}

void broker_core::note_removed(std::uint32_t wi) {
  auto& d = *durable_;
  if (d.store) d.batch.workers_left.push_back(workers_[wi].identity);
}

// In route(): a key nobody placed, while the broker waits for the workers
// it knew. Returns true (it waits).
bool broker_core::hold_for_restore(std::uint32_t ri) {
  auto& r = requests_[ri];
  r.worker = no_worker;
  park(ri);
  durable_->held_for_restore.push_back(requests_.id_of(ri));
  return true;
}

// Routes the held requests whose keys are placed now (all of them when the
// wait is over), in the order they arrived.
void broker_core::route_held(time_point now, bool all) {
  auto& d = *durable_;
  auto held = std::move(d.held_for_restore);
  d.held_for_restore.clear();
  for (const auto id : held) {
    auto* r = requests_.find(id);
    if (!r || !r->parked) continue;
    if (!all) {
      const auto* p = r->actor->keys.find(r->key());
      if (!p || !placement_valid(*p)) {
        d.held_for_restore.push_back(id);
        continue;
      }
    }
    const auto ri = slot_table<request>::index_of(id);
    unpark(ri);
    route(ri, now);
  }
}

void broker_core::end_restore(time_point now) {
  auto& d = *durable_;
  d.restoring = false;
  d.expected_workers.clear();
  route_held(now, true);
}

}  // namespace troupe
