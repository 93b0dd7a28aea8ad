// Must NOT compile: a method whose argument type msgpack-c cannot convert.
// The build test `compile_fail_unserializable_arg` expects troupe's own
// static_assert, naming the type and the fix (MSGPACK_DEFINE_MAP).
#include "troupe/actor.hpp"

namespace {
struct opaque {
  int count = 0;  // no MSGPACK_DEFINE_MAP: msgpack-c cannot convert it
};
class holder {
 public:
  int use(opaque o) { return o.count; }
};
const troupe::actor<holder> holder_actor{"holder", troupe::method("use", &holder::use)};
}  // namespace
