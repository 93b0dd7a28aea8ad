// Process-wide limits of a broker process: open files and what happens when
// they run out, and memory given back after a burst. `troupe broker` calls
// these at start (docs/operations.md, "Open files" and "Limits"); a program
// that embeds troupe::broker may call them too.
#pragma once

#include <cstdint>

namespace troupe {

struct open_file_limit {
  std::uint64_t soft_before = 0;  // the soft RLIMIT_NOFILE found at start
  std::uint64_t soft = 0;         // the soft limit now
  std::uint64_t hard = 0;         // the hard limit (unlimited as UINT64_MAX)
};

// Raises the soft RLIMIT_NOFILE to the hard limit, so the broker can hold
// as many connections as its service manager allows (systemd:
// LimitNOFILE). Returns the limits before and after. Thread-safe; does not
// throw (a failure leaves the limit as it was).
open_file_limit raise_open_file_limit() noexcept;

// Keeps running out of file descriptors from crashing or spinning the
// broker. libzmq 4.3 aborts when accept() fails with EMFILE on an ipc://
// endpoint, and on tcp:// leaves the connection waiting, so its listener
// wakes again at once, for ever. Once armed, an accept() that fails for
// want of descriptors uses a descriptor held in reserve to take the waiting
// connection and close it at once (the peer sees it closed and retries
// later), and tells libzmq "nothing to accept" (EAGAIN). Connections already
// open keep being served. Call once, before the broker binds; thread-safe.
void guard_accept() noexcept;

// Connections closed by the guard so far. Thread-safe, lock-free.
std::uint64_t refused_connections() noexcept;

// Gives memory that malloc holds free back to the system, when it holds
// more than `threshold` bytes (after a burst of large messages, or a client
// that left with replies unread). Returns the bytes malloc held free
// before. Thread-safe; costs a walk of malloc's free lists (microseconds),
// plus the trim itself when it trims: call it when the broker is idle.
std::uint64_t release_free_memory(std::uint64_t threshold) noexcept;

}  // namespace troupe
