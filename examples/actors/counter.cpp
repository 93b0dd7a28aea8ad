// `counter`: a keyed actor. `counter/alice` and `counter/bob` are separate
// instances with separate totals; each key lives in one worker process and
// handles its messages one at a time, in order.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "troupe/actor.hpp"

namespace examples {

class counter {
 public:
  // Checked: signed overflow is undefined behaviour, and any client can send
  // 2^62 twice. On overflow the total stays as it was and the client gets
  // `actor_error`.
  std::int64_t add(std::int64_t n) {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(total_, n, &sum))
      throw std::overflow_error(std::to_string(total_) + " + " + std::to_string(n) +
                                " does not fit in a 64-bit integer");
    return total_ = sum;
  }
  std::int64_t get() const { return total_; }

 private:
  std::int64_t total_ = 0;
};

const troupe::actor<counter> counter_actor{"counter", troupe::method("add", &counter::add),
                                           troupe::method("get", &counter::get)};

}  // namespace examples
