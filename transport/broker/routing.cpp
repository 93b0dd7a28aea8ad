// Routing: which worker gets a request, and where it waits when none can
// take it now. Unkeyed requests go to any worker hosting their name that has
// a credit (round-robin); keyed requests go to the worker their key is
// placed on, in arrival order, and wait in that worker's keyed queue.
#include "broker/core.hpp"

#include <algorithm>

namespace troupe {

using protocol::command;
using protocol::status;

bool broker_core::worker_entry::hosts_actor(const actor_entry& a) const {
  return a.index < hosts.size() && hosts[a.index] != 0;
}

// Sends request `ri` to worker `wi`, which has a free credit. The worker
// sees the broker's id for it and the time it has left.
void broker_core::dispatch(std::uint32_t ri, std::uint32_t wi, time_point now) {
  auto& r = requests_[ri];
  auto& w = workers_[wi];
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - now).count();
  protocol::request_meta meta{requests_.id_of(ri), r.address(), r.method(), r.tell ? protocol::flag_tell : 0,
                              static_cast<std::uint64_t>(std::max<std::int64_t>(left, 1))};
  meta.chain = r.chain();                     // the worker extends it for the calls the method makes
  if (r.durable) describe_delivery(r, meta);  // durable.cpp
  auto& m = out_.push(w.identity, command::request);
  protocol::encode_request_meta(m.meta, meta);
  r.args_bytes = r.args.size();
  w.bytes_in_flight += r.args_bytes;
  if (r.durable) {
    m.payload.copy(r.args);  // kept: a lost worker's message is delivered again
  } else {
    m.payload = std::move(r.args);
  }
  m.has_payload = true;
  if (r.state == request_state::queued) --queued_;
  give_back_queued_bytes(r);  // its args now belong to ZeroMQ's queue for the worker
  r.state = request_state::in_flight;
  r.worker = wi;
  ++in_flight_;
  ++w.in_flight;
}

// Called for each reply from worker `w` (its in_flight already returned).
// The time between two replies, when the worker held work all along, is
// what one request costs it there, transport included; its smoothed value
// (1/8 per reply, so one scheduling hiccup is forgotten within a few dozen
// replies) says how many requests make window_work. Replies that arrive
// together (gap 0) mean that it is faster than the clock can tell: all its
// credits.
void broker_core::adapt_window(worker_entry& w, time_point now) {
  if (w.busy_since_reply) {
    const auto gap = std::chrono::duration_cast<std::chrono::nanoseconds>(now - w.last_reply).count();
    w.reply_gap_ns = w.reply_gap_ns < 0 ? gap : w.reply_gap_ns + (gap - w.reply_gap_ns) / 8;
    const std::int64_t want =
        w.reply_gap_ns > 0 ? std::chrono::nanoseconds(window_work).count() / w.reply_gap_ns : w.credits;
    const std::int64_t least = std::min(w.credits, least_window);
    w.window = static_cast<std::uint32_t>(std::clamp<std::int64_t>(want, least, w.credits));
  }
  w.last_reply = now;
  w.busy_since_reply = w.working() > 0;
}

bool broker_core::placement_valid(const placement& p) const {
  return p.worker < workers_.size() && workers_[p.worker].in_use &&
         workers_[p.worker].generation == p.generation;
}

// Picks a live, non-draining worker hosting `a`, preferring one with a free
// credit; round-robin so load spreads evenly. Without `need_credit` it falls
// back to a worker with no credit free (a key is placed there and waits).
// A worker `for_request` avoids (calls.cpp) is never picked.
std::uint32_t broker_core::pick_worker(actor_entry& a, bool need_credit, const request* for_request) {
  const auto n = a.workers.size();
  std::uint32_t fallback = no_worker;
  for (std::size_t i = 0; i < n; ++i) {
    const auto wi = a.workers[(a.cursor + i) % n];
    const auto& w = workers_[wi];
    if (w.draining) continue;
    if (for_request && avoids(*for_request, wi)) continue;
    if (w.has_credit()) {
      a.cursor = (a.cursor + i + 1) % n;
      return wi;
    }
    if (fallback == no_worker) fallback = wi;
  }
  if (need_credit) return no_worker;
  if (fallback != no_worker) a.cursor = (a.cursor + 1) % std::max<std::size_t>(n, 1);
  return fallback;
}

// Routes an accepted request. Returns false when it was answered
// `overloaded` and released.
bool broker_core::route(std::uint32_t ri, time_point now) {
  auto& r = requests_[ri];
  auto& a = *r.actor;
  const auto key = r.key();
  uncount_placement(ri);  // routed again: it counts where it goes now
  if (key.empty()) {
    // Nothing waits before it, it may go at once. A call from a method
    // goes at once to a worker with no credit free too: the credits may be
    // held by messages that wait behind its own caller (calls.cpp).
    if (a.queue.empty() || r.called) {
      const auto* avoiding = r.avoid.empty() ? nullptr : &r;
      auto wi = pick_worker(a, true, avoiding);
      if (wi == no_worker && r.called) wi = pick_worker(a, false, avoiding);
      if (wi != no_worker) {
        dispatch(ri, wi, now);
        return true;
      }
    }
    return enqueue_for_any(a, ri);
  }
  placement* placed = a.keys.find(key);
  if (!placed || !placement_valid(*placed)) {
    // A restarted broker waits for the workers it knew to claim their keys.
    if (durable_->restoring) return hold_for_restore(ri);
    const auto wi = pick_worker(a, false);
    if (wi == no_worker) return enqueue_for_any(a, ri);  // no live worker: wait for one
    if (!placed) placed = &a.keys.insert(key, placement{});
    *placed = placement{wi, workers_[wi].generation, 0, ++placement_serial_};
    ++workers_[wi].keys;
  }
  count_on_placement(ri, *placed);
  const auto wi = placed->worker;
  auto& w = workers_[wi];
  if ((w.keyed_queue.empty() && w.has_credit()) || (r.called && !w.draining && !queued_for_key(w, key))) {
    dispatch(ri, wi, now);
    return true;
  }
  r.worker = wi;  // whose keyed queue it waits in, for erase_queued
  return enqueue(w.keyed_queue, ri);
}

bool broker_core::enqueue(std::deque<std::uint64_t>& q, std::uint32_t ri) {
  auto& r = requests_[ri];
  if (r.durable) {  // stored already: it waits, whatever the bounds (durable.cpp checks them on arrival)
    q.push_back(requests_.id_of(ri));
    return true;
  }
  if (q.size() >= opt_.queue_limit) {
    if (!r.tell) reply_error(r.client, r.client_id, status::overloaded, "queue is full");
    release(ri);
    return false;
  }
  if (!take_queued_bytes(ri)) {
    if (!r.tell) reply_error(r.client, r.client_id, status::overloaded, over_budget_message(r));
    release(ri);
    return false;
  }
  q.push_back(requests_.id_of(ri));
  return true;
}

// Queues a request for whichever worker hosting `a` frees a credit first.
bool broker_core::enqueue_for_any(actor_entry& a, std::uint32_t ri) {
  requests_[ri].worker = no_worker;
  if (!enqueue(a.queue, ri)) return false;
  if (!a.listed) {
    a.listed = true;
    waiting_actors_.push_back(&a);
  }
  return true;
}

void broker_core::unlist_waiting(std::size_t i) {
  waiting_actors_[i]->listed = false;
  waiting_actors_[i] = waiting_actors_.back();
  waiting_actors_.pop_back();
}

// Gives worker `wi` work up to its credits: first its keyed queue, then the
// queues of the names it hosts.
void broker_core::pump(std::uint32_t wi, time_point now) {
  auto& w = workers_[wi];
  while (w.has_credit() && !w.keyed_queue.empty()) {
    const auto id = w.keyed_queue.front();
    w.keyed_queue.pop_front();
    if (requests_.find(id)) dispatch(slot_table<request>::index_of(id), wi, now);
  }
  if (w.has_credit()) pump_waiting_names(wi, now);
}

// The waiting names worker `wi` hosts, round-robin; stops after a full pass
// that found nothing for this worker.
void broker_core::pump_waiting_names(std::uint32_t wi, time_point now) {
  auto& w = workers_[wi];
  std::size_t fruitless = 0;
  while (w.has_credit() && fruitless < waiting_actors_.size()) {
    if (waiting_cursor_ >= waiting_actors_.size()) waiting_cursor_ = 0;
    auto& a = *waiting_actors_[waiting_cursor_];
    if (a.queue.empty()) {
      unlist_waiting(waiting_cursor_);  // another actor moved into this place
      continue;
    }
    ++waiting_cursor_;
    if (!w.hosts_actor(a)) {
      ++fruitless;
      continue;
    }
    auto* r = requests_.find(a.queue.front());
    // One made up a chain this worker's instance waits on: another worker
    // takes it (calls.cpp); the name's queue waits behind it.
    if (r && !r->avoid.empty() && avoids(*r, wi)) {
      ++fruitless;
      continue;
    }
    fruitless = 0;
    const auto id = a.queue.front();
    a.queue.pop_front();
    if (!r) continue;
    const auto ri = slot_table<request>::index_of(id);
    if (r->key().empty()) {
      dispatch(ri, wi, now);
    } else {
      route(ri, now);  // waited for any worker; place its key now
    }
  }
}

// Keyed requests that waited in a name's queue for a worker to appear are
// placed as soon as one does, so a later request for the same key cannot
// overtake them.
void broker_core::place_waiting_keys(actor_entry& a, time_point now) {
  std::deque<std::uint64_t> waiting;
  waiting.swap(a.queue);
  for (const auto id : waiting) {
    auto* r = requests_.find(id);
    if (!r) continue;
    if (r->key().empty()) {
      a.queue.push_back(id);  // still listed: the queue was not empty
    } else {
      route(slot_table<request>::index_of(id), now);
    }
  }
}

}  // namespace troupe
