// A worker whose `payments` actor declares a retry policy for durable
// messages (docs/durability.md, "Retries"). Compiled by `make test`, so the
// doc's snippet cannot rot.
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace examples {

class payments {
 public:
  // Charges `cents`; a real one would call a payment service that may fail
  // for a while, which is what the retries are for.
  std::int64_t charge(std::int64_t cents) {
    if (cents <= 0) throw std::invalid_argument("nothing to charge");
    return total_ += cents;
  }

 private:
  std::int64_t total_ = 0;
};

const troupe::actor<payments> payments_actor{
    "payments",
    troupe::method("charge", &payments::charge)
        .retry({.attempts = 5,
                .backoff = std::chrono::seconds(1),
                .max_backoff = std::chrono::minutes(1),
                .on = {troupe::protocol::status::actor_error, troupe::protocol::status::worker_lost}})};

}  // namespace examples

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
