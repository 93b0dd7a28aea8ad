// What the broker core's tests put in and read back, without sockets: a
// message delivered as the socket loop would, and the messages the core
// sent, copied out so that they outlive the outbox, with small decoders.
// Shared by broker_core_test, broker_bounds_test and broker_durable_test.
#pragma once

#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "broker/core.hpp"

namespace troupe::test {

// Delivers to `core` a message of a header for `c` and `body` frames from
// `from`, at `now`, as the socket loop does (frames past max_frames counted
// but not passed).
inline void deliver(broker_core& core, const peer& from, protocol::command c,
                    const std::vector<std::string>& body, broker_core::time_point now) {
  std::vector<zmq::message_t> frames;
  const auto hdr = protocol::header(c);
  frames.emplace_back(hdr.data(), hdr.size());
  for (const auto& b : body) frames.emplace_back(b.data(), b.size());
  const auto count = frames.size();
  core.on_message(from, std::span(frames).first(std::min(count, broker_core::max_frames)), count, now);
}
// The same from routing id `id`, in every role (CURVE off).
inline void deliver(broker_core& core, std::string_view id, protocol::command c,
                    const std::vector<std::string>& body, broker_core::time_point now) {
  deliver(core, peer{id, peer_role::any, {}}, c, body, now);
}

// A message the core sent, copied out of its outbox.
struct sent {
  std::string to;
  protocol::command cmd;
  std::string meta;
  std::optional<std::string> payload;

  protocol::request_meta request() const {
    auto m = protocol::decode_request_meta(meta.data(), meta.size());
    EXPECT_TRUE(m.has_value()) << "not a REQUEST meta";
    return m.value_or(protocol::request_meta{});
  }
  std::uint64_t request_id() const { return request().id; }
  std::uint64_t reply_id() const { return protocol::decode_reply_meta(meta.data(), meta.size())->id; }
  std::string status() const {
    return std::string(protocol::decode_reply_meta(meta.data(), meta.size())->status_text);
  }
  std::string reply_status() const { return status(); }
  msgpack::object_handle value() const { return msgpack::unpack(payload->data(), payload->size()); }
  std::string text() const { return value().get().as<std::string>(); }
};

// Everything the core sent since the last call, after checking that its
// tables agree (audit); the outbox is emptied.
inline std::vector<sent> take_sent(broker_core& core) {
  EXPECT_EQ(core.audit(), "");
  std::vector<sent> all;
  for (auto& m : core.out().messages()) {
    sent s{m.to, m.command, m.meta, std::nullopt};
    if (m.has_payload) s.payload = std::string(static_cast<const char*>(m.payload.data()), m.payload.size());
    all.push_back(std::move(s));
  }
  core.out().clear();
  return all;
}

// The messages of `all` to `peer` with command `c`.
inline std::vector<sent> sent_to(const std::vector<sent>& all, const std::string& peer, protocol::command c) {
  std::vector<sent> out;
  for (const auto& m : all)
    if (m.to == peer && m.cmd == c) out.push_back(m);
  return out;
}

inline std::string packed(const auto& value) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, value);
  return {buf.data(), buf.size()};
}

}  // namespace troupe::test
