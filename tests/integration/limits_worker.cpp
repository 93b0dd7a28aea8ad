// A worker for the bounds tests (bounds_test.cpp):
// - `hang`: `forever()` never returns; `nap(ms)` has a 1 s time limit;
//   `blob(n)` answers n bytes (a big reply from a small request);
// - `session`: keyed, passivated after 300 ms idle; it logs each build and
//   destruction with its key and pid, so a test can count them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace {

using namespace std::chrono_literals;

class hang {
 public:
  int forever() {
    for (;;) std::this_thread::sleep_for(1h);
  }
  int nap(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }
  std::vector<char> blob(int n) { return std::vector<char>(static_cast<std::size_t>(n), 'b'); }
  int pid() const { return static_cast<int>(getpid()); }
};

class session {
 public:
  explicit session(const troupe::context& ctx) : key_(ctx.key()) {
    std::fprintf(stderr, "session %s constructed in pid %d\n", key_.c_str(), static_cast<int>(getpid()));
  }
  ~session() {
    std::fprintf(stderr, "session %s destroyed in pid %d\n", key_.c_str(), static_cast<int>(getpid()));
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  long long add(long long n) { return total_ += n; }
  long long get() const { return total_; }

 private:
  std::string key_;
  long long total_ = 0;
};

const troupe::actor<hang> hang_actor{"hang", troupe::method("forever", &hang::forever),
                                     troupe::method("nap", &hang::nap).time_limit(1s),
                                     troupe::method("blob", &hang::blob), troupe::method("pid", &hang::pid)};

const troupe::actor<session> session_actor{"session", troupe::idle_timeout(300ms),
                                           troupe::method("add", &session::add),
                                           troupe::method("get", &session::get)};

}  // namespace

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
