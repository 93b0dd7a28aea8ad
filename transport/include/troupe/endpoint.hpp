// Where the broker is when nobody says: for clients, the `troupe` command
// line and workers alike. Included by troupe/client.hpp.
#pragma once

#include <string>

namespace troupe {

// $TROUPE_BROKER if set and not empty, else "tcp://127.0.0.1:5555".
// Reads the environment on each call; thread-safe as long as nothing
// modifies the environment at the same time (std::getenv).
std::string default_broker_endpoint();

}  // namespace troupe
