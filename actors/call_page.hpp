// What a worker process shows its pool supervisor without a message: a small
// page of shared memory per child, mapped before fork. The child writes
// which broker request its user code runs and when that call must end (its
// time limit, or its deadline plus a grace), how many requests it handled,
// and the routing id of its work socket; the supervisor reads it to kill
// and replace a process stuck in a call, to recycle one, and to tell the
// broker which worker a dead process was (docs/operations.md, "Limits").
// A worker on its own uses a page in its own memory, read by its heartbeat
// thread.
//
// Thread- and process-safe: one writer (the child's main thread), any
// readers; the call fields are read consistently through a sequence count.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace troupe {

struct call_page {
  using clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: the same in every process

  // ---- the call running now: written by the child, seqlocked ----
  std::atomic<std::uint32_t> seq{0};        // odd while the call fields change
  std::atomic<std::uint64_t> request{0};    // the broker's id of the request; 0: none (idle, or a destructor)
  std::atomic<std::int64_t> kill_at_ns{0};  // clock; 0: no limit
  std::atomic<std::int64_t> limit_ms{0};    // the limit that set kill_at_ns
  std::atomic<std::uint32_t> by_deadline{0};  // 1: kill_at_ns is the caller's deadline plus the grace

  // ---- counters and flags ----
  std::atomic<std::uint64_t> handled{0};   // requests handled (child)
  std::atomic<std::uint32_t> recycle{0};   // 1: the supervisor asks the child to drain and exit (RSS)
  std::atomic<std::uint32_t> draining{0};  // 1: the child is draining (stop or recycle)

  // ---- the work socket's routing id: written by the child at each connect ----
  std::atomic<std::uint32_t> id_seq{0};
  std::atomic<std::uint32_t> id_size{0};
  char id[256] = {};

  // What a reader sees of the call.
  struct call {
    std::uint64_t request = 0;
    std::int64_t kill_at_ns = 0;
    std::int64_t limit_ms = 0;
    bool by_deadline = false;
  };

  // Child: a call starts (kill_at_ns 0: no limit), or ends (all zero).
  void set_call(const call& c) noexcept;
  // Reader: the call as of now; false when the child was mid-write (try
  // again later).
  bool read_call(call& out) const noexcept;

  void set_routing_id(std::string_view routing_id) noexcept;
  std::string routing_id() const;  // empty: never connected

  static std::int64_t ns(clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  // Why a call is killed, for the broker (DISCONNECT `why`) and logs.
  static std::string why_killed(const call& c);
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free,
              "a call page is shared between processes: its atomics must be lock-free");

// `n` zeroed pages in memory shared with children forked later. Throws
// std::system_error when the mapping fails. Unmapped by free_shared_pages.
call_page* map_shared_pages(std::size_t n);
void free_shared_pages(call_page* pages, std::size_t n) noexcept;

}  // namespace troupe
