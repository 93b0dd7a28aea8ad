// What a worker tells the broker when it registers (docs/protocol.md,
// READY): its names, credits, the retry policies of its methods, and the
// keyed instances it holds, so that a restarted broker restores their
// placements (one activation per key). The heartbeat thread registers on
// behalf of a busy main thread, so the keys are kept where both threads
// can read them.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/registry.hpp"
#include "troupe/worker.hpp"

namespace troupe {

// The keyed addresses whose instances live in this process. The main
// thread adds one before a message may build it and removes those it
// destroys; any thread reads. Thread-safe.
class held_keys {
 public:
  void add(std::string_view address);
  void remove(std::string_view address);
  // Replaces the whole set (after passivation destroyed some).
  void reset(std::vector<std::string> addresses);
  std::vector<std::string> snapshot() const;
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::set<std::string, std::less<>> keys_;
};

// The READY `info` of this worker: `keys` from `held`. Thread-safe (reads
// only `opt`, `types` and `held`). Throws only std::bad_alloc.
std::string ready_body(const worker_options& opt, const registry& types, const held_keys& held);

}  // namespace troupe
