#include "troupe/endpoint.hpp"

#include <cstdlib>
#include <zmq.hpp>

namespace troupe {

std::string default_broker_endpoint() {
  const char* env = std::getenv("TROUPE_BROKER");
  return env && *env ? env : "tcp://127.0.0.1:5555";
}

std::string endpoint_error(const std::string& endpoint) {
  // A throwaway context: the check leaves no socket or thread behind.
  zmq::context_t ctx(1);
  zmq::socket_t probe(ctx, zmq::socket_type::dealer);
  probe.set(zmq::sockopt::linger, 0);
  try {
    probe.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return "cannot connect to '" + endpoint + "': " + e.what() +
           " (an endpoint looks like tcp://127.0.0.1:5555 or ipc:///path/to/socket)";
  }
  return {};
}

}  // namespace troupe
