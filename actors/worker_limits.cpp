#include "worker_limits.hpp"

#include <signal.h>

#include <algorithm>

namespace troupe {
namespace {

// RELEASE bodies stay well below the broker's frame limit.
constexpr std::size_t release_chunk_bytes = 256 * 1024;

}  // namespace

worker_limits::worker_limits(const worker_options& options, call_page* shared)
    : opt_(options), pooled_(shared != nullptr) {
  if (!shared) own_page_ = std::make_unique<call_page>();
  page_ = shared ? shared : own_page_.get();
}

void worker_limits::attach(dispatcher& d) {
  d.set_call_watch(this);
  passivation_settings p{opt_.max_instances, opt_.idle_timeout};
  d.set_passivation(p);
}

void worker_limits::before_request(std::uint64_t request_id, std::uint64_t timeout_ms) noexcept {
  request_ = request_id;
  // The broker sends the time its caller has left; we cannot know how long
  // the request waited here before this, so the deadline is, if anything,
  // late.
  deadline_ = clock::now() + std::chrono::milliseconds(std::min<std::uint64_t>(timeout_ms, 86'400'000));
}

void worker_limits::after_request() noexcept {
  request_ = 0;
  ++handled_;
  page_->handled.store(handled_, std::memory_order_relaxed);
}

// A call's end: its own limit (the method's, its type's, else the worker's),
// or its caller's deadline plus the grace, whichever comes first.
void worker_limits::begin(std::chrono::milliseconds limit) noexcept {
  const auto now = clock::now();
  if (limit.count() == 0) limit = opt_.time_limit;
  call_page::call c;
  c.request = request_;
  if (limit.count() > 0) {
    c.kill_at_ns = call_page::ns(now + limit);
    c.limit_ms = limit.count();
  }
  if (request_ != 0 && opt_.deadline_grace.count() > 0) {
    const auto by_deadline = call_page::ns(deadline_ + opt_.deadline_grace);
    if (c.kill_at_ns == 0 || by_deadline < c.kill_at_ns) {
      c.kill_at_ns = by_deadline;
      c.limit_ms = opt_.deadline_grace.count();
      c.by_deadline = true;
    }
  }
  page_->set_call(c);
}

void worker_limits::end() noexcept { page_->set_call({}); }

std::optional<std::string> worker_limits::recycle_reason() {
  if (recycling_ || !pooled_) return std::nullopt;
  if (opt_.max_requests != 0 && handled_ >= opt_.max_requests) {
    recycling_ = true;
    return "handled " + std::to_string(handled_) + " requests (--max-requests " +
           std::to_string(opt_.max_requests) + ")";
  }
  if (page_->recycle.load(std::memory_order_relaxed) != 0) {
    recycling_ = true;
    return "its memory grew past --max-rss " + std::to_string(opt_.max_rss_mb) + " MB";
  }
  return std::nullopt;
}

void worker_limits::stopping() noexcept {
  page_->draining.store(1, std::memory_order_relaxed);
  std::int64_t none = 0;
  stop_since_ns_.compare_exchange_strong(none, call_page::ns(clock::now()));
}

void worker_limits::passivate(dispatcher& d, clock::time_point now,
                              const std::function<void(const std::string&)>& send) {
  if (now >= next_passivation_) {
    next_passivation_ = now + std::chrono::milliseconds(100);
    d.passivate_idle(now);
  }
  auto& released = d.released();
  if (released.empty()) return;
  std::vector<std::string> chunk;
  std::size_t bytes = 0;
  std::string body;
  auto flush = [&] {
    protocol::encode_release(body, chunk);
    send(body);
    chunk.clear();
    bytes = 0;
  };
  for (auto& a : released) {
    if (chunk.size() == protocol::max_release_addresses || bytes + a.size() > release_chunk_bytes) flush();
    bytes += a.size() + 2;
    chunk.push_back(std::move(a));
  }
  if (!chunk.empty()) flush();
  released.clear();
}

std::optional<worker_limits::verdict> worker_limits::overdue(clock::time_point now) const {
  call_page::call c;
  if (!page_->read_call(c) || c.kill_at_ns == 0 || call_page::ns(now) < c.kill_at_ns) return std::nullopt;
  return verdict{c.request, call_page::why_killed(c)};
}

// A signal that arrives while user code runs waits, unread, for the main
// thread: pending SIGINT or SIGTERM starts the stop timeout as well.
std::optional<worker_limits::verdict> worker_limits::stop_overdue(clock::time_point now) {
  if (opt_.stop_timeout.count() <= 0) return std::nullopt;
  sigset_t pending;
  if (stop_since_ns_.load(std::memory_order_relaxed) == 0 && sigpending(&pending) == 0 &&
      (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1))
    stopping();
  const auto since = stop_since_ns_.load(std::memory_order_relaxed);
  if (since == 0 || call_page::ns(now) - since < std::chrono::nanoseconds(opt_.stop_timeout).count())
    return std::nullopt;
  return verdict{0, "did not stop within --stop-timeout-ms " + std::to_string(opt_.stop_timeout.count())};
}

}  // namespace troupe
