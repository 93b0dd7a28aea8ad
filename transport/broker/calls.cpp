// Requests made from inside methods (docs/protocol.md, "Call chains"). Such
// a request carries its call chain: the instances waiting for it, each with
// the broker's id of the request it runs. An instance handles one message at
// a time, so a request that needs an instance already waiting up its own
// chain would wait for itself until its deadline. The broker refuses it at
// once (`call_cycle`) instead, naming the chain:
//
// - a keyed target that is in the chain: its one instance is waiting;
// - an unkeyed target whose every live worker runs an instance of that name
//   waiting up the chain; otherwise it is routed to another worker only.
#include "broker/core.hpp"

#include <algorithm>

namespace troupe {

using protocol::status;

namespace {

std::uint64_t worker_tag(std::uint32_t wi, std::uint32_t generation) {
  return (static_cast<std::uint64_t>(generation) << 32) | wi;
}

}  // namespace

bool broker_core::screen_chain(std::string_view client, const protocol::request_meta& meta,
                               const protocol::address_parts& parts, std::vector<std::uint64_t>& avoid,
                               std::uint64_t& caller) {
  const auto links = protocol::decode_chain(meta.chain);
  // Its caller is the last link: when that is a request in flight here,
  // someone really waits for this one (routing.cpp lets it past credits).
  if (!links.empty()) {
    const auto* r = requests_.find(links.back().id);
    if (r && r->state == request_state::in_flight && r->address() == links.back().address)
      caller = links.back().id;
  }
  const bool tell = meta.is_tell() && !meta.is_durable();
  auto cycle = [&](std::string message) {
    if (tell) {
      ++count_.dropped;
    } else {
      reply_error(client, meta.id, status::call_cycle, message);
    }
    ++bounds_.call_cycles;
    return false;
  };
  if (!parts.key.empty()) {
    for (const auto& link : links)
      if (link.address == meta.address)
        return cycle("call cycle: " + protocol::describe_chain(links, meta.address) + " (the instance of '" +
                     protocol::to_valid_utf8(meta.address) + "' is waiting up this chain)");
    return true;
  }
  // Unkeyed: which workers run an instance of this name that waits up the
  // chain? The broker knows from its own requests in flight; a link whose id
  // is not one (finished, or from before a restart) holds no worker.
  for (const auto& link : links) {
    if (link.address != meta.address) continue;
    const auto* r = requests_.find(link.id);
    if (!r || r->state != request_state::in_flight || r->worker == no_worker || r->address() != link.address)
      continue;
    const auto tag = worker_tag(r->worker, workers_[r->worker].generation);
    if (std::find(avoid.begin(), avoid.end(), tag) == avoid.end()) avoid.push_back(tag);
  }
  if (avoid.empty()) return true;
  const auto it = actors_.find(parts.name);
  if (it == actors_.end()) return true;  // answered unknown_actor next
  for (const auto wi : it->second->workers)
    if (!workers_[wi].draining &&
        std::find(avoid.begin(), avoid.end(), worker_tag(wi, workers_[wi].generation)) == avoid.end())
      return true;  // another worker can take it
  return cycle("call cycle: " + protocol::describe_chain(links, meta.address) +
               " (every worker process hosting '" + std::string(parts.name) +
               "' is waiting up this chain; start more of them to call it from itself)");
}

// Whether a request for `key` waits in worker `w`'s keyed queue: a call
// from a method may pass the queue only when it overtakes nothing of its key.
bool broker_core::queued_for_key(const worker_entry& w, std::string_view key) const {
  for (const auto id : w.keyed_queue) {
    const auto* r = requests_.find(id);
    if (r && r->key() == key) return true;
  }
  return false;
}

// An ask from the method running request `caller` was accepted as request
// `ri`. While any of its asks is out, the caller awaits: its worker serves
// other messages meanwhile (a coroutine method, or another process's
// instance), so the worker's window stops counting it, and the worker may
// take more work at once.
void broker_core::start_call(std::uint32_t ri, std::uint64_t caller, time_point now) {
  auto* c = requests_.find(caller);
  if (!c || c->state != request_state::in_flight || c->worker == no_worker) return;
  requests_[ri].caller = caller;
  if (c->calls_out++ > 0) return;
  auto& w = workers_[c->worker];
  ++w.awaiting;
  w.busy_since_reply = false;  // a wait is not work: no reply gap measured across it
  pump(c->worker, now);
}

// Call request `r` ended: its caller awaits one ask fewer.
void broker_core::end_call(request& r) {
  if (r.caller == 0) return;
  auto* c = requests_.find(r.caller);
  r.caller = 0;
  if (!c || c->calls_out == 0 || --c->calls_out > 0) return;
  if (c->state == request_state::in_flight && c->worker != no_worker) {
    auto& w = workers_[c->worker];
    --w.awaiting;
    w.busy_since_reply = false;
  }
}

// Request `r` leaves its worker (answered, lost, or queued again): it no
// longer awaits there. Its calls still out find it with calls_out 0.
void broker_core::end_awaiting(request& r) {
  if (r.calls_out == 0) return;
  if (r.state == request_state::in_flight && r.worker != no_worker) --workers_[r.worker].awaiting;
  r.calls_out = 0;
}

bool broker_core::avoids(const request& r, std::uint32_t wi) const {
  return std::find(r.avoid.begin(), r.avoid.end(), worker_tag(wi, workers_[wi].generation)) != r.avoid.end();
}

}  // namespace troupe
