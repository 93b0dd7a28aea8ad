// `squares`: the multiprocessing.Pool case. Each worker process builds its
// own instance on the first call and destroys it once when it stops; the
// lines on stderr let you count both.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "troupe/actor.hpp"

namespace examples {

namespace {

// x * x, checked: any client can send 3037000500, and signed overflow is
// undefined behaviour. The exception reaches the client as `actor_error`.
long long checked_square(long long x) {
  long long result = 0;
  if (__builtin_mul_overflow(x, x, &result))
    throw std::overflow_error("the square of " + std::to_string(x) + " does not fit in a 64-bit integer");
  return result;
}

}  // namespace

class squares {
 public:
  squares() { std::fprintf(stderr, "squares constructed in pid %d\n", static_cast<int>(getpid())); }
  ~squares() { std::fprintf(stderr, "squares destroyed in pid %d\n", static_cast<int>(getpid())); }
  squares(const squares&) = delete;
  squares& operator=(const squares&) = delete;

  long long square(long long x) const { return checked_square(x); }

  long long square_slowly(long long x, int ms) const {
    if (ms < 0) throw std::invalid_argument("ms must not be negative");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return checked_square(x);
  }
};

const troupe::actor<squares> squares_actor{"squares", troupe::method("square", &squares::square),
                                           troupe::method("square_slowly", &squares::square_slowly)};

}  // namespace examples
