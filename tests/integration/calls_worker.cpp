// Actors that call actors, for calls_test.cpp (with `relay` from the
// examples): `ping` and `pong` hand a countdown to each other, `patient`
// awaits a slow call and tells what happened to it (or is busy itself).
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace calls_test {

// ping/N asks pong/N-1, which asks ping/N-2, ... down to 0; each returns
// the addresses below it and its own.
class hopper {
 public:
  explicit hopper(const troupe::context& ctx) : ctx_(ctx) {}

  troupe::task<std::vector<std::string>> hop(int n) {
    std::vector<std::string> path;
    if (n > 0) {
      const std::string next = std::string(ctx_.name() == "ping" ? "pong/" : "ping/") + std::to_string(n - 1);
      path = co_await ctx_.ask<std::vector<std::string>>(next, "hop", n - 1);
    }
    path.emplace_back(ctx_.address());
    co_return path;
  }

  // Asks `address`.hop(0) and blocks on it: a plain method holds its
  // worker process until the reply comes.
  std::vector<std::string> hop_blocking(std::string address) {
    return ctx_.ask<std::vector<std::string>>(address, "hop", 0).get();
  }
  long long square_blocking(long long x) { return ctx_.ask<long long>("squares", "square", x).get(); }

 private:
  const troupe::context& ctx_;
};

const troupe::actor<hopper> ping_actor{"ping", troupe::method("hop", &hopper::hop),
                                       troupe::method("hop_blocking", &hopper::hop_blocking),
                                       troupe::method("square_blocking", &hopper::square_blocking)};
const troupe::actor<hopper> pong_actor{"pong", troupe::method("hop", &hopper::hop)};

// Awaits squares.square_slowly in another process; remembers how its last
// call ended, and how many calls it finished.
class patient {
 public:
  explicit patient(const troupe::context& ctx) : ctx_(ctx) {}

  troupe::task<long long> square_slowly(long long x, int ms) {
    const auto start = std::chrono::steady_clock::now();
    try {
      const auto y = co_await ctx_.ask<long long>("squares", "square_slowly", x, ms);
      note("ok", start);
      co_return y;
    } catch (const troupe::error& e) {
      note(std::string(e.code_name()), start);
      throw;
    }
  }

  // How many square_slowly calls ended, and how the last one did, after
  // how many milliseconds: {"finished", "last", "last_ms"}.
  std::map<std::string, std::string> report() const {
    return {{"finished", std::to_string(finished_)}, {"last", last_}, {"last_ms", std::to_string(last_ms_)}};
  }

  int quick(int x) const { return x + 1; }
  // Busy for `ms`: holds the worker process (slow replies shrink the
  // broker's window for it).
  int busy(int ms) const {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  }

  // A tell from inside a method: `address`.bump(), one-way.
  void poke(std::string address) const { ctx_.tell(address, "bump"); }
  int bump() { return ++bumps_; }
  int bumps() const { return bumps_; }

 private:
  void note(std::string how, std::chrono::steady_clock::time_point start) {
    ++finished_;
    last_ = std::move(how);
    last_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                   .count();
  }

  const troupe::context& ctx_;
  int finished_ = 0;
  int bumps_ = 0;
  std::string last_ = "none";
  long long last_ms_ = -1;
};

const troupe::actor<patient> patient_actor{"patient",
                                           troupe::method("square_slowly", &patient::square_slowly),
                                           troupe::method("report", &patient::report),
                                           troupe::method("quick", &patient::quick),
                                           troupe::method("busy", &patient::busy),
                                           troupe::method("poke", &patient::poke),
                                           troupe::method("bump", &patient::bump),
                                           troupe::method("bumps", &patient::bumps)};

}  // namespace calls_test

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
