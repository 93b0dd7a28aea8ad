#include "registration.hpp"

#include <unistd.h>

#include <algorithm>

namespace troupe {

void held_keys::add(std::string_view address) {
  std::lock_guard lock(mu_);
  if (keys_.find(address) == keys_.end()) keys_.emplace(address);
}

void held_keys::remove(std::string_view address) {
  std::lock_guard lock(mu_);
  if (auto it = keys_.find(address); it != keys_.end()) keys_.erase(it);
}

void held_keys::reset(std::vector<std::string> addresses) {
  std::lock_guard lock(mu_);
  keys_ = std::set<std::string, std::less<>>(std::make_move_iterator(addresses.begin()),
                                             std::make_move_iterator(addresses.end()));
}

std::vector<std::string> held_keys::snapshot() const {
  std::lock_guard lock(mu_);
  return {keys_.begin(), keys_.end()};
}

std::size_t held_keys::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

std::string ready_body(const worker_options& opt, const registry& types, const held_keys& held) {
  protocol::ready_info info;
  info.name = opt.name;
  info.pid = static_cast<std::uint64_t>(getpid());
  info.credits = opt.credits;
  info.actors = types.names();
  info.keys = held.snapshot();
  if (info.keys.size() > protocol::max_ready_keys) info.keys.resize(protocol::max_ready_keys);
  for (const auto& t : types.types()) {
    for (const auto& m : t.methods) {
      if (!m.retry) continue;
      protocol::retry_policy p;
      p.actor = t.name;
      p.method = m.name;
      p.attempts = std::clamp<std::uint32_t>(m.retry->attempts, 1, 1000);
      p.backoff_ms =
          static_cast<std::uint64_t>(std::clamp<std::int64_t>(m.retry->backoff.count(), 0, 86'400'000));
      p.max_backoff_ms =
          static_cast<std::uint64_t>(std::clamp<std::int64_t>(m.retry->max_backoff.count(), 0, 86'400'000));
      for (const auto code : m.retry->on)
        if (code != protocol::status::ok) p.on.emplace_back(protocol::to_string(code));
      info.retry.push_back(std::move(p));
    }
  }
  std::string body;
  protocol::encode_ready(body, info);
  return body;
}

}  // namespace troupe
