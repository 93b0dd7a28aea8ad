// Who sent a message to the broker: its routing id and, with CURVE on, the
// role and name its public key has in the broker's key directories
// (docs/security.md). The socket loop learns them from ZeroMQ's metadata
// (the ZAP handler's User-Id) and hands them to the core with each message.
#pragma once

#include <cstdint>
#include <string_view>

namespace troupe {

// A set of roles: a key may be in more than one directory.
enum class peer_role : std::uint8_t {
  none = 0,
  worker = 1,  // may send READY, REPLY, HEARTBEAT, DISCONNECT
  client = 2,  // may send REQUEST
  admin = 4,   // may call `$broker` methods other than `ping` (given with client)
  any = 7,     // CURVE off: every peer may do everything
};

constexpr peer_role operator|(peer_role a, peer_role b) {
  return static_cast<peer_role>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
// Whether `set` includes `role`.
constexpr bool has_role(peer_role set, peer_role role) {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(role)) ==
         static_cast<std::uint8_t>(role);
}

// A plain view: valid while the message it came with is handled.
struct peer {
  std::string_view id;              // ZeroMQ routing id
  peer_role role = peer_role::any;  // none: a key no longer in any directory
  std::string_view key_name;        // the key file's name without `.key`; empty with CURVE off
};

}  // namespace troupe
