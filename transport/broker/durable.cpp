// Durable messages in the core (docs/durability.md, docs/protocol.md
// "Durable messages"): acceptance, group commit and confirmation, message
// ids answered once, outcomes with retries and dead letters, redelivery of
// what a lost worker held, delays, and recovery at start. The store is
// written only by commit(), which the socket loop calls once per drained
// batch; everything else here collects that batch.
#include "broker/durable.hpp"

#include <algorithm>

#include "broker/core.hpp"

namespace troupe {

using protocol::command;
using protocol::status;

namespace {

constexpr std::string_view msgpack_nil = "\xc0";

}  // namespace

// ---- setting up -------------------------------------------------------------

void broker_core::init_durable(time_point now) {
  durable_ = std::make_unique<durable_state>();
  auto& d = *durable_;
  d.started = now;
  d.wall_at_start = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  d.result_ttl = opt_.result_ttl;
  d.max_deliveries = std::max<std::uint32_t>(opt_.max_deliveries, 1);
  d.deferred_commit = opt_.deferred_commit;
  d.next_expiry = now + std::chrono::minutes(1);
}

void broker_core::attach_store(durable::store* store, std::string error, time_point now) {
  auto& d = *durable_;
  d.store = store;
  d.store_error = std::move(error);
  if (!store) return;
  try {
    d.next_seq = store->next_seq();
    const auto workers = store->workers();
    d.expected_workers.insert(workers.begin(), workers.end());
    if (!d.expected_workers.empty()) {
      d.restoring = true;
      d.restore_until = now + opt_.heartbeat * opt_.liveness;
    }
    for (auto& m : store->pending()) recover(m, now, true);
  } catch (const durable::store_error& e) {
    d.store_error = e.what();
  }
}

// A pending message read at start becomes a request again, with nobody to
// answer until its client re-sends its id; it keeps its place in the order.
void broker_core::recover(durable::message& m, time_point now, bool on_disk) {
  auto& d = *durable_;
  const auto parts = protocol::split_address(m.address);
  if (!parts || parts->name == protocol::management_actor || !protocol::valid_method_name(m.method)) return;
  std::string meta_bytes;
  protocol::encode_request_meta(meta_bytes, {0, m.address, m.method, m.tell ? protocol::flag_tell : 0, 0});
  zmq::message_t meta_frame(meta_bytes.data(), meta_bytes.size());
  zmq::message_t args(m.args.data(), m.args.size());
  const auto meta = protocol::decode_request_meta(meta_frame.data(), meta_frame.size());
  const auto split = protocol::split_address(meta->address);
  auto& actor = actor_named(split->name);
  const auto ri = new_request({}, *meta, *split, actor, meta_frame, args, now);
  auto& r = requests_[ri];
  r.durable = std::make_unique<durable_info>();
  auto& di = *r.durable;
  di.seq = m.seq;
  di.id = std::move(m.id);
  di.attempts = m.attempts;
  di.lost = m.lost;
  di.deliveries = std::max<std::uint32_t>(m.attempts + m.lost, 1);  // it may have run before the restart
  di.not_before = m.not_before;
  di.accepted = m.accepted;
  di.last_error = std::move(m.last_error);
  di.committed = on_disk;
  d.next_seq = std::max(d.next_seq, m.seq + 1);
  d.by_id.emplace(di.id, requests_.id_of(ri));
  if (!on_disk) return hold_until_commit(ri);
  ++d.count.recovered;
  start_durable(ri, now);
}

// ---- accepting ----------------------------------------------------------------

void broker_core::on_durable_request(const peer& from, const protocol::request_meta& meta,
                                     const protocol::address_parts& parts, zmq::message_t& meta_frame,
                                     zmq::message_t& args, time_point now) {
  auto& d = *durable_;
  const std::string_view client = from.id;
  if (meta.delay_ms > protocol::max_delay_ms)
    return reply_error(client, meta.id, status::bad_request, "delay_ms is over a year");
  if (meta.delay_ms && !meta.is_tell())
    return reply_error(client, meta.id, status::bad_request, "only a durable tell may be delayed");
  if (!d.store || !d.store_error.empty()) {
    ++d.count.refused;
    return reply_error(client, meta.id, status::store_unavailable,
                       d.store ? "the broker's store cannot be written: " + d.store_error
                               : (d.store_error.empty() ? "this broker runs without a store (--store none)"
                                                        : "the broker has no store: " + d.store_error));
  }
  try {
    if (answer_known_id(client, meta)) {
      ++d.count.duplicates;
      return;
    }
  } catch (const durable::store_error& e) {
    ++d.count.refused;
    return reply_error(client, meta.id, status::store_unavailable, e.what());
  }
  const auto it = actors_.find(parts.name);
  if (it == actors_.end() && !d.restoring)
    return reply_error(client, meta.id, status::unknown_actor,
                       "no worker hosts actor '" + std::string(parts.name) + "'");
  auto& actor = it == actors_.end() ? actor_named(parts.name) : *it->second;
  if (parts.key.empty() && actor.queue.size() >= opt_.queue_limit)
    return reply_error(client, meta.id, status::overloaded, "queue is full");
  // Copied before the frame moves: a small frame's bytes move with it.
  std::string id(meta.message_id);
  const auto delay = meta.delay_ms;
  const auto ri = new_request(client, meta, parts, actor, meta_frame, args, now);
  auto& r = requests_[ri];
  r.durable = std::make_unique<durable_info>();
  auto& di = *r.durable;
  di.seq = d.next_seq++;
  di.id = std::move(id);
  di.accepted = d.wall(now);
  di.not_before = delay ? di.accepted + static_cast<durable::unix_ms>(delay) : 0;
  d.by_id.emplace(di.id, requests_.id_of(ri));
  d.batch.added.push_back(stored(r));
  hold_until_commit(ri);
}

// A request that waits for the next commit, in arrival order.
void broker_core::hold_until_commit(std::uint32_t ri) {
  auto& d = *durable_;
  auto& r = requests_[ri];
  park(ri);
  d.uncommitted.push_back(requests_.id_of(ri));
  if (!r.key().empty()) d.uncommitted_addresses.emplace(r.address());
}

// Whether a plain keyed request must wait behind a durable one of its
// address that is not committed yet (so that it cannot overtake it).
bool broker_core::behind_uncommitted(std::string_view address) const {
  const auto& d = *durable_;
  return d.uncommitted_addresses.find(address) != d.uncommitted_addresses.end();
}

// A message id the broker knows: confirmed, attached to, or answered from
// its recorded outcome. Returns false for an id it does not know. Throws
// durable::store_error.
bool broker_core::answer_known_id(std::string_view client, const protocol::request_meta& meta) {
  auto& d = *durable_;
  if (const auto held = d.by_id.find(meta.message_id); held != d.by_id.end()) {
    auto* r = requests_.find(held->second);
    if (r && r->tell) {
      if (r->durable->committed) {
        reply_value(client, meta.id, "ok", msgpack_nil);
      } else {
        d.after_commit.push_back({std::string(client), meta.id, std::string(msgpack_nil)});
      }
      return true;
    }
    if (r) {  // an ask still running: its outcome goes to the latest sender
      if (!meta.is_tell()) {
        r->client.assign(client);
        r->client_id = meta.id;
        r->answered = false;
      } else {
        reply_value(client, meta.id, "ok", msgpack_nil);
      }
      return true;
    }
  }
  std::optional<durable::result> done;
  if (const auto f = d.finishing.find(meta.message_id); f != d.finishing.end()) {
    done = f->second;
  } else {
    done = d.store->find_result(meta.message_id);
  }
  if (!done) return false;
  if (meta.is_tell()) {
    reply_value(client, meta.id, "ok", msgpack_nil);
  } else {
    reply_value(client, meta.id, done->status, done->value.empty() ? msgpack_nil : done->value);
  }
  return true;
}

void broker_core::reply_value(std::string_view client, std::uint64_t id, std::string_view status_text,
                              std::string_view value) {
  if (client.empty()) return;
  auto& m = out_.push(client, command::reply);
  protocol::encode_reply_meta(m.meta, id, status_text);
  m.payload.rebuild(value.data(), value.size());
  m.has_payload = true;
  ++count_.replies;
  if (status_text != "ok") ++count_.errors;
}

durable::message broker_core::stored(const request& r) const {
  const auto& di = *r.durable;
  durable::message m;
  m.seq = di.seq;
  m.id = di.id;
  m.address = std::string(r.address());
  m.method = std::string(r.method());
  m.args.assign(static_cast<const char*>(r.args.data()), r.args.size());
  m.tell = r.tell;
  m.attempts = di.attempts;
  m.lost = di.lost;
  m.not_before = di.not_before;
  m.accepted = di.accepted;
  m.last_error = di.last_error;
  return m;
}

// What a worker is told of a durable delivery: its id and the delivery's
// number, and a fresh timeout (a durable message has no deadline).
void broker_core::describe_delivery(request& r, protocol::request_meta& meta) {
  auto& di = *r.durable;
  meta.flags |= protocol::flag_durable;
  meta.has_durable = true;
  meta.message_id = di.id;
  meta.delivery = ++di.deliveries;
  meta.timeout_ms = static_cast<std::uint64_t>(opt_.default_timeout.count());
}

// ---- committing ---------------------------------------------------------------

void broker_core::commit(time_point now) {
  auto& d = *durable_;
  if (d.uncommitted.empty() && d.after_commit.empty() && d.batch.empty()) return;
  if (!d.store) return;
  // Messages waiting for their confirmation, replies waiting for the
  // commit, and dead letters (which `troupe dead list` shows at once) go to
  // disk now; outcomes and schedules alone may wait.
  const bool now_needed =
      !d.uncommitted.empty() || !d.after_commit.empty() || !d.batch.added.empty() || !d.batch.died.empty();
  if (!now_needed) {
    if (d.deferred_since == time_point{}) d.deferred_since = now;
    if (now - d.deferred_since < d.deferred_commit) return;
  }
  d.deferred_since = {};
  std::string error;
  if (!d.batch.empty()) {
    error = d.store->commit(d.batch);
    ++d.count.commits;
  }
  if (!error.empty()) return commit_failed(error, now);
  if (!d.store_error.empty() && log_) log_("the store is written again: durable messages are accepted");
  d.store_error.clear();
  d.batch.clear();
  d.finishing.clear();
  settle_uncommitted({}, now);
  for (auto& a : d.after_commit) reply_value(a.client, a.id, "ok", a.value);
  d.after_commit.clear();
}

// The requests held for the commit, in arrival order: plain ones go their
// way either way; durable ones are confirmed and started when `error` is
// empty, else refused with it and forgotten.
void broker_core::settle_uncommitted(const std::string& error, time_point now) {
  auto& d = *durable_;
  auto ids = std::move(d.uncommitted);
  d.uncommitted.clear();
  d.uncommitted_addresses.clear();
  for (const auto id : ids) {
    auto* r = requests_.find(id);
    if (!r) continue;
    const auto ri = slot_table<request>::index_of(id);
    unpark(ri);
    if (!r->durable) {
      route(ri, now);
    } else if (error.empty()) {
      r->durable->committed = true;
      ++d.count.stored;
      if (r->tell) reply_value(r->client, r->client_id, "ok", msgpack_nil);
      start_durable(ri, now);
    } else {
      ++d.count.refused;
      if (!r->client.empty())
        reply_error(r->client, r->client_id, status::store_unavailable,
                    "the broker's store cannot be written: " + error);
      d.by_id.erase(r->durable->id);
      release(ri);
    }
  }
}

// Nothing of the batch is on disk: what it accepted is refused, never
// confirmed; what it finished or rescheduled is tried again next commit.
void broker_core::commit_failed(const std::string& error, time_point now) {
  auto& d = *durable_;
  if (d.store_error != error && log_) log_("durable messages refused: " + error);
  d.store_error = error;
  settle_uncommitted(error, now);
  for (auto& a : d.after_commit)
    reply_error(a.client, a.id, status::store_unavailable, "the broker's store cannot be written: " + error);
  d.after_commit.clear();
  d.batch.added.clear();
  d.batch.revived.clear();
  d.batch.forgotten.clear();
}

// A committed durable request goes its way: now, or when its time comes.
void broker_core::start_durable(std::uint32_t ri, time_point now) {
  auto& d = *durable_;
  const auto& di = *requests_[ri].durable;
  if (di.not_before > d.wall(now)) return schedule(ri, d.steady(di.not_before));
  route(ri, now);
}

// ---- parking: queued, but in no queue -------------------------------------------

void broker_core::park(std::uint32_t ri) {
  auto& r = requests_[ri];
  if (r.parked) return;
  r.parked = true;
  ++durable_->parked;
}

void broker_core::unpark(std::uint32_t ri) {
  auto& r = requests_[ri];
  if (!r.parked) return;
  r.parked = false;
  --durable_->parked;
}

void broker_core::schedule(std::uint32_t ri, time_point due) {
  park(ri);
  durable_->schedule.emplace(due, requests_.id_of(ri));
}

void broker_core::run_schedule(time_point now) {
  auto& d = *durable_;
  while (!d.schedule.empty() && d.schedule.top().first <= now) {
    const auto id = d.schedule.top().second;
    d.schedule.pop();
    auto* r = requests_.find(id);
    if (!r || !r->parked) continue;
    const auto ri = slot_table<request>::index_of(id);
    unpark(ri);
    route(ri, now);
  }
  if (now >= d.next_expiry && d.store) {
    d.batch.expire_results_before =
        d.wall(now) - std::chrono::duration_cast<std::chrono::milliseconds>(d.result_ttl).count();
    d.next_expiry = now + std::chrono::minutes(1);
  }
  if (d.restoring && now >= d.restore_until) end_restore(now);
}

broker_core::time_point broker_core::durable_wakeup(time_point t) const {
  const auto& d = *durable_;
  if (!d.schedule.empty()) t = std::min(t, d.schedule.top().first);
  if (d.restoring) t = std::min(t, d.restore_until);
  if (d.deferred_since != time_point{}) t = std::min(t, d.deferred_since + d.deferred_commit);
  return t;
}

}  // namespace troupe
