// `session` and `report`: bounds declared where the actor is (docs/concepts.md,
// "Passivation" and "Time limits").
//
// `session/KEY` keeps a running total per key, like `counter`, but an
// instance idle for ten minutes is passivated: destroyed in its worker, and
// its key forgotten by the broker. Its next message builds a fresh one, from
// 0: passivation drops in-memory state.
//
// `report` has hard time limits: a call that runs past its method's limit
// (else the actor's) gets its worker process killed and replaced, and the
// caller gets `time_limit_exceeded`.
#include <chrono>
#include <cstdint>
#include <thread>

#include "troupe/actor.hpp"

namespace examples {

class session {
 public:
  std::int64_t add(std::int64_t n) { return total_ += n; }
  std::int64_t total() const { return total_; }

 private:
  std::int64_t total_ = 0;
};

const troupe::actor<session> session_actor{"session", troupe::idle_timeout(std::chrono::minutes(10)),
                                           troupe::method("add", &session::add),
                                           troupe::method("total", &session::total)};

class report {
 public:
  // Pretends to work for `ms` milliseconds.
  int build(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  int peek() const { return 0; }
};

const troupe::actor<report> report_actor{
    "report", troupe::time_limit(std::chrono::seconds(30)),  // for its methods that set none
    troupe::method("build", &report::build).time_limit(std::chrono::minutes(5)),
    troupe::method("peek", &report::peek)};

}  // namespace examples
