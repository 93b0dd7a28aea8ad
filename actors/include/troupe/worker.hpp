// The worker runtime. A worker executable is one line:
//
//   int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
//
// plus the actor definitions compiled into it.
//
// These functions take over the process: they block SIGINT and SIGTERM and
// read them themselves, and run until one arrives. Call one of them once,
// from main(), and from no other thread at the same time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "troupe/curve.hpp"
#include "troupe/protocol.hpp"
#include "troupe/registry.hpp"

namespace troupe {

// How a worker runs; plain values. worker_main fills them from the command
// line (flags of the same names, see --help).
struct worker_options {
  std::string broker;                         // default: $TROUPE_BROKER, else tcp://127.0.0.1:5555
  std::string name;                           // for logs and broker stats; default: executable name
  int processes = 0;                          // 0: run in this process; N >= 1: a supervisor forks N workers
  unsigned credits = 1000;                    // requests a worker process holds at once, at most
  std::chrono::milliseconds heartbeat{1000};  // interval of heartbeats both ways
  int liveness = 3;                           // heartbeats missed before the broker is presumed gone
  std::chrono::milliseconds stop_timeout{10000};  // a stop taking longer is cut short (kill)
  protocol::limits limits;                        // bounds for decoding arguments

  // Bounds (docs/operations.md, "Limits"); 0 turns each off.
  // A call running longer than its method's time limit (else its actor's,
  // else this) gets its process killed and replaced: the caller gets
  // `time_limit_exceeded`, the process's other asks `worker_lost`.
  std::chrono::milliseconds time_limit{0};
  // The same for a call still running this long after its caller's deadline.
  std::chrono::milliseconds deadline_grace{30000};
  std::uint64_t max_requests = 0;  // pool: a process handles this many requests, then drains and is replaced
  std::uint64_t max_rss_mb = 0;    // pool: a process whose RSS grows past this drains and is replaced
  std::size_t max_instances = 0;   // live keyed instances per process; the least recently used are passivated
  // Keyed instances idle this long are passivated (unless their type says).
  std::chrono::milliseconds idle_timeout{0};
  // CURVE key files, for both of a worker's sockets (docs/security.md); both
  // empty: plaintext. worker_main: --curve-secret, --broker-key, by default
  // $TROUPE_CURVE_SECRET and $TROUPE_BROKER_KEY.
  curve::client_keys curve;
};

// Parses the command line (see --help) and runs a worker, or a supervised
// pool of them with --processes N, until SIGINT/SIGTERM. Returns the process
// exit code: 0 after a clean stop (also for --help and --list), 2 when
// `types` has errors (duplicate or invalid names) or no actors, the
// command-line parser's code for bad flags, 1 when the runtime cannot start.
// Throws zmq::error_t for a broker endpoint ZeroMQ cannot parse.
int worker_main(int argc, char** argv, const registry& types = registry::global());

// Runs one worker in this process until SIGINT/SIGTERM (blocked and read by
// the runtime): finishes what it holds, destroys every live instance once,
// says goodbye to the broker. Returns 0, or 1 if it could not start. Throws
// zmq::error_t for a broker endpoint ZeroMQ cannot parse. `types` must
// outlive the call.
int run_worker(const worker_options& options, const registry& types);

// Forks options.processes workers (each runs run_worker), restarts any that
// dies (with backoff), forwards SIGINT/SIGTERM to all and waits for them,
// SIGKILLing those still running after options.stop_timeout. Returns 0 when
// all stopped in time, else 1.
int run_supervisor(const worker_options& options, const registry& types);

}  // namespace troupe
