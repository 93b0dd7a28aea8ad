// `echo`: returns its argument unchanged, for checking that every msgpack
// type survives the trip; `fail` throws, for checking error replies;
// `whoami` tells which process and address answered.
#include <unistd.h>

#include <map>
#include <stdexcept>
#include <string>

#include "troupe/actor.hpp"

namespace examples {

class echo {
 public:
  explicit echo(const troupe::context& ctx) : address_(ctx.address()) {}

  // msgpack::object views the request's bytes; it is packed into the reply
  // before the request is released.
  msgpack::object echo_value(const msgpack::object& value) const { return value; }
  std::string fail(const std::string& message) const { throw std::runtime_error(message); }
  std::map<std::string, std::string> whoami() const {
    return {{"address", address_}, {"pid", std::to_string(getpid())}};
  }

 private:
  std::string address_;
};

const troupe::actor<echo> echo_actor{"echo", troupe::method("echo", &echo::echo_value),
                                     troupe::method("fail", &echo::fail),
                                     troupe::method("whoami", &echo::whoami)};

}  // namespace examples
