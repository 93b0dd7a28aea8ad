// `vectorize`: the np.vectorize case. The elementwise kernel is an object
// that would not survive pickling; here it is built lazily, once per worker
// process, and only plain arrays of numbers cross process boundaries.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "troupe/actor.hpp"

namespace examples {

class vectorize {
 public:
  vectorize() : kernel_(make_kernel()) {}

  std::vector<double> apply(const std::vector<double>& xs) const {
    std::vector<double> out;
    out.reserve(xs.size());
    for (double x : xs) out.push_back(kernel_(x));
    return out;
  }

 private:
  static std::function<double(double)> make_kernel() {
    std::fprintf(stderr, "vectorize kernel built in pid %d\n", static_cast<int>(getpid()));
    return [](double x) { return x > 2 ? x + 1 : x - 1; };
  }
  std::function<double(double)> kernel_;
};

const troupe::actor<vectorize> vectorize_actor{"vectorize", troupe::method("apply", &vectorize::apply)};

}  // namespace examples
