// Must NOT compile: a method that returns a pointer; the address means
// nothing in the caller's process. The build test
// `compile_fail_pointer_result` expects troupe's own static_assert.
#include "troupe/actor.hpp"

namespace {
class holder {
 public:
  const int* where() const { return &value_; }

 private:
  int value_ = 0;
};
const troupe::actor<holder> holder_actor{"holder", troupe::method("where", &holder::where)};
}  // namespace
