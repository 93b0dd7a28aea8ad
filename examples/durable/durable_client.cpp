// Durable tells and asks from C++ (docs/durability.md, "Sending durable
// messages"). Run against a broker with a store and the examples worker plus
// example-payments-worker: `example-durable-client [ENDPOINT]`.
#include <chrono>
#include <cstdio>

#include "troupe/client.hpp"
#include "troupe/endpoint.hpp"

namespace {

void send(troupe::client& c) {
  // A durable tell: the future is ready once the broker has the message on disk.
  c.tell(troupe::tell_options{}, "counter/alice", "add", 5).get();
  // A durable tell with a message id of your own and a delay (Celery's countdown).
  const troupe::tell_options later{.id = "order-1234", .delay = std::chrono::seconds(30)};
  c.tell(later, "payments", "charge", 1234).get();
  // A durable ask: stored, run at least once, its result recorded under its id.
  long long y = c.ask<long long>(troupe::call_options{.durable = true}, "squares", "square", 7).get();
  std::printf("square(7) = %lld\n", y);
}

}  // namespace

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  try {
    send(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
