// What the broker core wants sent: messages appended in order, which the
// socket loop sends and then clears. Entries are reused from one batch to
// the next, so their strings keep their capacity and the hot path allocates
// nothing once the outbox has grown to its working size.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "troupe/protocol.hpp"

namespace troupe {

struct outgoing_message {
  std::string to;  // routing id of the peer
  protocol::command command = protocol::command::heartbeat;
  std::string meta;          // first body frame; empty: none
  zmq::message_t payload;    // second body frame, when has_payload
  bool has_payload = false;  // moved in (args, a worker's value) or built (an error message)
};

class outbox {
 public:
  // Appends a message to `to` with no body yet; the caller fills meta and
  // payload. The reference is valid until the next push() or clear().
  outgoing_message& push(std::string_view to, protocol::command c) {
    if (size_ == entries_.size()) entries_.emplace_back();
    auto& m = entries_[size_++];
    m.to.assign(to);
    m.command = c;
    m.meta.clear();
    m.has_payload = false;
    return m;
  }

  std::span<outgoing_message> messages() { return {entries_.data(), size_}; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Forgets the messages; payloads are released, strings keep capacity.
  void clear() {
    for (std::size_t i = 0; i < size_; ++i) entries_[i].payload.rebuild();
    size_ = 0;
  }

 private:
  std::vector<outgoing_message> entries_;
  std::size_t size_ = 0;
};

}  // namespace troupe
