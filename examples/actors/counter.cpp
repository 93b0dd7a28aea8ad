// `counter`: a keyed actor. `counter/alice` and `counter/bob` are separate
// instances with separate totals; each key lives in one worker process and
// handles its messages one at a time, in order.
#include <cstdint>

#include "troupe/actor.hpp"

namespace examples {

class counter {
 public:
  std::int64_t add(std::int64_t n) { return total_ += n; }
  std::int64_t get() const { return total_; }

 private:
  std::int64_t total_ = 0;
};

const troupe::actor<counter> counter_actor{"counter", troupe::method("add", &counter::add),
                                           troupe::method("get", &counter::get)};

}  // namespace examples
