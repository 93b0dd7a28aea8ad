// Must NOT compile: a method whose argument type msgpack-c cannot convert.
// The build test `compile_fail_unserializable_arg` expects this file to fail.
#include "troupe/actor.hpp"

namespace {
struct opaque {
  int* pointer = nullptr;  // no MSGPACK_DEFINE: not serializable
};
class holder {
 public:
  int use(opaque o) { return o.pointer ? 1 : 0; }
};
const troupe::actor<holder> holder_actor{"holder", troupe::method("use", &holder::use)};
}  // namespace
