// What the broker's memory may hold (docs/operations.md, "Limits"): bytes
// of queued requests per name and in total, how many credits a worker may
// use (below the per-peer send queue, so a live worker is never refused a
// request), how many names may be registered, and when a name no worker
// hosts any more is forgotten.
#include <algorithm>

#include "broker/core.hpp"

namespace troupe {

using protocol::status;

namespace {

// Messages a worker's send queue keeps free for what is not a request
// (heartbeats, the acknowledgements), so requests up to its credits always fit.
constexpr std::size_t send_queue_reserve = 16;

bool over(std::size_t limit, std::size_t value) { return limit != 0 && value > limit; }

}  // namespace

// Counts a request's frames in the queued budgets before it waits in a
// queue. Returns false (counting nothing) when they would go over either
// budget. A request counted already (it waited before and is routed again)
// is not new memory: it always fits.
bool broker_core::take_queued_bytes(std::uint32_t ri) {
  auto& r = requests_[ri];
  if (r.held_bytes != 0) return true;
  const std::size_t bytes = r.args.size() + r.meta.size();
  auto& a = *r.actor;
  if (over(opt_.max_queued_bytes_per_name, a.queued_bytes + bytes) ||
      over(opt_.max_queued_bytes, queued_bytes_ + bytes)) {
    ++bounds_.over_queued_bytes;
    return false;
  }
  r.held_bytes = static_cast<std::uint32_t>(bytes);
  a.queued_bytes += bytes;
  queued_bytes_ += bytes;
  return true;
}

// What a client whose request does not fit the queued budgets is told.
std::string broker_core::over_budget_message(const request& r) const {
  const std::size_t bytes = r.args.size() + r.meta.size();
  if (over(opt_.max_queued_bytes_per_name, r.actor->queued_bytes + bytes))
    return "the requests waiting for '" + r.actor->name + "' hold " + std::to_string(r.actor->queued_bytes) +
           " bytes; its limit is " + std::to_string(opt_.max_queued_bytes_per_name) +
           " (--max-queued-bytes-per-name)";
  return "the requests waiting in the broker hold " + std::to_string(queued_bytes_) +
         " bytes; the limit is " + std::to_string(opt_.max_queued_bytes) + " (--max-queued-bytes)";
}

// When a waiting request is sent to a worker (its args move into ZeroMQ)
// or ends.
void broker_core::give_back_queued_bytes(request& r) {
  if (r.held_bytes == 0) return;
  r.actor->queued_bytes -= r.held_bytes;
  queued_bytes_ -= r.held_bytes;
  r.held_bytes = 0;
}

// ZeroMQ holds at most --send-queue-limit messages for one peer, and a send
// beyond it fails (the worker would be removed): a worker may hold no more
// requests than fit below it. ZeroMQ learns what the peer's connection took
// from the queue only every half queue, so up to half the limit may count
// as queued while it is gone already: a worker gets half the limit, less a
// reserve.
std::uint32_t broker_core::credit_cap() const {
  if (opt_.send_queue_limit == 0) return 0xffffffff;
  const std::size_t half = opt_.send_queue_limit / 2;
  return static_cast<std::uint32_t>(half > 2 * send_queue_reserve ? half - send_queue_reserve
                                                                  : send_queue_reserve);
}

// Why a READY would take the broker past --max-names, or empty. Names it
// knows already cost nothing more.
std::string broker_core::names_refusal(const protocol::ready_info& info) const {
  if (opt_.max_names == 0) return {};
  std::size_t fresh = 0;
  for (const auto& name : info.actors)
    if (actors_.find(name) == actors_.end()) ++fresh;
  if (actors_.size() + fresh <= opt_.max_names) return {};
  return "the broker holds " + std::to_string(actors_.size()) + " actor names and may hold " +
         std::to_string(opt_.max_names) + " (--max-names); this READY adds " + std::to_string(fresh);
}

// A name gets the next place in the dense list behind `$broker actors`
// and worker_entry::hosts.
void broker_core::list_actor(actor_entry& a) {
  a.index = static_cast<std::uint32_t>(actor_list_.size());
  actor_list_.push_back(&a);
}

// The last worker hosting `a` left. If none comes back within
// --forget-names-after-ms, the name is forgotten (forget_unhosted_names).
void broker_core::note_unhosted(actor_entry& a) {
  a.unhosted_since = now_;
  if (a.unhosted_listed || opt_.forget_names_after.count() <= 0) return;
  a.unhosted_listed = true;
  unhosted_.push_back(&a);
}

// Forgets the names no worker has hosted for --forget-names-after-ms. A
// name that gets a worker again leaves the list here. O(names forgotten).
void broker_core::forget_unhosted_names(time_point now) {
  while (!unhosted_.empty()) {
    auto* a = unhosted_.front();
    if (!a->workers.empty()) {
      a->unhosted_listed = false;
      unhosted_.pop_front();
      continue;
    }
    // Roughly oldest first (a name unhosted again keeps its old place), so
    // a name may be forgotten up to one period late, never early.
    if (now - a->unhosted_since < opt_.forget_names_after) return;
    unhosted_.pop_front();
    a->unhosted_listed = false;
    if (!forget_name(*a, now)) {  // still has requests in flight: look again later
      a->unhosted_since = now;
      note_unhosted(*a);
    }
  }
}

// Answers the requests waiting for `a` with `unknown_actor` and forgets the
// name. Returns false, keeping it, while requests for it are in flight (on a
// worker that registered again without it): their slots point at it.
bool broker_core::forget_name(actor_entry& a, time_point now) {
  std::deque<std::uint64_t> waiting;
  waiting.swap(a.queue);
  const auto why =
      "no worker has hosted actor '" + a.name + "' for " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - a.unhosted_since).count()) +
      " s; it is forgotten";
  for (const auto id : waiting) {
    auto* r = requests_.find(id);
    if (!r) continue;
    if (!r->tell && !r->answered) reply_error(r->client, r->client_id, status::unknown_actor, why);
    release(slot_table<request>::index_of(id));
  }
  if (a.requests != 0) return false;
  if (a.listed) {
    const auto it = std::find(waiting_actors_.begin(), waiting_actors_.end(), &a);
    unlist_waiting(static_cast<std::size_t>(it - waiting_actors_.begin()));
  }
  // The last name takes the forgotten one's place in the dense list, and
  // in the hosts flags of the workers hosting it.
  auto* last = actor_list_.back();
  if (last != &a) {
    for (const auto wi : last->workers) {
      auto& hosts = workers_[wi].hosts;
      hosts[a.index] = 1;
      hosts[last->index] = 0;
    }
    last->index = a.index;
    actor_list_[a.index] = last;
  }
  actor_list_.pop_back();
  ++bounds_.names_forgotten;
  actors_.erase(actors_.find(a.name));  // frees `a`
  return true;
}

// The bounds' part of audit(): budgets, the dense name list, pending counts.
std::string broker_core::audit_bounds() const {
  if (actor_list_.size() != actors_.size()) return "the name list and the names differ in size";
  for (std::size_t i = 0; i < actor_list_.size(); ++i)
    if (actor_list_[i]->index != i) return "name '" + actor_list_[i]->name + "' is not at its index";
  std::size_t held = 0;
  string_map<std::size_t> per_name, requests;
  for (std::uint32_t ri = 0; ri < requests_.capacity(); ++ri) {
    if (!requests_.live(ri)) continue;
    const auto& r = requests_[ri];
    if (r.held_bytes != 0 && r.state != request_state::queued)
      return "a request in flight holds queued bytes";
    held += r.held_bytes;
    per_name[r.actor->name] += r.held_bytes;
    ++requests[r.actor->name];
  }
  if (held != queued_bytes_) return "queued bytes do not add up";
  for (const auto& [name, a] : actors_) {
    const auto it = per_name.find(name);
    if (a->queued_bytes != (it == per_name.end() ? 0 : it->second))
      return "queued bytes of '" + name + "' are off";
    const auto rt = requests.find(name);
    if (a->requests != (rt == requests.end() ? 0 : rt->second))
      return "request count of '" + name + "' is off";
    if (a->workers.empty() && !a->keys.empty()) return "'" + name + "' has keys but no worker";
  }
  for (const auto& w : workers_)
    if (w.in_use && w.credits > credit_cap())
      return "worker '" + w.name + "' has more credits than its send queue";
  return audit_pending();
}

}  // namespace troupe
