// How workers and keyed instances end, beyond a graceful DISCONNECT:
// - a pool supervisor's DISCONNECT for one of its processes (it died, or was
//   killed for running past a time limit): the worker is removed at once;
// - a worker's RELEASE of keys whose instances it passivated: each placement
//   is released unless a request for the key is on its way to that worker;
// - a message the socket loop could not send.
// docs/protocol.md, "DISCONNECT" and "RELEASE".
#include "broker/core.hpp"

namespace troupe {

using protocol::status;

// DISCONNECT with a body: `worker`, the routing id of a work socket, and
// optionally `info` (disconnect_info). Only the key that registered that
// worker may speak for it, as for a heartbeat on its behalf.
void broker_core::on_worker_gone(const peer& from, std::span<zmq::message_t> body, std::size_t count,
                                 time_point now) {
  if (count < 1 || count > 2 || count > body.size()) {
    ++count_.dropped;
    return;
  }
  const std::string_view id(static_cast<const char*>(body[0].data()), body[0].size());
  protocol::disconnect_info info;
  if (count == 2) {
    auto decoded = protocol::decode_disconnect_info(body[1].data(), body[1].size());
    if (!decoded) {
      ++count_.dropped;
      return;
    }
    info = std::move(*decoded);
  }
  const auto it = worker_by_identity_.find(id);
  if (it == worker_by_identity_.end()) return;  // gone already (it left, or its heartbeats stopped)
  const auto wi = it->second;
  if (workers_[wi].key != from.key_name)
    return refuse_command(from, "a DISCONNECT for a worker registered by another key", now);
  ++bounds_.workers_gone;
  if (info.stuck != 0) {
    auto* r = requests_.find(info.stuck);
    if (r && r->state == request_state::in_flight && r->worker == wi && !r->answered) {
      if (!r->tell)
        reply_error(r->client, r->client_id, status::time_limit_exceeded,
                    std::string(r->address()) + " " + std::string(r->method()) + ": " +
                        (info.why.empty() ? std::string("ran past its time limit") : info.why) +
                        "; its worker process was replaced");
      r->answered = true;  // so the removal below does not answer it again
    }
  }
  removal_why_ = info.why.empty() ? std::string("its process is gone") : info.why;
  remove_worker(wi, now);
  removal_why_.clear();
}

// RELEASE: the worker destroyed the instances of these keyed addresses. A
// placement is released only when no request for its key is queued for
// that worker or in flight to it; otherwise that request re-activates the
// key on the same worker, and the key stays placed there.
void broker_core::on_release(std::uint32_t wi, std::span<zmq::message_t> body, std::size_t count) {
  if (count != 1 || body.empty()) {
    ++count_.dropped;
    return;
  }
  const auto addresses = protocol::decode_release(body[0].data(), body[0].size());
  if (!addresses) {
    ++count_.dropped;
    return;
  }
  auto& w = workers_[wi];
  for (const auto address : *addresses) {
    const auto parts = protocol::split_address(address);
    if (!parts || parts->key.empty()) continue;
    const auto it = actors_.find(parts->name);
    if (it == actors_.end()) continue;
    auto& a = *it->second;
    const auto* p = a.keys.find(parts->key);
    if (!p || p->worker != wi || !placement_valid(*p)) continue;  // not placed here: nothing to release
    if (p->pending != 0) {
      ++bounds_.releases_kept;
      continue;
    }
    a.keys.erase(parts->key);
    --w.keys;
    ++bounds_.passivated;
  }
}

// A keyed request routed to the worker its key is placed on counts on that
// placement until it ends (or is routed again).
void broker_core::count_on_placement(std::uint32_t ri, placement& p) {
  auto& r = requests_[ri];
  r.on_placement = true;
  r.worker = p.worker;
  r.placed_serial = p.serial;
  ++p.pending;
}

void broker_core::uncount_placement(std::uint32_t ri) {
  auto& r = requests_[ri];
  if (!r.on_placement) return;
  r.on_placement = false;
  // The placement may be gone (its worker left, or re-registered without
  // the name), or be a newer one on another worker: then nothing counts it.
  auto* p = r.actor->keys.find(r.key());
  if (p && p->serial == r.placed_serial && p->pending > 0) --p->pending;
}

void broker_core::on_unsent(std::string_view to, protocol::command, std::string_view, time_point now) {
  ++bounds_.unsent;
  // A reply a client does not read ends with this: its ask is over. A
  // message for a worker's work socket means the worker is gone or stuck.
  const auto it = worker_by_identity_.find(to);
  if (it == worker_by_identity_.end()) return;
  removal_why_ = "the broker could not send to it (gone, or not reading)";
  remove_worker(it->second, now);
  removal_why_.clear();
}

// Each placement's pending count equals the requests counted on it.
std::string broker_core::audit_pending() const {
  std::size_t counted = 0;
  for (std::uint32_t ri = 0; ri < requests_.capacity(); ++ri) {
    if (!requests_.live(ri)) continue;
    const auto& r = requests_[ri];
    if (!r.on_placement) continue;
    const auto* p = r.actor->keys.find(r.key());
    if (p && p->serial == r.placed_serial) ++counted;
  }
  std::size_t pending = 0;
  for (const auto& [name, a] : actors_)
    a->keys.for_each([&](std::string_view, const placement& p) { pending += p.pending; });
  if (counted != pending) return "placements' pending counts do not add up";
  return {};
}

}  // namespace troupe
