// The floor's worker: a DEALER that sends READY once, then for every
// [client][hdr][meta][args] decodes the msgpack meta (array of 5, id first)
// and args (array of one integer), computes x*x and sends
// [client][hdr REPLY][meta [id, "ok"]][value]. It uses msgpack-c directly,
// with a reused zone and reused output buffers, and nothing of troupe.
//
//   troupe-floor-worker ENDPOINT
#include <msgpack.hpp>

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
  zmq::socket_t s{ctx, zmq::socket_type::dealer};
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.connect(argv[1]);
  {
    msgpack::sbuffer info;
    msgpack::packer<msgpack::sbuffer> pk(info);
    pk.pack_map(1);
    pk.pack(std::string_view("name"));
    pk.pack(std::string_view("floor-worker"));
    const auto hdr = bench::header(bench::cmd_ready);
    s.send(zmq::buffer(hdr), zmq::send_flags::sndmore);
    s.send(zmq::buffer(info.data(), info.size()), zmq::send_flags::none);
  }
  const auto reply_hdr = bench::header(bench::cmd_reply);
  std::array<zmq::message_t, 6> f;
  msgpack::zone zone;
  msgpack::sbuffer meta_out(64), value_out(64);
  std::uint64_t handled = 0, bad = 0;
  zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
  while (!bench::g_stop.load(std::memory_order_relaxed)) {
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(200));
    } catch (const zmq::error_t&) {
      continue;
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    for (int m = 0; m < 1024; ++m) {  // as many per poll as troupe's worker drains
      if (!s.recv(f[0], zmq::recv_flags::dontwait)) break;
      std::size_t n = 1;
      while (f[n - 1].more() && n < f.size()) {
        (void)s.recv(f[n], zmq::recv_flags::none);
        ++n;
      }
      if (n != 4 || bench::parse_header(f[1].data(), f[1].size()) != bench::cmd_request) {
        ++bad;
        continue;
      }
      try {
        zone.clear();
        std::size_t off = 0;
        const auto meta = msgpack::unpack(zone, static_cast<const char*>(f[2].data()), f[2].size(), off);
        off = 0;
        const auto args = msgpack::unpack(zone, static_cast<const char*>(f[3].data()), f[3].size(), off);
        if (meta.type != msgpack::type::ARRAY || meta.via.array.size != 5 || args.type != msgpack::type::ARRAY ||
            args.via.array.size != 1) {
          ++bad;
          continue;
        }
        const auto id = meta.via.array.ptr[0].as<std::uint64_t>();
        const auto x = args.via.array.ptr[0].as<long long>();
        meta_out.clear();
        value_out.clear();
        msgpack::packer<msgpack::sbuffer> pm(meta_out);
        pm.pack_array(2);
        pm.pack(id);
        pm.pack(std::string_view("ok"));
        msgpack::packer<msgpack::sbuffer> pv(value_out);
        pv.pack(x * x);
      } catch (const std::exception&) {
        ++bad;
        continue;
      }
      s.send(f[0], zmq::send_flags::sndmore);
      s.send(zmq::buffer(reply_hdr), zmq::send_flags::sndmore);
      s.send(zmq::buffer(meta_out.data(), meta_out.size()), zmq::send_flags::sndmore);
      s.send(zmq::buffer(value_out.data(), value_out.size()), zmq::send_flags::none);
      ++handled;
    }
  }
  std::fprintf(stderr, "floor worker: %llu handled, %llu bad\n", static_cast<unsigned long long>(handled),
               static_cast<unsigned long long>(bad));
  return 0;
}
