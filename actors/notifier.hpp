// How a pool supervisor tells the broker at once that one of its worker
// processes is gone (it died, or the supervisor killed it for running past a
// time limit), so the asks it held are answered within milliseconds instead
// of after the heartbeat window (docs/protocol.md, "DISCONNECT").
//
// The supervisor must stay free of threads and of ZeroMQ, because it forks
// its workers and a child must start clean. So the socket lives in a small
// helper process, forked first: the supervisor writes one record per dead
// worker into a pipe, and the helper sends DISCONNECT with the worker's
// routing id (and the stuck request, if any) from its own DEALER, with the
// pool's CURVE keys.
//
// Not thread-safe: the supervisor's one thread owns it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "troupe/worker.hpp"

namespace troupe {

class notifier {
 public:
  // Forks the helper (call before any thread or ZeroMQ context exists in
  // this process). Returns a notifier that does nothing when the fork fails
  // (the broker then notices by missed heartbeats); says why through `log`.
  static notifier start(const worker_options& options,
                        void (*log)(const worker_options&, const std::string&));

  notifier() = default;
  notifier(notifier&& o) noexcept;
  notifier& operator=(notifier&& o) noexcept;
  notifier(const notifier&) = delete;
  notifier& operator=(const notifier&) = delete;
  ~notifier();

  // The worker whose work socket has `routing_id` is gone; `stuck` is the
  // broker request id it was killed in for its time limit (0: none), `why`
  // what happened. Never blocks for long; does not throw.
  void gone(std::string_view routing_id, std::uint64_t stuck, std::string_view why) noexcept;
  // The helper's pid, or -1.
  pid_t pid() const noexcept { return pid_; }
  // The helper died (reaped by the supervisor): forget it.
  void lost() noexcept;
  // Closes the pipe, lets the helper send what it has, and waits for it
  // (at most `timeout`, then SIGKILL).
  void finish(std::chrono::milliseconds timeout) noexcept;

  // In a forked worker: the pipe is the supervisor's, not the child's.
  void close_in_child() noexcept;

 private:
  pid_t pid_ = -1;
  int fd_ = -1;  // the pipe's write end
};

}  // namespace troupe
