// A worker process's bounds (docs/operations.md, "Limits"), as its runtime
// applies them:
// - time limits: each call's deadline for user code goes on the call page
//   (call_page.hpp), where the pool supervisor, or the heartbeat thread of a
//   worker on its own, sees a call that runs past it;
// - recycling: after --max-requests requests, or when the supervisor saw
//   the RSS pass --max-rss, the process drains and exits to be replaced;
// - passivation: the dispatcher destroys idle or least recently used keyed
//   instances, and the broker hears of them (RELEASE);
// - a stop that takes longer than --stop-timeout-ms is cut short.
//
// Thread-safety: the call_watch side, recycling and passivation belong to
// the main thread (the one running user code); overdue() and
// stop_overdue() are for the heartbeat thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "call_page.hpp"
#include "troupe/dispatch.hpp"
#include "troupe/worker.hpp"

namespace troupe {

// Exit codes a supervisor reads (docs/operations.md, "Exit codes").
inline constexpr int exit_recycled = 3;    // a pool process drained to be replaced: restart it at once
inline constexpr int exit_time_limit = 4;  // a worker on its own killed itself: a call ran past its limit

// run_worker for a process of a pool: `page` is shared with its supervisor.
int run_pool_worker(const worker_options& options, const registry& types, call_page* page);

class worker_limits final : public call_watch {
 public:
  using clock = std::chrono::steady_clock;

  // `shared`: the page the pool supervisor reads, or nullptr for a worker
  // on its own (a page of its own, read by its heartbeat thread).
  worker_limits(const worker_options& options, call_page* shared);

  // Makes `d` report its calls here and passivate as configured.
  void attach(dispatcher& d);
  bool pooled() const noexcept { return pooled_; }

  // ---- main thread ----
  void publish_routing_id(std::string_view id) noexcept { page_->set_routing_id(id); }
  // A request arrives: the broker's id and the time its caller has left.
  void before_request(std::uint64_t request_id, std::uint64_t timeout_ms) noexcept;
  void after_request() noexcept;
  void begin(std::chrono::milliseconds limit) noexcept override;
  void end() noexcept override;
  // Why the process should drain and be replaced now, once; else nullopt.
  std::optional<std::string> recycle_reason();
  // The process stops (a signal, or recycling): the stop timeout runs from now.
  void stopping() noexcept;
  // Passivates the idle keyed instances, at most every 100 ms, and hands
  // `send` one RELEASE body per chunk of addresses passivated.
  void passivate(dispatcher& d, clock::time_point now, const std::function<void(const std::string&)>& send);

  // ---- heartbeat thread of a worker on its own ----
  struct verdict {
    std::uint64_t stuck = 0;  // the request to answer `time_limit_exceeded`; 0: none
    std::string why;
  };
  // The call running now is past its limit: what to tell the broker.
  std::optional<verdict> overdue(clock::time_point now) const;
  // A stop (a signal, seen even while user code runs) has taken longer
  // than --stop-timeout-ms.
  std::optional<verdict> stop_overdue(clock::time_point now);

 private:
  const worker_options& opt_;
  bool pooled_;
  std::unique_ptr<call_page> own_page_;
  call_page* page_;
  std::uint64_t request_ = 0;
  clock::time_point deadline_{};
  std::uint64_t handled_ = 0;
  bool recycling_ = false;
  clock::time_point next_passivation_{};
  std::atomic<std::int64_t> stop_since_ns_{0};  // 0: not stopping
};

}  // namespace troupe
