// The worker table: registration (READY), liveness (HEARTBEAT), graceful
// leaving (DISCONNECT) and removal, which answers every ask the worker held.
#include <algorithm>

#include "broker/core.hpp"

namespace troupe {

using protocol::command;
using protocol::status;

broker_core::actor_entry& broker_core::actor_named(std::string_view name) {
  auto it = actors_.find(name);
  if (it == actors_.end()) {
    auto a = std::make_unique<actor_entry>();
    a->name = std::string(name);
    list_actor(*a);
    it = actors_.emplace(a->name, std::move(a)).first;
  }
  return *it->second;
}

void broker_core::on_ready(const peer& from, const zmq::message_t& body, time_point now) {
  const std::string_view identity = from.id;
  std::string why;
  auto info = protocol::decode_ready(body.data(), body.size(), &why);
  if (!info) return refuse_ready(identity, why, now);
  const auto known = worker_by_identity_.find(identity);
  if (known != worker_by_identity_.end() && workers_[known->second].key != from.key_name)
    return refuse_command(from, "READY for a worker registered by another key", now);
  if (policy_) {
    for (const auto& name : info->actors) {
      if (policy_->may_register(from.key_name, name)) continue;
      // Refused, and told why (a worker key knows what it asked for): the
      // worker stops with the reason rather than retrying.
      const auto reason = "key '" + std::string(from.key_name) + "' may not register actor '" + name +
                          "' (the broker's name policy)";
      refuse_command(from, "READY: " + reason, now);
      auto& m = out_.push(identity, command::disconnect);
      protocol::encode_str(m.meta, reason);
      if (known != worker_by_identity_.end()) remove_worker(known->second, now);
      return;
    }
  }
  if (auto too_many = names_refusal(*info); !too_many.empty()) {
    ++bounds_.names_refused;
    return refuse_ready(identity, too_many, now);
  }
  const bool fresh = known == worker_by_identity_.end();
  const auto wi = fresh ? add_worker(identity) : known->second;
  auto& w = workers_[wi];
  w.key.assign(from.key_name);
  // A second READY replaces the names hosted. Keys of names it no longer
  // hosts must not stay placed on it: they are released, and requests
  // waiting here for them are routed again.
  auto before = w.actors;
  detach_from_actors(wi);
  w.name = std::move(info->name);
  w.pid = info->pid;
  w.credits = static_cast<std::uint32_t>(std::min<std::uint64_t>(info->credits, credit_cap()));
  // A new registration starts from the first window again: the methods it
  // now hosts may cost something else.
  w.window = std::min(w.credits, first_window);
  w.byte_budget = window_max_frames * opt_.limits.max_message_bytes;
  w.draining = false;
  w.last_seen = now;
  attach_to_actors(wi, info->actors);
  std::erase_if(before, [&](actor_entry* a) { return w.hosts_actor(*a); });
  if (!before.empty()) {
    forget_keys(wi, before);
    std::deque<std::uint64_t> waiting;
    waiting.swap(w.keyed_queue);
    for (const auto id : waiting) {
      auto* r = requests_.find(id);
      if (!r) continue;
      if (w.hosts_actor(*r->actor)) {
        w.keyed_queue.push_back(id);
      } else {
        route(slot_table<request>::index_of(id), now);
      }
    }
  }
  acknowledge_ready(identity);
  // Durable: its retry policies, the keys it holds, and whether a restarted
  // broker still waits for others (restore.cpp).
  for (auto& p : info->retry) durable_->policies[p.actor + "/" + p.method] = std::move(p);
  claim_keys(wi, info->keys);
  note_registered(wi, fresh, now);
  log_joined(wi, fresh);
  for (auto* a : workers_[wi].actors) place_waiting_keys(*a, now);
  pump(wi, now);
}

// The acknowledgement tells the worker it is registered and which liveness
// settings to keep, so the two sides cannot disagree about them.
void broker_core::acknowledge_ready(std::string_view identity) {
  auto& m = out_.push(identity, command::ready);
  protocol::encode_ready_ack(m.meta, {static_cast<std::uint64_t>(opt_.heartbeat.count()),
                                      static_cast<std::uint64_t>(opt_.liveness)});
}

// A refused READY is answered with DISCONNECT and the reason, so that the
// worker can tell "fix your registration" from "the broker restarted"; a
// peer that was registered is a worker no more.
void broker_core::refuse_ready(std::string_view identity, std::string_view why, time_point now) {
  ++count_.dropped;
  log_refused_ready(identity, why);
  auto& m = out_.push(identity, command::disconnect);
  protocol::encode_str(m.meta, why);
  if (const auto it = worker_by_identity_.find(identity); it != worker_by_identity_.end()) {
    removal_why_ = "its READY was refused: " + std::string(why);
    remove_worker(it->second, now);
    removal_why_.clear();
  }
}

std::uint32_t broker_core::add_worker(std::string_view identity) {
  std::uint32_t wi;
  if (free_workers_.empty()) {
    workers_.emplace_back();
    wi = static_cast<std::uint32_t>(workers_.size() - 1);
  } else {
    wi = free_workers_.back();
    free_workers_.pop_back();
  }
  auto& w = workers_[wi];
  w.in_use = true;
  w.identity = std::string(identity);
  w.in_flight = 0;
  w.awaiting = 0;
  w.bytes_in_flight = 0;
  w.reply_gap_ns = -1;
  w.busy_since_reply = false;
  w.keys = 0;
  worker_by_identity_.emplace(w.identity, wi);
  return wi;
}

void broker_core::attach_to_actors(std::uint32_t wi, const std::vector<std::string>& names) {
  auto& w = workers_[wi];
  for (const auto& name : names) {
    auto& a = actor_named(name);
    if (a.index >= w.hosts.size()) w.hosts.resize(actors_.size(), 0);
    if (w.hosts[a.index]) continue;  // listed twice
    w.hosts[a.index] = 1;
    w.actors.push_back(&a);
    a.workers.push_back(wi);
  }
}

void broker_core::detach_from_actors(std::uint32_t wi) {
  auto& w = workers_[wi];
  std::fill(w.hosts.begin(), w.hosts.end(), 0);
  for (auto* a : w.actors) {
    auto& ws = a->workers;
    ws.erase(std::remove(ws.begin(), ws.end(), wi), ws.end());
    if (a->cursor >= ws.size()) a->cursor = 0;
    if (ws.empty()) note_unhosted(*a);
  }
  w.actors.clear();
}

// Releases the keys of `actors` placed on worker `wi`. O(keys of those
// actors): for removals and re-registrations, never per request.
void broker_core::forget_keys(std::uint32_t wi, const std::vector<actor_entry*>& actors) {
  auto& w = workers_[wi];
  for (auto* a : actors) {
    if (w.keys == 0) return;
    w.keys -= a->keys.erase_if([&](std::string_view, const placement& p) { return p.worker == wi; });
  }
}

// Forgets a worker: answers what it held with worker_lost (unless it left
// gracefully and held nothing), and routes its waiting keyed requests again.
void broker_core::remove_worker(std::uint32_t wi, time_point now) {
  auto& w = workers_[wi];
  std::vector<std::uint32_t> lost;  // durable: delivered again, before what waited behind them
  std::size_t asks_lost = 0;
  for (std::uint32_t ri = 0; ri < requests_.capacity(); ++ri) {
    if (!requests_.live(ri)) continue;
    auto& r = requests_[ri];
    if (r.state != request_state::in_flight || r.worker != wi) continue;
    end_awaiting(r);
    if (r.durable) {
      lost.push_back(ri);
      continue;
    }
    if (!r.tell && !r.answered) {
      ++asks_lost;
      reply_error(r.client, r.client_id, status::worker_lost,
                  "worker '" + w.name + "' was lost while handling the request" +
                      (removal_why_.empty() ? std::string() : " (" + removal_why_ + ")"));
    }
    release(ri);
  }
  // Forget its keys now rather than on their next request, so the broker's
  // memory for keys follows the live workers.
  log_removed(wi, asks_lost);
  forget_keys(wi, w.actors);
  w.keys = 0;
  detach_from_actors(wi);
  worker_by_identity_.erase(w.identity);
  std::deque<std::uint64_t> waiting;
  waiting.swap(w.keyed_queue);
  w.in_use = false;
  ++w.generation;  // invalidates any placement still naming it
  w.in_flight = 0;
  w.awaiting = 0;
  w.bytes_in_flight = 0;
  free_workers_.push_back(wi);
  note_removed(wi);
  if (!lost.empty()) redeliver(lost, w.name, now);
  for (const auto id : waiting)
    if (requests_.find(id)) route(slot_table<request>::index_of(id), now);  // still counted as queued
}

// A HEARTBEAT from a worker's heartbeat socket names the worker's work
// socket. It is answered on the socket it came from, so the worker knows
// we are alive; DISCONNECT there says we do not know that worker.
//
// Only the key that registered a worker may keep it alive. A heartbeat from
// another key is answered exactly as one naming an unknown routing id, so
// the answer does not tell that key which routing ids exist.
void broker_core::on_heartbeat_for(const peer& sender, const zmq::message_t& named, time_point now) {
  const std::string_view worker_id(static_cast<const char*>(named.data()), named.size());
  const auto it = worker_by_identity_.find(worker_id);
  if (it == worker_by_identity_.end() || workers_[it->second].key != sender.key_name) {
    if (it != worker_by_identity_.end())
      refuse_command(sender, "a heartbeat for a worker registered by another key", now);
    send_command(sender.id, command::disconnect);
    return;
  }
  workers_[it->second].last_seen = now;
  send_command(sender.id, command::heartbeat);
}

void broker_core::on_worker_disconnect(std::uint32_t wi, time_point now) {
  auto& w = workers_[wi];
  w.draining = true;
  log_leaving(wi);
  send_command(w.identity, command::disconnect);
  if (w.in_flight == 0) remove_worker(wi, now);
}

void broker_core::send_heartbeats(time_point now) {
  const auto expiry = opt_.heartbeat * opt_.liveness;
  for (std::uint32_t wi = 0; wi < workers_.size(); ++wi) {
    auto& w = workers_[wi];
    if (!w.in_use) continue;
    if (now - w.last_seen > expiry) {
      removal_why_ = "silent for longer than " + std::to_string(expiry.count()) + " ms (heartbeat " +
                     std::to_string(opt_.heartbeat.count()) + " ms x liveness " +
                     std::to_string(opt_.liveness) + ")";
      remove_worker(wi, now);
      removal_why_.clear();
      continue;
    }
    send_command(w.identity, command::heartbeat);
  }
  next_heartbeat_ = now + opt_.heartbeat;
}

}  // namespace troupe
