// The np.vectorize scenario: apply an elementwise function to arrays on a
// pool of worker processes; only arrays of numbers cross process boundaries.
#include <cstdio>
#include <vector>

#include "troupe/client.hpp"

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  const std::vector<std::vector<double>> arrays = {{1.0, 2.0, 3.0}, {0.5, 2.5}, {4.0}, {-1.0, 10.0}};
  try {
    const auto results = c.map<std::vector<double>>("vectorize", "apply", arrays);
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      std::printf("apply(");
      for (std::size_t j = 0; j < arrays[i].size(); ++j) std::printf("%s%g", j ? ", " : "", arrays[i][j]);
      std::printf(") = [");
      for (std::size_t j = 0; j < results[i].size(); ++j) std::printf("%s%g", j ? ", " : "", results[i][j]);
      std::printf("]\n");
    }
  } catch (const troupe::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
