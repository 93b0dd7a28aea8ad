// The troupe broker: one ROUTER socket for clients and workers, one poll loop.
// It routes requests by actor name, keeps keyed addresses sticky, enforces
// credits, queue bounds and deadlines, and watches worker liveness.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "troupe/protocol.hpp"

namespace troupe {

struct broker_options {
  std::string listen = "tcp://127.0.0.1:5555";
  std::chrono::milliseconds heartbeat{1000};
  int liveness = 3;  // heartbeats missed before a worker is declared dead
  std::size_t queue_limit = 10000;
  std::chrono::milliseconds default_timeout{60000};
  protocol::limits limits;
};

class broker {
 public:
  explicit broker(broker_options options);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // The endpoint actually bound (resolves a `tcp://127.0.0.1:*` wildcard).
  std::string endpoint() const;

  // Serves until `stop` becomes true (checked at least every 100 ms).
  void run(const std::atomic<bool>& stop);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace troupe
