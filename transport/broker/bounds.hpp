// What the broker counts about its bounds (docs/operations.md, "Limits"):
// each is a key of `$broker stats`. Kept apart from broker_counters so the
// bounds can grow without touching the screening code's counters.
#pragma once

#include <cstdint>

namespace troupe {

// How many entries pack_bounds_stats adds to `$broker stats`.
inline constexpr std::uint32_t bounds_stats_entries = 13;

struct bounds_counters {
  // Messages ZeroMQ would not take for a peer: it was gone, or had
  // --send-queue-limit messages it had not read.
  std::uint64_t unsent = 0;
  // Connections closed at once because the broker had no file descriptor left.
  std::uint64_t refused_connections = 0;
  // READYs refused because the broker held --max-names names.
  std::uint64_t names_refused = 0;
  // Names forgotten after no worker hosted them for --forget-names-after-ms.
  std::uint64_t names_forgotten = 0;
  // Key placements released because their worker passivated the instance.
  std::uint64_t passivated = 0;
  // RELEASEs of a key not honoured because a request for it was on its way
  // to the worker (which then activates the key again).
  std::uint64_t releases_kept = 0;
  // Workers removed at once because their pool supervisor said the process
  // was gone (it died or was killed).
  std::uint64_t workers_gone = 0;
  // `time_limit_exceeded` replies the broker sent.
  std::uint64_t time_limit_exceeded = 0;
  // Requests answered `overloaded` because of the queued-bytes budgets.
  std::uint64_t over_queued_bytes = 0;
  // Requests refused with `call_cycle` (calls.cpp).
  std::uint64_t call_cycles = 0;
};

}  // namespace troupe
