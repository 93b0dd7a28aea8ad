// How a durable message's delivery ends (docs/durability.md): its outcome
// is recorded once, or it runs again after its retry policy's backoff, or it
// becomes a dead letter; a delivery ended by the loss of its worker is
// delivered again, first among its address's messages, until it has killed
// --max-deliveries workers (a poison message).
#include <algorithm>

#include "broker/core.hpp"
#include "broker/durable.hpp"

namespace troupe {

using protocol::status;

namespace {

bool retries(const protocol::retry_policy* p, std::string_view code) {
  return p && std::find(p->on.begin(), p->on.end(), code) != p->on.end();
}

// min(backoff × 2^(runs - 1), max): the wait before run `runs + 1`.
std::chrono::milliseconds backoff(const protocol::retry_policy& p, std::uint32_t runs) {
  std::uint64_t ms = p.backoff_ms;
  for (std::uint32_t i = 1; i < runs && ms < p.max_backoff_ms; ++i) ms *= 2;
  if (p.max_backoff_ms) ms = std::min(ms, p.max_backoff_ms);
  return std::chrono::milliseconds(ms);
}

std::string error_text(std::string_view code, std::string_view message) {
  return std::string(code) + ": " + std::string(message);
}

}  // namespace

const protocol::retry_policy* broker_core::policy_of(const request& r) const {
  const auto& policies = durable_->policies;
  if (policies.empty()) return nullptr;
  std::string key(r.actor->name);
  key += '/';
  key += r.method();
  const auto it = policies.find(key);
  return it == policies.end() ? nullptr : &it->second;
}

// The worker's REPLY for a durable request. Returns true when the request
// has ended (the caller releases it), false when it runs again later.
bool broker_core::on_durable_outcome(std::uint32_t ri, std::string_view status_text, zmq::message_t& value,
                                     time_point now) {
  auto& r = requests_[ri];
  auto& di = *r.durable;
  const std::string_view payload(static_cast<const char*>(value.data()), value.size());
  if (status_text == "ok" || !retries(policy_of(r), status_text)) {
    finish_durable(ri, status_text, payload, now);
    return true;
  }
  ++di.attempts;
  di.last_error = error_text(status_text, message_text(payload));
  if (di.attempts >= policy_of(r)->attempts) {
    bury(ri, "attempts", status_text, payload, now);
    return true;
  }
  retry_later(ri, backoff(*policy_of(r), di.attempts), now);
  return false;
}

// Back from a worker to the queued state, to run again after `wait`.
void broker_core::retry_later(std::uint32_t ri, std::chrono::milliseconds wait, time_point now) {
  auto& d = *durable_;
  auto& r = requests_[ri];
  auto& di = *r.durable;
  to_queued(ri);
  di.not_before = d.wall(now + wait);
  d.batch.rescheduled.push_back({di.seq, di.attempts, di.lost, di.not_before, di.last_error});
  ++d.count.retried;
  schedule(ri, now + wait);
}

// An in-flight request is queued again (its worker gave it back or is gone).
void broker_core::to_queued(std::uint32_t ri) {
  auto& r = requests_[ri];
  end_awaiting(r);
  if (r.state == request_state::in_flight) {
    --in_flight_;
    ++queued_;
  }
  r.state = request_state::queued;
  uncount_placement(ri);
  r.worker = no_worker;
}

// The final outcome: recorded once for its id, and answered to whoever
// sent the id last, if anyone still waits.
void broker_core::finish_durable(std::uint32_t ri, std::string_view status_text, std::string_view value,
                                 time_point now) {
  auto& d = *durable_;
  auto& r = requests_[ri];
  auto& di = *r.durable;
  durable::result res{std::string(status_text), r.tell ? std::string() : std::string(value), d.wall(now)};
  d.batch.finished.push_back({di.seq, di.id, res});
  d.finishing[di.id] = std::move(res);
  d.by_id.erase(di.id);
  ++d.count.finished;
  if (!r.tell && !r.answered) reply_value(r.client, r.client_id, status_text, value);
}

void broker_core::bury(std::uint32_t ri, std::string_view reason, std::string_view status_text,
                       std::string_view value, time_point now) {
  auto& d = *durable_;
  d.batch.died.push_back({stored(requests_[ri]), std::string(reason), d.wall(now)});
  ++d.count.dead;
  finish_durable(ri, status_text, value, now);
}

// The durable requests a removed worker held, delivered again in their
// order, before the requests that waited behind them for the same keys.
void broker_core::redeliver(std::vector<std::uint32_t>& lost, std::string_view worker_name, time_point now) {
  auto& d = *durable_;
  std::sort(lost.begin(), lost.end(), [&](std::uint32_t a, std::uint32_t b) {
    return requests_[a].durable->seq < requests_[b].durable->seq;
  });
  for (const auto ri : lost) {
    auto& r = requests_[ri];
    auto& di = *r.durable;
    to_queued(ri);
    ++di.lost;
    const auto why = "worker '" + std::string(worker_name) + "' was lost while handling the message";
    di.last_error = error_text("worker_lost", why);
    std::string value;
    protocol::encode_str(value, why);
    const auto* policy = policy_of(r);
    if (di.lost >= d.max_deliveries) {
      bury(ri, "poison", "worker_lost", value, now);
      release(ri);
    } else if (retries(policy, "worker_lost")) {
      if (++di.attempts >= policy->attempts) {
        bury(ri, "attempts", "worker_lost", value, now);
        release(ri);
      } else {
        retry_later(ri, backoff(*policy, di.attempts), now);
      }
    } else {
      d.batch.rescheduled.push_back({di.seq, di.attempts, di.lost, di.not_before, di.last_error});
      ++d.count.redelivered;
      route(ri, now);
    }
  }
}

// The text of a msgpack str (an error's value), or the bytes as they are.
std::string broker_core::message_text(std::string_view value) {
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  std::size_t at = 0, n = 0;
  if (value.empty()) return {};
  if ((p[0] & 0xe0) == 0xa0) {
    at = 1;
    n = p[0] & 0x1f;
  } else if (p[0] == 0xd9 && value.size() >= 2) {
    at = 2;
    n = p[1];
  } else if (p[0] == 0xda && value.size() >= 3) {
    at = 3;
    n = (std::size_t{p[1]} << 8) | p[2];
  } else {
    return "(not a str)";
  }
  return protocol::to_valid_utf8(value.substr(at, std::min(n, value.size() - at)).substr(0, 512));
}

// Each held durable request is in the table once, parked ones are counted.
std::string broker_core::audit_durable() const {
  const auto& d = *durable_;
  std::size_t parked = 0, durable = 0;
  for (std::uint32_t ri = 0; ri < requests_.capacity(); ++ri) {
    if (!requests_.live(ri)) continue;
    const auto& r = requests_[ri];
    if (r.parked) {
      ++parked;
      if (r.state != request_state::queued) return "a parked request is in flight";
    }
    if (!r.durable) continue;
    ++durable;
    const auto it = d.by_id.find(r.durable->id);
    if (it == d.by_id.end() || it->second != requests_.id_of(ri))
      return "a durable request is not found by its id";
  }
  if (parked != d.parked) return "parked requests do not add up";
  if (durable != d.by_id.size()) return "message ids name requests that are gone";
  return {};
}

}  // namespace troupe
