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

  // CURVE (docs/security.md). With curve_secret every connection is
  // encrypted and every peer authenticated by its public key, whose
  // directory decides its role. Without it the broker is plaintext, and
  // listens only on loopback tcp, ipc:// or inproc:// unless `insecure`.
  std::string curve_secret;  // the broker's secret certificate (NAME.key_secret)
  std::string workers_keys;  // directory of the public keys (NAME.key) of workers
  std::string clients_keys;  // ... of clients
  std::string admins_keys;   // ... of admins; empty: every client may call every `$broker` method
  std::string name_policy;   // the name policy file; empty: any key of a role may use any name
  bool insecure = false;     // plaintext on an endpoint other hosts can reach
};

class broker {
 public:
  // Binds the endpoint. Throws std::runtime_error when it refuses to
  // listen (plaintext on an endpoint beyond this host without `insecure`,
  // unusable key files or directories, a bad name policy) and
  // zmq::error_t when ZeroMQ cannot bind.
  explicit broker(broker_options options);
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // The endpoint actually bound (resolves a `tcp://127.0.0.1:*` wildcard).
  std::string endpoint() const;

  // Serves until `stop` becomes true (checked at least every 100 ms).
  void run(const std::atomic<bool>& stop);

  // Asks the serving loop to read the key directories and the name policy
  // again (within 100 ms). Async-signal-safe: for a SIGHUP handler.
  void request_reload() noexcept;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace troupe
