// The wire layer shared by the broker, the client and the worker: socket
// options, receiving one multipart message, sending the protocol's commands,
// and unpacking user values within the protocol's limits. Each of the three
// programs used to write these for itself; they differ only in whether a
// routing id comes first (the broker's ROUTER) or not (the peers' DEALERs).
//
// None of these functions is thread-safe for one socket: a ZeroMQ socket
// belongs to one thread at a time.
#pragma once

#include <msgpack.hpp>

#include <cstddef>
#include <span>
#include <string_view>
#include <zmq.hpp>

#include "troupe/protocol.hpp"

namespace troupe::wire {

// Options of every troupe socket: no linger on close, no high-water mark
// (credits and queue limits bound the flow, and a dropped protocol message
// would break it), and ZeroMQ's own cap on message size well above the
// protocol's frame limit, so a peer sending gigabytes is cut off before it
// is read while a frame just over the limit still gets a `bad_request`.
// Throws zmq::error_t.
void configure(zmq::socket_t& socket, const protocol::limits& limits);

// configure() plus a short reconnect interval, for the DEALER sockets of
// clients and workers. Throws zmq::error_t.
void configure_dealer(zmq::socket_t& socket, const protocol::limits& limits);

// Receives one multipart message if one is waiting, without blocking. Its
// first frames.size() frames land in `frames`; any further ones are read and
// discarded. Returns the number of frames the message had (possibly more
// than frames.size(), which every command treats as malformed), or 0 when
// nothing was waiting. Throws zmq::error_t (not for EAGAIN).
std::size_t receive(zmq::socket_t& socket, std::span<zmq::message_t> frames);

// The same for the broker's ROUTER: the routing id goes to `peer`, the
// frames after it to `frames`; the count excludes the routing id.
std::size_t receive_routed(zmq::socket_t& socket, zmq::message_t& peer, std::span<zmq::message_t> frames);

// Sends a command with no body (HEARTBEAT, DISCONNECT), a command with one
// body frame (READY info, HEARTBEAT worker), or one with `meta` and a
// payload (REQUEST args, REPLY value). The payload is moved out of
// `payload` without copying its bytes. Never blocks: returns false, having
// sent nothing, when the DEALER has no connection to queue the message on
// (ZeroMQ drops the connection for good after a refused CURVE handshake;
// with no high-water mark that is the only case). Throws zmq::error_t.
bool send(zmq::socket_t& socket, protocol::command c);
bool send(zmq::socket_t& socket, protocol::command c, std::string_view body);
bool send(zmq::socket_t& socket, protocol::command c, std::string_view meta, zmq::const_buffer payload);

// The broker's sends: the same, addressed to the peer with routing id `to`.
// `payload` may be null for commands with at most one body frame (`meta`
// empty: none). Throws zmq::error_t.
void send_routed(zmq::socket_t& socket, std::string_view to, protocol::command c, std::string_view meta,
                 zmq::message_t* payload);

// Unpacks one msgpack value of `size` bytes within the protocol's limits: no
// container or string can claim more elements or bytes than the frame has,
// and nesting stops at limits.max_depth. Strings and binaries point into
// `data` when `zone` is given (the caller keeps `data` alive while it uses
// the object); otherwise they are copied into the returned handle.
// Throws msgpack::unpack_error (and its subclasses) on malformed or
// over-limit input, or trailing bytes.
msgpack::object_handle unpack_bounded(const void* data, std::size_t size, const protocol::limits& limits);
msgpack::object unpack_bounded(msgpack::zone& zone, const void* data, std::size_t size,
                               const protocol::limits& limits);

}  // namespace troupe::wire
