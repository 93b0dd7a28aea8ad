// Must NOT compile: a method whose parameter is a pointer. Before troupe
// checked, this compiled and the worker crashed on the first call
// (worker_lost). The build test `compile_fail_pointer_arg` expects troupe's
// own static_assert.
#include "troupe/actor.hpp"

namespace {
class holder {
 public:
  int take(int* p) { return *p; }
};
const troupe::actor<holder> holder_actor{"holder", troupe::method("take", &holder::take)};
}  // namespace
