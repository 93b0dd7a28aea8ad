// The floor: the least a broker can do. One ROUTER socket; every peer that
// sends READY is a worker (requests go to them round-robin); a REQUEST from
// anyone else goes to the next worker with the client's routing id as an
// extra envelope frame; a REPLY from a worker goes back to the client named
// by that envelope. Frames are moved (zmq_msg_send takes ownership), never
// copied. No queues, no credits, no deadlines, no parsing beyond the 5-byte
// header.
//
//   troupe-floor-forwarder ENDPOINT [--poll N | --batch N]
//       prints "floor listening on ENDPOINT", then "floor worker ready" per worker
//
// By default it blocks in recv: while messages wait, libzmq hands them over
// without a system call, and when none wait it sleeps on the socket's
// mailbox, so there is no poll() per batch. That was measured the fastest
// (docs/performance.md, "The floor"); the flags select the variants it was
// measured against: `--poll N` (zmq_poll, then up to N messages with
// ZMQ_DONTWAIT) and `--batch N` (receive up to N waiting messages, then
// send them all, so that sends leave in bursts).
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench_common.hpp"

namespace {

// One received message: its frames and how many there were.
struct message {
  std::array<zmq::message_t, 8> f;
  std::size_t n = 0;
};

struct forwarder {
  zmq::socket_t& router;
  std::vector<std::string> workers;  // routing ids, in order of READY
  std::size_t next = 0;              // round-robin position
  std::uint64_t forwarded = 0;

  // Receives one whole message; false when none came (timeout, EINTR, or
  // nothing waiting with dontwait).
  bool receive(zmq::recv_flags flags, message& m) {
    try {
      if (!router.recv(m.f[0], flags)) return false;
    } catch (const zmq::error_t&) {
      return false;  // EINTR: the caller looks at the stop flag
    }
    m.n = 1;
    while (m.f[m.n - 1].more() && m.n < m.f.size()) {
      (void)router.recv(m.f[m.n], zmq::recv_flags::none);  // the parts of a message arrive together
      ++m.n;
    }
    return true;
  }

  void handle(message& m) {
    auto& f = m.f;
    const auto n = m.n;
    if (n < 2) return;
    const auto cmd = bench::parse_header(f[1].data(), f[1].size());
    if (cmd == bench::cmd_request && n == 4 && !workers.empty()) {
      // [client][hdr][meta][args] -> [worker][client][hdr][meta][args]
      const auto& w = workers[next];
      next = next + 1 == workers.size() ? 0 : next + 1;
      router.send(zmq::buffer(w), zmq::send_flags::sndmore);
      router.send(f[0], zmq::send_flags::sndmore);
      router.send(f[1], zmq::send_flags::sndmore);
      router.send(f[2], zmq::send_flags::sndmore);
      router.send(f[3], zmq::send_flags::none);
      ++forwarded;
    } else if (n == 5 && bench::parse_header(f[2].data(), f[2].size()) == bench::cmd_reply) {
      // [worker][client][hdr][meta][value] -> [client][hdr][meta][value]
      router.send(f[1], zmq::send_flags::sndmore);
      router.send(f[2], zmq::send_flags::sndmore);
      router.send(f[3], zmq::send_flags::sndmore);
      router.send(f[4], zmq::send_flags::none);
    } else if (cmd == bench::cmd_ready) {
      workers.emplace_back(static_cast<const char*>(f[0].data()), f[0].size());
      std::printf("floor worker ready\n");
      std::fflush(stdout);
    }
    // anything else (heartbeats, requests before a worker) is dropped
  }
};

}  // namespace

int main(int argc, char** argv) {
  int poll_drain = 0;  // 0: blocking recv
  int batch = 1;
  bool usage = argc < 2;
  for (int i = 2; i < argc && !usage; ++i) {
    const std::string a = argv[i];
    if (a == "--poll" && i + 1 < argc) {
      poll_drain = std::atoi(argv[++i]);
      usage = poll_drain < 1;
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoi(argv[++i]);
      usage = batch < 1;
    } else {
      usage = true;
    }
  }
  if (usage) {
    std::fprintf(stderr, "usage: %s ENDPOINT [--poll N | --batch N]\n", argv[0]);
    return 2;
  }
  bench::install_stop_handlers();
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.set(zmq::sockopt::rcvtimeo, 200);  // a blocking recv still sees a stop request in time
  bench::curve_server_from_env(router);
  router.bind(argv[1]);
  std::printf("floor listening on %s\n", router.get(zmq::sockopt::last_endpoint).c_str());
  std::fflush(stdout);

  forwarder fw{router, {}, 0, 0};
  std::vector<message> in(static_cast<std::size_t>(std::max(batch, 1)));
  if (poll_drain == 0) {
    // Block for one message, take up to batch-1 more that are already
    // there, then forward them all.
    while (!bench::g_stop.load(std::memory_order_relaxed)) {
      if (!fw.receive(zmq::recv_flags::none, in[0])) continue;
      std::size_t got = 1;
      while (got < in.size() && fw.receive(zmq::recv_flags::dontwait, in[got])) ++got;
      for (std::size_t i = 0; i < got; ++i) fw.handle(in[i]);
    }
  } else {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    while (!bench::g_stop.load(std::memory_order_relaxed)) {
      try {
        zmq::poll(items, 1, std::chrono::milliseconds(200));
      } catch (const zmq::error_t&) {
        continue;  // EINTR
      }
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      for (int m = 0; m < poll_drain && fw.receive(zmq::recv_flags::dontwait, in[0]); ++m) fw.handle(in[0]);
    }
  }
  std::fprintf(stderr, "floor forwarder: %llu requests forwarded\n",
               static_cast<unsigned long long>(fw.forwarded));
  return 0;
}
