// Where the broker is when nobody says: for clients, the `troupe` command
// line and workers alike. Included by troupe/client.hpp.
#pragma once

#include <string>

namespace troupe {

// $TROUPE_BROKER if set and not empty, else "tcp://127.0.0.1:5555".
// Reads the environment on each call; thread-safe as long as nothing
// modifies the environment at the same time (std::getenv).
std::string default_broker_endpoint();

// Why a ZeroMQ socket cannot connect to `endpoint` (a malformed address, an
// unknown transport), as one line naming it; empty when it can. Connecting
// does not wait for a peer, so a well-formed endpoint with no broker behind
// it is fine here. For programs that should fail at once on a typo rather
// than retry forever.
std::string endpoint_error(const std::string& endpoint);

}  // namespace troupe
