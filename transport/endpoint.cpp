#include "troupe/endpoint.hpp"

#include <cstdlib>

namespace troupe {

std::string default_broker_endpoint() {
  const char* env = std::getenv("TROUPE_BROKER");
  return env && *env ? env : "tcp://127.0.0.1:5555";
}

}  // namespace troupe
