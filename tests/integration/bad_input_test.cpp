// Hostile and malformed input against the real broker and worker: each gets
// bad_request / bad_args where a reply is possible, is dropped and counted
// otherwise, and the broker keeps serving.
#include <gtest/gtest.h>

#include <random>
#include <zmq.hpp>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::command;

class raw_peer {
 public:
  // A peer of `c` that sends what clients and workers send (with a key of
  // every role when the cluster runs CURVE).
  explicit raw_peer(const cluster& c) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    c.secure(socket_, "any");
    socket_.connect(c.endpoint());
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i)
      socket_.send(zmq::buffer(frames[i]),
                   i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  // The next message's frames, or none after 5 s.
  std::vector<std::string> receive() {
    std::vector<std::string> frames;
    zmq::message_t m;
    do {
      if (!socket_.recv(m)) return {};
      frames.emplace_back(static_cast<const char*>(m.data()), m.size());
    } while (m.more());
    return frames;
  }
  // Waits for a REPLY and returns {id, status}.
  std::pair<std::uint64_t, std::string> reply() {
    auto f = receive();
    if (f.size() != 3) return {0, "no reply"};
    auto meta = protocol::decode_reply_meta(f[1].data(), f[1].size());
    if (!meta) return {0, "bad reply"};
    return {meta->id, std::string(meta->status_text)};
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_{ctx_, zmq::socket_type::dealer};
};

std::string hdr(command c) {
  auto h = protocol::header(c);
  return std::string(h.begin(), h.end());
}

std::string meta(std::uint64_t id, const std::string& address, const std::string& method) {
  std::string out;
  protocol::encode_request_meta(out, {id, address, method, 0, 5000});
  return out;
}

TEST(BadInput, BrokerAndWorkerSurviveAndAnswer) {
  cluster c({"--max-message-bytes", "4096"});
  c.start_worker({"--max-message-bytes", "4096"});
  ASSERT_TRUE(c.wait_for_workers(1));
  raw_peer peer(c);
  const auto req = hdr(command::request);

  // Dropped without a reply: not our protocol at all.
  peer.send({"hello"});
  peer.send({"TRP\x09\x01", "x", "y"});
  peer.send({std::string("TRP\x01\x07", 5)});

  // A READY with an invalid body is refused, with the reason.
  peer.send({hdr(command::ready), "\xc1"});
  auto refusal = peer.receive();
  ASSERT_EQ(refusal.size(), 2u);
  EXPECT_EQ(refusal[0], hdr(command::disconnect));
  EXPECT_EQ(decode(refusal[1]).get().as<std::string>(), "READY info must be a map");

  // Replies the broker can give.
  peer.send({req, "\x93\x01\x02\x03", "\x90"});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{0, "bad_request"})) << "unreadable meta";
  peer.send({req, meta(11, "squares", "square")});
  EXPECT_EQ(peer.reply().second, "bad_request") << "missing args frame";
  peer.send({req, meta(12, "no such/", "square"), "\x90"});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{12, "bad_request"}));
  peer.send({req, meta(13, "squares", "square"), std::string(5000, '\x01')});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{13, "bad_request"}))
      << "over the size limit";
  peer.send({req, meta(0, "squares", "square"), "\x91\x01"});
  EXPECT_EQ(peer.reply().second, "bad_request") << "id 0 is reserved";

  // The largest timeout is clamped, not overflowed.
  std::string forever;
  protocol::encode_request_meta(forever, {17, "squares", "square", 0, ~std::uint64_t{0}});
  peer.send({req, forever, "\x91\x03"});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{17, "ok"}));

  // Replies the worker gives: the broker forwards args untouched.
  peer.send({req, meta(14, "squares", "square"), std::string("\xdd\xff\xff\xff\xff", 5)});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{14, "bad_args"})) << "array bomb";
  peer.send({req, meta(15, "squares", "square"), std::string(2000, '\x91')});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{15, "bad_args"})) << "nesting bomb";
  peer.send({req, meta(16, "squares", "square"), "\xc1"});
  EXPECT_EQ(peer.reply(), (std::pair<std::uint64_t, std::string>{16, "bad_args"})) << "invalid msgpack";

  // A REPLY from a stranger is not forwarded anywhere: it is told to register.
  std::string fake_reply_meta;
  protocol::encode_reply_meta(fake_reply_meta, 1, "ok");
  peer.send({hdr(command::reply), fake_reply_meta, "\x01"});
  auto answer = peer.receive();
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0], hdr(command::disconnect));

  // Random garbage, bounded.
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::string> frames(1 + rng() % 4);
    for (auto& f : frames) {
      f.resize(rng() % 40);
      for (auto& ch : f) ch = static_cast<char>(rng());
    }
    if (i % 3 == 0) frames[0] = req;  // reach the request parser more often
    if (frames[0] == req) continue;   // a valid header + garbage would get replies; keep the stream simple
    peer.send(frames);
  }

  // Still serving.
  EXPECT_EQ(c.client().ask<long long>("squares", "square", 9).get(), 81);
  EXPECT_GE(c.stat("dropped"), 4u);
  EXPECT_GE(c.stat("bad_requests"), 5u);
}

TEST(BadInput, GarbageRequestsWithAValidHeaderAllGetAnAnswer) {
  cluster c;
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  raw_peer peer(c);
  std::mt19937 rng(99);
  const int n = 500;
  for (int i = 0; i < n; ++i) {
    std::string junk(rng() % 30, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    // Valid meta with junk args, or junk meta: both must be answered.
    if (i % 2) {
      peer.send({hdr(command::request), meta(static_cast<std::uint64_t>(i + 1), "echo", "echo"), junk});
    } else {
      peer.send({hdr(command::request), junk, "\x90"});
    }
  }
  int answered = 0;
  for (int i = 0; i < n; ++i) {
    auto [id, status] = peer.reply();
    if (status == "no reply") break;
    ++answered;
  }
  EXPECT_EQ(answered, n);
  EXPECT_EQ(c.client().ask<long long>("squares", "square", 3).get(), 9);
}

}  // namespace
}  // namespace troupe::test
