// A worker that registers the same actor name twice: it must refuse to start.
#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace {
class one {
 public:
  int ping() { return 1; }
};
const troupe::actor<one> first{"dup", troupe::method("ping", &one::ping)};
const troupe::actor<one> second{"dup", troupe::method("ping", &one::ping)};
}  // namespace

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
