// A worker that hosts N actor names (default 1000): n0000, n0001, ...,
// each with the same `square(x)` method as examples' `squares`, so a client
// can spread load over many names (bench/run.py, "names" scenario).
//
//   troupe-bench-many-names-worker [--names N] [--name-prefix P] [worker flags...]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/registry.hpp"
#include "troupe/worker.hpp"

namespace {

class squares {
 public:
  long long square(long long x) const { return x * x; }
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t names = 1000;
  std::string prefix = "n";
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--names" && i + 1 < argc)
      names = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--name-prefix" && i + 1 < argc)
      prefix = argv[++i];
    else
      rest.push_back(argv[i]);
  }
  static troupe::registry reg;  // outlives the worker runtime
  char buf[32];
  for (std::size_t i = 0; i < names; ++i) {
    std::snprintf(buf, sizeof buf, "%04zu", i);
    reg.add(troupe::describe_actor<squares>(prefix + buf, {troupe::method("square", &squares::square)}));
  }
  rest.push_back(nullptr);
  return troupe::worker_main(static_cast<int>(rest.size() - 1), rest.data(), reg);
}
