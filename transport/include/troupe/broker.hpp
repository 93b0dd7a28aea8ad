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
  // The generation of the first request ids (0: random). Workers may answer
  // requests of an earlier run of the broker after it restarts; ids that
  // start elsewhere in each run make such a late REPLY name nothing, where
  // it would otherwise end the new run's request of the same id (a durable
  // message then counted done without running). Tests fix it.
  std::uint32_t request_id_seed = 0;

  // Bounds on what the broker holds (docs/operations.md, "Limits"); 0 turns
  // off the ones marked so.
  // Messages ZeroMQ keeps for one peer that does not read them (the ROUTER's
  // send high-water mark); past it the message is dropped and counted
  // (`unsent`), and a worker is removed. A worker's credits are capped at
  // half of it less 16 (1008 by default). 0: no limit.
  std::size_t send_queue_limit = 2048;
  std::size_t max_queued_bytes = std::size_t{1} << 30;             // args + meta of queued requests; 0: none
  std::size_t max_queued_bytes_per_name = std::size_t{256} << 20;  // the same for one name; 0: none
  std::size_t max_names = 100000;                                  // actor names registered; 0: none
  std::chrono::milliseconds forget_names_after{300000};            // unhosted that long: forgotten; 0: never

  // Durable messages (docs/durability.md). `store`: the SQLite file; empty:
  // the default path (default_store_path); "none": no store, durable
  // requests are refused.
  std::string store;
  std::chrono::seconds result_ttl{3600};  // outcomes of message ids are kept this long
  std::uint32_t max_deliveries = 5;       // deliveries ended by a lost worker before a message is poison
  // How long a batch with nothing to confirm (outcomes, schedules) may wait
  // to share the next batch's fsync (transport/broker/durable.hpp). 0:
  // every batch is committed at once.
  std::chrono::milliseconds deferred_commit{20};

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

// The store a broker listening on `listen` uses by default: $TROUPE_STORE
// if set; for ipc://PATH, PATH.store beside the socket; else
// $XDG_STATE_HOME/troupe/ (default ~/.local/state/troupe/) plus the
// endpoint with every character outside [A-Za-z0-9.-] replaced by '_',
// plus ".store". Thread-safe; throws only std::bad_alloc.
std::string default_store_path(const std::string& listen);

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
