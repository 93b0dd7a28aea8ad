// The durable parts of the protocol's frames (docs/protocol.md, "Durable
// messages", READY `keys` and `retry`), read and written for protocol.cpp.
// Internal to troupe::protocol.
#pragma once

#include <string>

#include "troupe/protocol.hpp"
#include "wire_reader.hpp"

namespace troupe::protocol {

// REQUEST meta's 6th element, a map {"id": str, "delay_ms": uint,
// "delivery": uint}; `id` required, each key at most once, unknown keys
// ignored. Returns false when malformed. Sets m.has_durable.
bool decode_durable_meta(wire_reader& r, request_meta& m);
// Appends the 6th element for `m` to `out` (after the first five).
void encode_durable_meta(std::string& out, const request_meta& m);

// READY `keys` and `retry` values. Return why they are refused, or "".
std::string decode_ready_keys(wire_reader& r, ready_info& info);
std::string decode_ready_retry(wire_reader& r, ready_info& info);
// Appends `keys` and `retry` (each only when not empty) to an encoded READY map.
void encode_ready_durable(std::string& out, const ready_info& info);

// REQUEST meta's 7th element, the call chain (protocol_chain.cpp): an array
// of 1..max_chain_length links [address: str, id: uint], each address a
// valid name or name/key other than $broker. Returns false when malformed.
bool check_chain(wire_reader& r);

}  // namespace troupe::protocol
