// The seed scenario: 8 inputs on the `squares` actor. With a pool of 3
// worker processes, at most 3 instances are built (watch the workers'
// stderr) and each is destroyed once when the pool stops.
#include <cstdio>
#include <tuple>
#include <vector>

#include "troupe/client.hpp"

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  std::vector<std::tuple<long long, int>> inputs;
  for (long long x = 1; x <= 8; ++x) inputs.emplace_back(x, 100);  // 100 ms each
  try {
    const auto squares =
        c.map<long long>(troupe::map_options{.window = 8}, "squares", "square_slowly", inputs);
    std::printf("squares of 1..8:");
    for (auto s : squares) std::printf(" %lld", s);
    std::printf("\n");
  } catch (const troupe::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
