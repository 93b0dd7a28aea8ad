// The floor's worker: a DEALER that sends READY once, then for every
// [client][hdr][meta][args] decodes meta (array of 5: id, address, method,
// flags, timeout_ms) and args (array of one integer), computes x*x and sends
// [client][hdr REPLY][meta [id, "ok"]][value]. Nothing of troupe is in it.
//
//   troupe-floor-worker ENDPOINT [--poll N | --batch N] [--decode minimal|msgpack-c]
//
// By default it blocks in recv (no poll at all: there is nothing else to
// wait for) and decodes with bench_common.hpp's minimal reader, which checks
// every byte it reads and allocates nothing. Those were measured the fastest
// (docs/performance.md, "The floor"); the flags select the variants they were
// measured against: zmq_poll then up to N messages with ZMQ_DONTWAIT,
// receiving up to N waiting requests before answering them, and msgpack-c's
// general unpacker into a reused zone.
#include <msgpack.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench_common.hpp"

namespace {

struct worker {
  worker(zmq::socket_t& sock, bool minimal_decode) : s(sock), minimal(minimal_decode) {}

  zmq::socket_t& s;
  bool minimal;
  std::vector<std::array<zmq::message_t, 6>> in{1};
  std::vector<std::size_t> counts{0};
  msgpack::zone zone;
  bench::mp_writer meta_out, value_out;
  std::uint64_t handled = 0, bad = 0;
  const std::array<char, bench::header_size> reply_hdr = bench::header(bench::cmd_reply);

  // Receives one whole message into slot `k`; false when none came.
  bool receive(zmq::recv_flags flags, std::size_t k) {
    auto& f = in[k];
    try {
      if (!s.recv(f[0], flags)) return false;
    } catch (const zmq::error_t&) {
      return false;  // EINTR: the caller looks at the stop flag
    }
    std::size_t n = 1;
    while (f[n - 1].more() && n < f.size()) {
      (void)s.recv(f[n], zmq::recv_flags::none);
      ++n;
    }
    counts[k] = n;
    return true;
  }

  // Decodes id and x; false when the frames are not what the floor expects.
  bool decode_minimal(const std::array<zmq::message_t, 6>& f, std::uint64_t& id, std::int64_t& x) {
    bench::mp_reader meta(f[2].data(), f[2].size());
    if (meta.array() != 5) return false;
    const auto i = meta.integer();
    (void)meta.str();      // address
    (void)meta.str();      // method
    (void)meta.integer();  // flags
    (void)meta.integer();  // timeout_ms
    bench::mp_reader args(f[3].data(), f[3].size());
    if (args.array() != 1) return false;
    x = args.integer();
    if (!meta.done() || !args.done() || i < 0) return false;
    id = static_cast<std::uint64_t>(i);
    return true;
  }

  bool decode_msgpack_c(const std::array<zmq::message_t, 6>& f, std::uint64_t& id, std::int64_t& x) {
    try {
      zone.clear();
      std::size_t off = 0;
      const auto meta = msgpack::unpack(zone, static_cast<const char*>(f[2].data()), f[2].size(), off);
      off = 0;
      const auto args = msgpack::unpack(zone, static_cast<const char*>(f[3].data()), f[3].size(), off);
      if (meta.type != msgpack::type::ARRAY || meta.via.array.size != 5 ||
          args.type != msgpack::type::ARRAY || args.via.array.size != 1)
        return false;
      id = meta.via.array.ptr[0].as<std::uint64_t>();
      x = args.via.array.ptr[0].as<long long>();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  void handle(std::size_t k) {
    auto& f = in[k];
    std::uint64_t id = 0;
    std::int64_t x = 0;
    if (counts[k] != 4 || bench::parse_header(f[1].data(), f[1].size()) != bench::cmd_request ||
        !(minimal ? decode_minimal(f, id, x) : decode_msgpack_c(f, id, x))) {
      ++bad;
      return;
    }
    meta_out.n = 0;
    meta_out.array(2);
    meta_out.uint(id);
    meta_out.str("ok");
    value_out.n = 0;
    value_out.integer(x * x);
    s.send(f[0], zmq::send_flags::sndmore);
    s.send(zmq::buffer(reply_hdr), zmq::send_flags::sndmore);
    s.send(zmq::buffer(meta_out.buf, meta_out.n), zmq::send_flags::sndmore);
    s.send(zmq::buffer(value_out.buf, value_out.n), zmq::send_flags::none);
    ++handled;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int poll_drain = 0;  // 0: blocking recv
  int batch = 1;
  bool minimal = true;
  bool usage = argc < 2;
  for (int i = 2; i < argc && !usage; ++i) {
    const std::string a = argv[i];
    if (a == "--poll" && i + 1 < argc) {
      poll_drain = std::atoi(argv[++i]);
      usage = poll_drain < 1;
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoi(argv[++i]);
      usage = batch < 1;
    } else if (a == "--decode" && i + 1 < argc) {
      const std::string d = argv[++i];
      minimal = d == "minimal";
      usage = !minimal && d != "msgpack-c";
    } else {
      usage = true;
    }
  }
  if (usage) {
    std::fprintf(stderr, "usage: %s ENDPOINT [--poll N | --batch N] [--decode minimal|msgpack-c]\n", argv[0]);
    return 2;
  }
  bench::install_stop_handlers();
  zmq::context_t ctx{1};
  zmq::socket_t s{ctx, zmq::socket_type::dealer};
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.set(zmq::sockopt::rcvtimeo, 200);  // a blocking recv still sees a stop request in time
  bench::curve_client_from_env(s);
  s.connect(argv[1]);
  {
    bench::mp_writer info;
    info.buf[info.n++] = 0x81;  // map of 1
    info.str("name");
    info.str("floor-worker");
    const auto hdr = bench::header(bench::cmd_ready);
    s.send(zmq::buffer(hdr), zmq::send_flags::sndmore);
    s.send(zmq::buffer(info.buf, info.n), zmq::send_flags::none);
  }
  worker w(s, minimal);
  w.in.resize(static_cast<std::size_t>(batch));
  w.counts.resize(static_cast<std::size_t>(batch));
  if (poll_drain == 0) {
    // Block for one request, take up to batch-1 more that are already
    // there, then answer them all.
    while (!bench::g_stop.load(std::memory_order_relaxed)) {
      if (!w.receive(zmq::recv_flags::none, 0)) continue;
      std::size_t got = 1;
      while (got < w.in.size() && w.receive(zmq::recv_flags::dontwait, got)) ++got;
      for (std::size_t k = 0; k < got; ++k) w.handle(k);
    }
  } else {
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
    while (!bench::g_stop.load(std::memory_order_relaxed)) {
      try {
        zmq::poll(items, 1, std::chrono::milliseconds(200));
      } catch (const zmq::error_t&) {
        continue;
      }
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      for (int m = 0; m < poll_drain && w.receive(zmq::recv_flags::dontwait, 0); ++m) w.handle(0);
    }
  }
  std::fprintf(stderr, "floor worker: %llu handled, %llu bad\n", static_cast<unsigned long long>(w.handled),
               static_cast<unsigned long long>(w.bad));
  return 0;
}
