#include <string>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

// An actor: a class at namespace scope, registered under a name.
class greeter {
 public:
  std::string greet(const std::string& name) { return "hello, " + name + " #" + std::to_string(++calls_); }

 private:
  int calls_ = 0;  // state lives in the worker process, built on first use
};

const troupe::actor<greeter> greeter_actor{"greeter", troupe::method("greet", &greeter::greet)};

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
