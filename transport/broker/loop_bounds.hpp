// The socket loop's side of the broker's bounds: the ROUTER keeps at most
// --send-queue-limit messages for one peer, a send that would go over fails
// at once instead of growing the broker (ZMQ_ROUTER_MANDATORY), and what
// could not be sent goes back to the core (broker_core::on_unsent); once a
// second, connections refused for want of descriptors are counted and
// logged, and free memory goes back to the system when the broker is idle.
//
// Not thread-safe: the loop's thread owns the socket and these objects.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "broker/outbox.hpp"
#include "troupe/broker.hpp"

namespace troupe {

// Sets the ROUTER's per-peer send bound and makes a send beyond it (or to a
// peer that is gone) fail instead of being dropped silently. Call after
// wire::configure() and before bind. Throws zmq::error_t.
void configure_send_bounds(zmq::socket_t& router, const broker_options& options);

// Sends `m` to its peer without ever blocking. Returns false, having sent
// nothing, when ZeroMQ refuses it: the peer is gone (EHOSTUNREACH) or its
// queue is full (EAGAIN). The payload is moved into ZeroMQ when sent.
// Throws zmq::error_t for anything else.
bool send_bounded(zmq::socket_t& router, outgoing_message& m);

// What a flush could not send, kept until the core has heard of it.
class unsent_messages {
 public:
  struct entry {
    std::string to;
    protocol::command command = protocol::command::heartbeat;
    std::string meta;
  };

  void add(const outgoing_message& m);
  // The entries added since clear(); valid until the next add().
  const entry* begin() const { return entries_.data(); }
  const entry* end() const { return entries_.data() + size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }

 private:
  std::vector<entry> entries_;  // reused, so their strings keep capacity
  std::size_t size_ = 0;
};

class broker_core;

// What the loop does about once a second, after its messages.
class loop_housekeeping {
 public:
  using clock = std::chrono::steady_clock;
  explicit loop_housekeeping(std::function<void(const std::string&)> log) : log_(std::move(log)) {}

  // `idle`: this turn of the loop found no message. Cheap when not due.
  void run(broker_core& core, bool idle, clock::time_point now);

 private:
  std::function<void(const std::string&)> log_;
  clock::time_point next_{};
  clock::time_point next_log_{};
  std::uint64_t refused_seen_ = 0, refused_logged_ = 0;
};

}  // namespace troupe
