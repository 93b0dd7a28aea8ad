// The worker runtime. A worker executable is one line:
//
//   int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
//
// plus the actor definitions compiled into it.
#pragma once

#include <chrono>
#include <string>

#include "troupe/protocol.hpp"
#include "troupe/registry.hpp"

namespace troupe {

struct worker_options {
  std::string broker;  // default: $TROUPE_BROKER, else tcp://127.0.0.1:5555
  std::string name;    // for logs and broker stats; default: executable name
  int processes = 0;   // 0: run in this process; N >= 1: a supervisor forks N workers
  unsigned credits = 64;
  std::chrono::milliseconds heartbeat{1000};
  int liveness = 3;
  std::chrono::milliseconds stop_timeout{10000};  // supervisor: SIGKILL after this
  protocol::limits limits;
};

// Parses the command line (see --help) and runs a worker or a supervised
// pool of them until SIGINT/SIGTERM. Returns the process exit code.
int worker_main(int argc, char** argv, const registry& types = registry::global());

// Runs one worker in this process until SIGINT/SIGTERM (blocked and read by
// the runtime). Returns the exit code.
int run_worker(const worker_options& options, const registry& types);

// Forks options.processes workers, restarts any that dies (with backoff),
// forwards SIGINT/SIGTERM to all and waits for them.
int run_supervisor(const worker_options& options, const registry& types);

}  // namespace troupe
