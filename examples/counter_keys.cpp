// Keyed actors: counter/alice and counter/bob keep separate totals, each in
// one worker process, updated in the order the calls were made.
#include <cstdint>
#include <cstdio>

#include "troupe/client.hpp"

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  try {
    for (int i = 1; i <= 5; ++i) c.tell("counter/alice", "add", i);  // one-way: 1+2+3+4+5
    c.ask<std::int64_t>("counter/bob", "add", 100).get();
    const auto alice = c.ask<std::int64_t>("counter/alice", "get").get();
    const auto bob = c.ask<std::int64_t>("counter/bob", "get").get();
    std::printf("counter/alice = %lld, counter/bob = %lld\n", static_cast<long long>(alice),
                static_cast<long long>(bob));
  } catch (const troupe::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
