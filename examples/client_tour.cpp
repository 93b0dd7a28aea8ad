// The C++ client API in one place (docs/concepts.md shows this file).
// Run it against a broker with troupe-examples-worker attached.
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "troupe/client.hpp"

int main() {
  troupe::client c(troupe::default_broker_endpoint());  // or "tcp://127.0.0.1:5555"
  std::future<long long> f = c.ask<long long>("squares", "square", 7);
  long long y = f.get();                                                  // 49
  c.ask<long long>(troupe::call_options{std::chrono::milliseconds(500)},  // options first: a timeout
                   "squares", "square_slowly", 3, 100)
      .get();
  c.tell("counter/alice", "add", 5);  // one-way
  std::vector<long long> ys = c.map<long long>("squares", "square", std::vector<long long>{1, 2, 3});
  ys = c.map<long long>(troupe::map_options{.window = 8}, "squares", "square", ys);  // options first too
  try {
    c.ask<long long>("squares", "no_such_method").get();
  } catch (const troupe::error& e) {
    std::printf("%s: %s\n", std::string(e.code_name()).c_str(), e.message().c_str());  // unknown_method: ...
  }
  try {
    c.ask<std::string>("squares", "square", 7).get();
  } catch (const troupe::result_type_error& e) {
    std::printf("%s\n", e.what());  // the result is int, expected str
  }
  std::printf("%lld %zu\n", y, ys.size());
}
