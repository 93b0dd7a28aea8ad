// The floor: the least a broker can do. One ROUTER socket; the first peer
// that sends READY is the one worker; a REQUEST from anyone else goes to it
// with the client's routing id as an extra envelope frame; a REPLY from the
// worker goes back to the client named by that envelope. Frames are moved
// (zmq_msg_send takes ownership), never copied; up to 64 messages are
// drained per poll. No queues, no credits, no deadlines, no parsing beyond
// the 5-byte header.
//
//   troupe-floor-forwarder ENDPOINT      prints "floor listening on ENDPOINT"
#include <cstdio>
#include <string>
#include <zmq.hpp>

#include "bench_common.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s ENDPOINT\n", argv[0]);
    return 2;
  }
  bench::install_stop_handlers();
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::sndhwm, 0);
  router.set(zmq::sockopt::rcvhwm, 0);
  router.bind(argv[1]);
  std::printf("floor listening on %s\n", router.get(zmq::sockopt::last_endpoint).c_str());
  std::fflush(stdout);

  std::string worker;  // routing id of the one worker
  std::array<zmq::message_t, 8> f;
  zmq::message_t worker_id;
  std::uint64_t forwarded = 0;
  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
  while (!bench::g_stop.load(std::memory_order_relaxed)) {
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(200));
    } catch (const zmq::error_t&) {
      continue;  // EINTR
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    for (int m = 0; m < 64; ++m) {
      std::size_t n = 0;
      if (!router.recv(f[0], zmq::recv_flags::dontwait)) break;
      n = 1;
      while (f[n - 1].more() && n < f.size()) {
        (void)router.recv(f[n], zmq::recv_flags::none);
        ++n;
      }
      if (n < 2) continue;
      const auto cmd = bench::parse_header(f[1].data(), f[1].size());
      if (cmd == bench::cmd_request && n == 4 && !worker.empty()) {
        // [client][hdr][meta][args] -> [worker][client][hdr][meta][args]
        router.send(zmq::buffer(worker), zmq::send_flags::sndmore);
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
        worker.assign(static_cast<const char*>(f[0].data()), f[0].size());
        std::printf("floor worker ready\n");
        std::fflush(stdout);
      }
      // anything else (heartbeats, requests before a worker) is dropped
    }
  }
  std::fprintf(stderr, "floor forwarder: %llu requests forwarded\n", static_cast<unsigned long long>(forwarded));
  return 0;
}
