// Screening of every message, requests from clients, replies from workers,
// and deadlines. Routing is in routing.cpp, the worker table in workers.cpp.
#include "broker/core.hpp"

#include <algorithm>
#include <random>

namespace troupe {
namespace {

using protocol::command;
using protocol::status;

constexpr std::uint64_t max_timeout_ms = 86'400'000;  // one day

// For log lines about refused commands.
std::string_view command_name(command c) {
  switch (c) {
    case command::request:
      return "REQUEST";
    case command::reply:
      return "REPLY";
    case command::ready:
      return "READY";
    case command::heartbeat:
      return "HEARTBEAT";
    case command::disconnect:
      return "DISCONNECT";
    default:
      return "a worker's command";
  }
}

std::uint16_t offset_in(const zmq::message_t& frame, std::string_view part) {
  return static_cast<std::uint16_t>(part.data() - static_cast<const char*>(frame.data()));
}

}  // namespace

std::string_view broker_core::request::key() const {
  if (address_size == name_size) return {};
  return text(static_cast<std::uint16_t>(address_at + name_size + 1),
              static_cast<std::uint16_t>(address_size - name_size - 1));
}

broker_core::broker_core(broker_options options, time_point now)
    : opt_(std::move(options)),
      started_(now),
      next_heartbeat_(now + opt_.heartbeat),
      requests_(opt_.request_id_seed ? opt_.request_id_seed : std::random_device{}()) {
  init_durable(now);
}

broker_core::~broker_core() = default;

// ---- screening -----------------------------------------------------------

void broker_core::on_message(const peer& from, std::span<zmq::message_t> frames, std::size_t count,
                             time_point now) {
  now_ = now;
  frames = frames.first(std::min(count, frames.size()));
  const auto cmd = count >= 1 ? protocol::parse_header(frames[0].data(), frames[0].size()) : std::nullopt;
  if (!cmd) {
    ++count_.dropped;  // not troupe's protocol, or a version we do not speak
    return;
  }
  const std::size_t body = count - 1;
  if (*cmd == command::request) {
    if (!has_role(from.role, peer_role::client))
      return refuse_command(from, "REQUEST (not a client key)", now);
    if (body != 2)
      return reply_error(from.id, 0, status::bad_request, "REQUEST needs exactly 2 frames after the header");
    return on_request(from, frames[1], frames[2], now);
  }
  // Everything else is a worker's. Refused without an answer, so a peer
  // that is not a worker learns nothing, not even which routing ids exist.
  if (!has_role(from.role, peer_role::worker))
    return refuse_command(from, std::string(command_name(*cmd)) + " (not a worker key)", now);
  if (*cmd == command::heartbeat && body == 1) return on_heartbeat_for(from, frames[1], now);
  // With a body, DISCONNECT comes from a pool supervisor, for one of its processes.
  if (*cmd == command::disconnect && body >= 1) return on_worker_gone(from, frames.subspan(1), body, now);
  if (*cmd == command::ready) {
    if (body == 2) return on_ready_for(from, frames[2], frames[1], now);  // from a heartbeat socket
    if (body != 1) {
      ++count_.dropped;
      return;
    }
    return on_ready(from, frames[1], now);
  }
  const auto it = worker_by_identity_.find(from.id);
  if (it == worker_by_identity_.end()) {
    // A worker we do not know (we restarted, or declared it dead): ask it
    // to register again. A DISCONNECT from it needs no answer.
    if (*cmd != command::disconnect) send_command(from.id, command::disconnect);
    if (*cmd == command::reply || *cmd == command::release) ++count_.dropped;
    return;
  }
  // A routing id is the key's that registered it: another key that took
  // it over (after the worker's connection closed) may not reply, beat or
  // leave for it.
  if (workers_[it->second].key != from.key_name)
    return refuse_command(from, "a command for a worker registered by another key", now);
  // More frames than kept leaves `body` above any span size: malformed.
  on_worker_message(it->second, *cmd, frames.subspan(1), body, now);
}

void broker_core::refuse_command(const peer& from, std::string_view what, time_point now) {
  ++count_.refused;
  if (!log_) return;
  // One line per key per second at most: a flood of refused commands must
  // not become a flood of log lines.
  auto it = refusals_.find(from.key_name);
  if (it == refusals_.end()) {
    it = refusals_.emplace(std::string(from.key_name), refusal_log{now - std::chrono::seconds(2), 0}).first;
  }
  auto& r = it->second;
  if (now - r.last < std::chrono::seconds(1)) {
    ++r.left_out;
    return;
  }
  const std::string key = from.key_name.empty() ? "(none: no longer accepted)" : std::string(from.key_name);
  std::string line = "refused " + std::string(what) + " from key '" + key + "'";
  if (r.left_out) line += " (and " + std::to_string(r.left_out) + " more from it in the last second)";
  r.last = now;
  r.left_out = 0;
  log_(line);
}

void broker_core::on_worker_message(std::uint32_t wi, command c, std::span<zmq::message_t> body,
                                    std::size_t body_count, time_point now) {
  workers_[wi].last_seen = now;
  switch (c) {
    case command::reply:
      if (body_count != 2) {
        ++count_.dropped;
        return;
      }
      return on_reply(wi, body[0], body[1], now);
    case command::heartbeat:
      // A sign of life is all it is; with more than the one frame that
      // names another worker (handled before) it is malformed, and dropped.
      if (body_count != 0) ++count_.dropped;
      return;
    case command::disconnect:
      return on_worker_disconnect(wi, now);
    case command::release:
      return on_release(wi, body, body_count);
    default:
      ++count_.dropped;  // a REQUEST is screened before; nothing else is left
  }
}

// ---- requests from clients ----------------------------------------------

void broker_core::on_request(const peer& from, zmq::message_t& meta_frame, zmq::message_t& args,
                             time_point now) {
  const std::string_view client = from.id;
  ++count_.requests;
  auto meta = protocol::decode_request_meta(meta_frame.data(), meta_frame.size());
  if (!meta)
    return reply_error(client, 0, status::bad_request,
                       "request meta is not [id, address, method, flags, timeout_ms, durable?, chain?]");
  const bool tell = meta->is_tell() && !meta->is_durable();  // a durable tell is answered
  auto refuse = [&](status code, std::string_view message) {
    if (tell) {
      ++count_.dropped;
      return;
    }
    reply_error(client, meta->id, code, message);
  };
  if (meta->id == 0) return refuse(status::bad_request, "request id 0 is reserved");
  if ((meta->flags & ~(protocol::flag_tell | protocol::flag_durable)) != 0)
    return refuse(status::bad_request, "unknown flags");
  if (meta->is_durable() != meta->has_durable)
    return refuse(status::bad_request,
                  "a durable request needs the durable flag and a 6th meta element, {\"id\": ...}");
  const auto parts = protocol::split_address(meta->address);
  if (!parts) return refuse(status::bad_request, "malformed address");
  if (!protocol::valid_method_name(meta->method)) return refuse(status::bad_request, "malformed method name");
  if (args.size() > opt_.limits.max_message_bytes)
    return refuse(status::bad_request, "args frame is over the size limit");

  if (parts->name == protocol::management_actor) {
    if (meta->is_durable())
      return refuse(status::bad_request, "durable messages to $broker are not supported");
    // ping tells anyone the broker is there; the rest is for admins, or
    // for every client when the broker has no admin keys.
    if (meta->method != "ping" && !opt_.admins_keys.empty() && !has_role(from.role, peer_role::admin))
      return refuse_command(
          from, "`$broker " + protocol::to_valid_utf8(meta->method) + "` (not an admin key)", now);
    return on_management(from, *meta, args, now);
  }
  if (policy_ && !policy_->may_call(from.key_name, parts->name))
    return refuse_command(from, "a request for '" + std::string(parts->name) + "' (outside its name policy)",
                          now);

  std::vector<std::uint64_t> avoid;
  std::uint64_t caller = 0;
  if (!meta->chain.empty() && !screen_chain(client, *meta, *parts, avoid, caller)) return;  // calls.cpp
  if (meta->is_durable()) return on_durable_request(from, *meta, *parts, meta_frame, args, now);
  const auto it = actors_.find(parts->name);
  if (it == actors_.end())
    return refuse(status::unknown_actor, "no worker hosts actor '" + std::string(parts->name) + "'");
  const auto ri = new_request(client, *meta, *parts, *it->second, meta_frame, args, now);
  requests_[ri].avoid = std::move(avoid);
  requests_[ri].called = caller != 0;
  if (caller != 0 && !meta->is_tell()) start_call(ri, caller, now);
  accept_request(ri, *parts, now);
}

void broker_core::accept_request(std::uint32_t ri, const protocol::address_parts& parts, time_point now) {
  deadlines_.push(ri, requests_[ri].deadline);
  // Behind a durable message of its address that waits for its commit, it
  // waits too: it must not overtake it (durable.cpp).
  if (!durable_->uncommitted.empty() && !parts.key.empty() && behind_uncommitted(requests_[ri].address()))
    return hold_until_commit(ri);
  route(ri, now);
}

// A request slot filled from a client's REQUEST (or a recovered durable
// message), counted as queued; the caller routes it.
std::uint32_t broker_core::new_request(std::string_view client, const protocol::request_meta& meta,
                                       const protocol::address_parts& parts, actor_entry& actor,
                                       zmq::message_t& meta_frame, zmq::message_t& args, time_point now) {
  const auto ri = requests_.acquire();
  auto& r = requests_[ri];
  r.state = request_state::queued;  // until dispatched
  ++queued_;
  r.tell = meta.is_tell();
  r.answered = false;
  r.worker = no_worker;
  r.client_id = meta.id;
  r.client.assign(client);
  r.actor = &actor;
  ++actor.requests;
  r.held_bytes = 0;
  r.on_placement = false;
  // Clamped so that a hostile value cannot overflow the clock arithmetic.
  const auto timeout = meta.timeout_ms ? std::chrono::milliseconds(std::min(meta.timeout_ms, max_timeout_ms))
                                       : opt_.default_timeout;
  r.deadline = now + timeout;
  // Offsets, not views: moving a small zmq message moves its bytes too.
  r.address_at = offset_in(meta_frame, meta.address);
  r.address_size = static_cast<std::uint16_t>(meta.address.size());
  r.name_size = static_cast<std::uint16_t>(parts.name.size());
  r.method_at = offset_in(meta_frame, meta.method);
  r.method_size = static_cast<std::uint16_t>(meta.method.size());
  // 32 bits: a durable map before it may hold unknown keys of any size.
  r.chain_at =
      meta.chain.empty()
          ? 0
          : static_cast<std::uint32_t>(meta.chain.data() - static_cast<const char*>(meta_frame.data()));
  r.chain_size = static_cast<std::uint32_t>(meta.chain.size());
  r.avoid.clear();
  r.called = false;
  r.caller = 0;
  r.calls_out = 0;
  r.meta = std::move(meta_frame);
  r.args = std::move(args);
  r.parked = false;
  r.durable.reset();
  return ri;
}

// ---- replies from workers -------------------------------------------------

void broker_core::on_reply(std::uint32_t wi, zmq::message_t& meta_frame, zmq::message_t& value,
                           time_point now) {
  const auto meta = protocol::decode_reply_meta(meta_frame.data(), meta_frame.size());
  auto* r = meta ? requests_.find(meta->id) : nullptr;
  if (!r || r->state != request_state::in_flight || r->worker != wi) {
    ++count_.dropped;  // malformed, late after a broker restart, or forged
    return;
  }
  auto& w = workers_[wi];
  end_awaiting(*r);
  --w.in_flight;
  w.bytes_in_flight -= r->args_bytes;
  adapt_window(w, now);
  const auto ri = slot_table<request>::index_of(meta->id);
  const bool durable = r->durable != nullptr;
  if (durable) {
    // Its outcome is recorded (or it runs again later: then it lives on).
    if (on_durable_outcome(ri, meta->status_text, value, now)) release(ri);
  } else if (r->tell || r->answered) {
    if (r->answered) ++count_.dropped;  // late: the client got deadline_exceeded
  } else {
    auto& m = out_.push(r->client, command::reply);
    protocol::encode_reply_meta(m.meta, r->client_id, meta->status_text);
    m.payload = std::move(value);
    m.has_payload = true;
    ++count_.replies;
    if (meta->status_text != "ok") ++count_.errors;
  }
  if (!durable) release(ri);
  if (w.draining && w.in_flight == 0) {
    remove_worker(wi, now);
  } else {
    pump(wi, now);
  }
}

void broker_core::reply_error(std::string_view client, std::uint64_t id, status code,
                              std::string_view message) {
  auto& m = out_.push(client, command::reply);
  protocol::encode_reply_meta(m.meta, id, protocol::to_string(code));
  protocol::encode_str(meta_buf_, message);
  m.payload.rebuild(meta_buf_.data(), meta_buf_.size());
  m.has_payload = true;
  ++count_.replies;
  ++count_.errors;
  switch (code) {
    case status::bad_request:
      ++count_.bad_requests;
      break;
    case status::overloaded:
      ++count_.overloaded;
      break;
    case status::deadline_exceeded:
      ++count_.deadline_exceeded;
      break;
    case status::worker_lost:
      ++count_.worker_lost;
      break;
    case status::unknown_actor:
      ++count_.unknown_actor;
      break;
    case status::time_limit_exceeded:
      ++bounds_.time_limit_exceeded;
      break;
    default:
      break;
  }
}

// Ends a request's life in the broker: out of the deadline heap, out of the
// counts, its frames released, its slot free for the next request.
void broker_core::release(std::uint32_t ri) {
  auto& r = requests_[ri];
  end_awaiting(r);
  end_call(r);
  deadlines_.erase(ri);
  if (r.state == request_state::queued) --queued_;
  if (r.state == request_state::in_flight) --in_flight_;
  give_back_queued_bytes(r);
  uncount_placement(ri);
  unpark(ri);
  r.durable.reset();
  r.avoid.clear();
  r.chain_size = 0;
  --r.actor->requests;
  r.actor = nullptr;
  r.args.rebuild();
  r.meta.rebuild();
  requests_.release(ri);
}

// ---- time -------------------------------------------------------------------

void broker_core::tick(time_point now) {
  now_ = now;
  expire_deadlines(now);
  forget_unhosted_names(now);
  if (now >= next_heartbeat_) send_heartbeats(now);
  run_schedule(now);  // durable: delays, retries, the restore window, old results
}

broker_core::time_point broker_core::next_wakeup() const {
  const auto t = deadlines_.empty() ? next_heartbeat_ : std::min(next_heartbeat_, deadlines_.top_deadline());
  return durable_wakeup(t);
}

// Why a request's timeout passed. Waiting for a name that no live worker
// hosts (its workers left or were lost) is told apart from a slow worker or
// a long queue: that is what the caller must fix, by starting a worker.
std::string broker_core::deadline_message(const request& r, time_point now) const {
  if (r.state != request_state::queued || r.worker != no_worker || !r.actor->workers.empty())
    return "the request's timeout passed";
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(now - r.actor->unhosted_since).count();
  std::string why = "the request's timeout passed while no live worker hosts actor '" + r.actor->name +
                    "' (the last one left " + std::to_string(left) + " s ago";
  if (opt_.forget_names_after.count() > 0)
    why += "; after " + std::to_string(opt_.forget_names_after.count() / 1000) +
           " s without one the name is forgotten and calls get unknown_actor at once";
  return why + ")";
}

void broker_core::expire_deadlines(time_point now) {
  while (!deadlines_.empty() && deadlines_.top_deadline() <= now) {
    const auto ri = deadlines_.top_index();
    deadlines_.pop();
    auto& r = requests_[ri];
    if (!r.tell && !r.answered)
      reply_error(r.client, r.client_id, status::deadline_exceeded, deadline_message(r, now));
    if (r.state == request_state::queued) {
      erase_queued(ri);
      release(ri);
    } else {
      // The worker still holds it and owes a reply, which returns its
      // credit; the slot lives until then.
      r.answered = true;
    }
  }
}

// A queued request waits in its worker's keyed queue when it has a worker
// (set by route), else in its name's queue (enqueue_for_any). An id left
// behind would only be skipped when its turn came, but would hold a place
// under queue_limit until then.
void broker_core::erase_queued(std::uint32_t ri) {
  const auto& r = requests_[ri];
  auto& q = r.worker != no_worker ? workers_[r.worker].keyed_queue : r.actor->queue;
  const auto it = std::find(q.begin(), q.end(), requests_.id_of(ri));
  if (it != q.end()) q.erase(it);
}

}  // namespace troupe
