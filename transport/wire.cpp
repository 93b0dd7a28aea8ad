#include "troupe/wire.hpp"

#include <algorithm>
#include <cstdint>

namespace troupe::wire {
namespace {

// Strings and binaries point into the received frame instead of being
// copied: callers keep the frame alive while they use the object.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

msgpack::unpack_limit limit_for(std::size_t size, const protocol::limits& limits) {
  // No container or string can have more elements or bytes than the frame,
  // so a header claiming billions of them cannot allocate them.
  const auto bound = std::max<std::size_t>(size, 1);
  return msgpack::unpack_limit(bound, bound, bound, bound, bound, limits.max_depth);
}

void expect_consumed(std::size_t offset, std::size_t size) {
  if (offset != size) throw msgpack::unpack_error("trailing bytes after the value");
}

// Reads the rest of a message whose frames did not fit.
std::size_t discard_rest(zmq::socket_t& socket, std::size_t counted) {
  zmq::message_t extra;
  do {
    (void)socket.recv(extra, zmq::recv_flags::none);  // the parts of a message arrive together
    ++counted;
  } while (extra.more());
  return counted;
}

}  // namespace

void configure(zmq::socket_t& socket, const protocol::limits& limits) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, 0);
  socket.set(zmq::sockopt::rcvhwm, 0);
  socket.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(limits.max_message_bytes * 4 + 4096));
}

void configure_dealer(zmq::socket_t& socket, const protocol::limits& limits) {
  configure(socket, limits);
  socket.set(zmq::sockopt::reconnect_ivl, 100);
}

std::size_t receive(zmq::socket_t& socket, std::span<zmq::message_t> frames) {
  // dontwait on the first frame rather than asking ZMQ_EVENTS before each
  // message saves libzmq a poll() system call per message.
  if (frames.empty()) {
    zmq::message_t first;
    if (!socket.recv(first, zmq::recv_flags::dontwait)) return 0;
    return first.more() ? discard_rest(socket, 1) : 1;
  }
  if (!socket.recv(frames[0], zmq::recv_flags::dontwait)) return 0;
  std::size_t n = 1;
  while (frames[n - 1].more()) {
    if (n == frames.size()) return discard_rest(socket, n);
    (void)socket.recv(frames[n], zmq::recv_flags::none);
    ++n;
  }
  return n;
}

std::size_t receive_routed(zmq::socket_t& socket, zmq::message_t& peer, std::span<zmq::message_t> frames) {
  if (!socket.recv(peer, zmq::recv_flags::dontwait)) return 0;
  std::size_t n = 0;
  bool more = peer.more();
  while (more) {
    if (n == frames.size()) return discard_rest(socket, n);
    (void)socket.recv(frames[n], zmq::recv_flags::none);
    more = frames[n].more();
    ++n;
  }
  return n;
}

// Once the first frame is queued on a connection the others follow it there
// (ZeroMQ keeps a message's parts together), and with no high-water mark
// they cannot be refused; so only the first send can fail.
bool send(zmq::socket_t& socket, protocol::command c) {
  const auto header = protocol::header(c);
  return socket.send(zmq::buffer(header), zmq::send_flags::dontwait).has_value();
}

bool send(zmq::socket_t& socket, protocol::command c, std::string_view body) {
  const auto header = protocol::header(c);
  if (!socket.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  socket.send(zmq::buffer(body), zmq::send_flags::dontwait);
  return true;
}

bool send(zmq::socket_t& socket, protocol::command c, std::string_view meta, zmq::const_buffer payload) {
  const auto header = protocol::header(c);
  if (!socket.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  socket.send(zmq::buffer(meta), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  socket.send(payload, zmq::send_flags::dontwait);
  return true;
}

void send_routed(zmq::socket_t& socket, std::string_view to, protocol::command c, std::string_view meta,
                 zmq::message_t* payload) {
  const auto header = protocol::header(c);
  const bool has_body = !meta.empty() || payload;
  socket.send(zmq::buffer(to), zmq::send_flags::sndmore);
  socket.send(zmq::buffer(header), has_body ? zmq::send_flags::sndmore : zmq::send_flags::none);
  if (!has_body) return;
  socket.send(zmq::buffer(meta), payload ? zmq::send_flags::sndmore : zmq::send_flags::none);
  if (payload) socket.send(*payload, zmq::send_flags::none);
}

msgpack::object_handle unpack_bounded(const void* data, std::size_t size, const protocol::limits& limits) {
  std::size_t offset = 0;
  auto handle = msgpack::unpack(static_cast<const char*>(data), size, offset, nullptr, nullptr,
                                limit_for(size, limits));
  expect_consumed(offset, size);
  return handle;
}

msgpack::object unpack_bounded(msgpack::zone& zone, const void* data, std::size_t size,
                               const protocol::limits& limits) {
  std::size_t offset = 0;
  auto object = msgpack::unpack(zone, static_cast<const char*>(data), size, offset, reference_everything,
                                nullptr, limit_for(size, limits));
  expect_consumed(offset, size);
  return object;
}

}  // namespace troupe::wire
