// Must NOT compile: a coroutine method (troupe::task) taking a reference.
// Its argument lives in the worker's decoding buffers, which the next
// message reuses while the coroutine is suspended. The build test
// `compile_fail_task_reference_param` expects troupe's own static_assert.
#include <string>

#include "troupe/actor.hpp"

namespace {
class holder {
 public:
  troupe::task<int> take(const std::string& s) { co_return static_cast<int>(s.size()); }
};
const troupe::actor<holder> holder_actor{"holder", troupe::method("take", &holder::take)};
}  // namespace
