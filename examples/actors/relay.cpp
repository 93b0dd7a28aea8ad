// `relay`: an actor that calls another actor from inside its method.
// forward(address, method, args) asks address.method(*args) and returns its
// result, or fails with the callee's error. It is a coroutine: while it
// awaits the answer, its worker process serves other instances; this
// instance takes its next message only once forward has returned.
//
//   troupe call relay/a forward '"squares"' '"square"' '[7]'                      -> 49
//   troupe call relay/a forward '"relay/b"' '"forward"' '["squares", "square", [7]]' -> 49
//   troupe call relay/a forward '"relay/a"' '"forward"' '["squares", "square", [7]]' -> call_cycle
#include <string>

#include "troupe/actor.hpp"

namespace examples {

class relay {
 public:
  explicit relay(const troupe::context& ctx) : ctx_(ctx) {}

  troupe::task<troupe::raw_value> forward(std::string address, std::string method, troupe::raw_value args) {
    if (!args.is_array()) throw troupe::bad_args_error("args must be an array of the callee's arguments");
    co_return co_await ctx_.ask_packed<troupe::raw_value>(address, method, std::move(args.bytes));
  }

 private:
  const troupe::context& ctx_;
};

const troupe::actor<relay> relay_actor{"relay", troupe::method("forward", &relay::forward)};

}  // namespace examples
