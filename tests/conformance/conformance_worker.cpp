// The C++ side of the conformance suite (tests/conformance/): the actor
// `conf`, which conformance_actors.py defines again in Python with the same
// methods and the same answers, so that one suite checks both workers.
// - echo(x): x; add(a: int, b: int): a + b; fail(message): throws it;
// - sleep_ms(ms): sleeps, returns ms; pid(): the process id;
// - keyed: log(x) appends x to the instance's list and returns its length,
//   seen() returns the list.
// Each instance prints `built ADDRESS` and `destroyed ADDRESS` on stdout, so
// a test can read the order of construction and destruction.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace {

class conf {
 public:
  explicit conf(const troupe::context& ctx) : address_(ctx.address()) {
    std::printf("built %s\n", address_.c_str());
    std::fflush(stdout);
  }
  ~conf() {
    std::printf("destroyed %s\n", address_.c_str());
    std::fflush(stdout);
  }
  conf(const conf&) = delete;
  conf& operator=(const conf&) = delete;

  msgpack::object echo(const msgpack::object& value) const { return value; }
  long long add(long long a, long long b) const { return a + b; }
  std::string fail(const std::string& message) const { throw std::runtime_error(message); }
  int sleep_ms(int ms) const {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  int pid() const { return static_cast<int>(getpid()); }
  long long log(long long x) {
    seen_.push_back(x);
    return static_cast<long long>(seen_.size());
  }
  std::vector<long long> seen() const { return seen_; }

 private:
  std::string address_;
  std::vector<long long> seen_;
};

const troupe::actor<conf> conf_actor{"conf",
                                     troupe::method("echo", &conf::echo),
                                     troupe::method("add", &conf::add),
                                     troupe::method("fail", &conf::fail),
                                     troupe::method("sleep_ms", &conf::sleep_ms),
                                     troupe::method("pid", &conf::pid),
                                     troupe::method("log", &conf::log),
                                     troupe::method("seen", &conf::seen)};

}  // namespace

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
