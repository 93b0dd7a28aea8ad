// The load generator for the floor and for troupe: both speak the same
// frames (docs/protocol.md), so the same client measures both.
//
//   troupe-bench-client --endpoint E [--requests N] [--warmup N] [--window W]
//       [--address squares] [--method square] [--args int|none]
//       [--keys K] [--names M --name-prefix P] [--via raw|troupe-client]
//       [--clients C] [--max-seconds S]
//
// Prints one JSON object: requests, errors, seconds, window, throughput,
// p50_us, p99_us, p999_us, max_us. Every wait is bounded: a run that gets no
// reply for 10 s, or lasts longer than --max-seconds, stops with exit 1.
//
// --via raw (default): one single-threaded DEALER socket, no library; with
// --clients C, C DEALER sockets (C connections) in that thread, each with
// up to --window requests in flight (the fan-in benchmark).
// --via troupe-client: troupe::client::ask_raw, to measure the C++ client.
//
// Addresses: plain ADDRESS; with --keys K the i-th request goes to
// ADDRESS/k(i mod K); with --names M to P(i mod M) (P0000 .. P0999 for
// M = 1000, zero-padded to 4 digits). Warm-up requests are sent first and
// not measured; with --keys the warm-up is at least K, so every key is
// placed before measuring.
#include <msgpack.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench_common.hpp"
#include "troupe/client.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct settings {
  std::string endpoint;
  std::size_t requests = 20000;
  std::size_t warmup = 1000;
  std::size_t window = 1;
  std::string address = "squares";
  std::string method = "square";
  std::string args = "int";
  std::size_t keys = 0;
  std::size_t names = 0;
  std::string name_prefix = "n";
  std::string via = "raw";
  std::size_t clients = 1;
  double max_seconds = 300;
  std::uint64_t timeout_ms = 60000;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "troupe-bench-client: %s\n", msg);
  std::exit(2);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--endpoint")
      s.endpoint = next();
    else if (a == "--requests")
      s.requests = std::stoull(next());
    else if (a == "--warmup")
      s.warmup = std::stoull(next());
    else if (a == "--window")
      s.window = std::max<std::size_t>(1, std::stoull(next()));
    else if (a == "--address")
      s.address = next();
    else if (a == "--method")
      s.method = next();
    else if (a == "--args")
      s.args = next();
    else if (a == "--keys")
      s.keys = std::stoull(next());
    else if (a == "--names")
      s.names = std::stoull(next());
    else if (a == "--name-prefix")
      s.name_prefix = next();
    else if (a == "--via")
      s.via = next();
    else if (a == "--clients")
      s.clients = std::max<std::size_t>(1, std::stoull(next()));
    else if (a == "--max-seconds")
      s.max_seconds = std::stod(next());
    else
      usage(("unknown argument " + a).c_str());
  }
  if (s.endpoint.empty()) usage("--endpoint is required");
  if (s.args != "int" && s.args != "none") usage("--args is int or none");
  if (s.via != "raw" && s.via != "troupe-client") usage("--via is raw or troupe-client");
  if (s.keys > 0 && s.names > 0) usage("--keys and --names exclude each other");
  if (s.clients > 1 && s.via != "raw") usage("--clients needs --via raw");
  if (s.keys > 0) s.warmup = std::max(s.warmup, s.keys);
  return s;
}

std::vector<std::string> make_addresses(const settings& s) {
  std::vector<std::string> out;
  if (s.keys > 0) {
    out.reserve(s.keys);
    for (std::size_t i = 0; i < s.keys; ++i) out.push_back(s.address + "/k" + std::to_string(i));
  } else if (s.names > 0) {
    char buf[32];
    for (std::size_t i = 0; i < s.names; ++i) {
      std::snprintf(buf, sizeof buf, "%04zu", i);
      out.push_back(s.name_prefix + buf);
    }
  } else {
    out.push_back(s.address);
  }
  return out;
}

void pack_args(msgpack::sbuffer& b, const settings& s, std::uint64_t i) {
  b.clear();
  msgpack::packer<msgpack::sbuffer> pk(b);
  if (s.args == "int") {
    pk.pack_array(1);
    pk.pack(static_cast<long long>(i % 100000));
  } else {
    pk.pack_array(0);
  }
}

struct result {
  std::size_t errors = 0;
  double seconds = 0;
  std::vector<double> lat_us;  // measured requests only
  bool failed = false;
  std::string why;
};

// ---- raw DEALER --------------------------------------------------------------
//
// The simplest fast client: requests are encoded with bench_common.hpp's
// minimal writer into ZeroMQ's inline small messages, and with one
// connection it blocks in recv (RCVTIMEO bounds the wait) and then drains
// what has arrived, so there is no poll() per batch. With --clients C it
// opens C DEALER sockets (C connections, C routing ids) in one thread, each
// with up to --window requests in flight, and polls them together.

struct connection {
  zmq::socket_t sock;
  std::size_t in_flight = 0;
};

struct raw_state {
  const settings& s;
  const std::vector<std::string>& addrs;
  std::vector<connection> conns;
  std::vector<clock_type::time_point> sent_at;  // by request id
  std::array<char, bench::header_size> hdr = bench::header(bench::cmd_request);
  bench::mp_writer meta, args;
  zmq::message_t f[4];
  result& r;

  void send(connection& c, std::uint64_t id) {
    const auto& addr = addrs[(id - 1) % addrs.size()];
    meta.n = 0;
    meta.array(5);
    meta.uint(id);
    meta.str(addr);
    meta.str(s.method);
    meta.uint(0);
    meta.uint(s.timeout_ms);
    args.n = 0;
    if (s.args == "int") {
      args.array(1);
      args.integer(static_cast<std::int64_t>(id % 100000));
    } else {
      args.array(0);
    }
    sent_at[id] = clock_type::now();
    c.sock.send(zmq::buffer(hdr), zmq::send_flags::sndmore);
    c.sock.send(zmq::buffer(meta.buf, meta.n), zmq::send_flags::sndmore);
    c.sock.send(zmq::buffer(args.buf, args.n), zmq::send_flags::none);
    ++c.in_flight;
  }

  // Reads one message from `c`. Returns false when none came (nothing
  // waiting, or RCVTIMEO passed); otherwise `id` is the reply's id (0 for a
  // message that is not a well-formed REPLY) and `ok` whether it said "ok".
  bool receive(connection& c, zmq::recv_flags flags, std::uint64_t& id, bool& ok) {
    id = 0;
    if (!c.sock.recv(f[0], flags)) return false;
    std::size_t n = 1;
    while (f[n - 1].more() && n < 4) {
      (void)c.sock.recv(f[n], zmq::recv_flags::none);
      ++n;
    }
    if (n != 3 || bench::parse_header(f[0].data(), f[0].size()) != bench::cmd_reply) return true;
    bench::mp_reader m(f[1].data(), f[1].size());
    if (m.array() != 2) return true;
    const auto i = m.integer();
    const auto status = m.str();
    if (!m.done() || i <= 0) return true;
    ok = status == "ok";
    id = static_cast<std::uint64_t>(i);
    return true;
  }

  // Runs requests [first, first+count): ids are 1-based global indices.
  bool phase(std::uint64_t first, std::size_t count, bool measure, clock_type::time_point hard_deadline) {
    std::uint64_t next = first;
    const std::uint64_t end = first + count;
    std::size_t done = 0;
    std::vector<zmq::pollitem_t> items;
    for (auto& c : conns) items.push_back({c.sock.handle(), 0, ZMQ_POLLIN, 0});
    auto on_reply = [&](connection& c, std::uint64_t id, bool ok) {
      if (id < first || id >= end) return;  // stale, or not a well-formed REPLY
      --c.in_flight;
      ++done;
      if (!ok) ++r.errors;
      if (measure)
        r.lat_us.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - sent_at[id]).count());
    };
    while (done < count) {
      for (auto& c : conns)
        while (next < end && c.in_flight < s.window) send(c, next++);
      if (clock_type::now() > hard_deadline) {
        r.failed = true;
        r.why = "--max-seconds exceeded";
        return false;
      }
      bool ok = false;
      std::uint64_t id = 0;
      if (conns.size() == 1) {
        auto& c = conns[0];
        if (!receive(c, zmq::recv_flags::none, id, ok)) {  // blocks up to RCVTIMEO
          r.failed = true;
          r.why = "no reply for 10 s";
          return false;
        }
        on_reply(c, id, ok);
        for (int m = 0; m < 1024 && done < count && receive(c, zmq::recv_flags::dontwait, id, ok); ++m)
          on_reply(c, id, ok);
        continue;
      }
      if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(10000)) == 0) {
        r.failed = true;
        r.why = "no reply for 10 s";
        return false;
      }
      for (std::size_t i = 0; i < conns.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        for (int m = 0; m < 1024 && receive(conns[i], zmq::recv_flags::dontwait, id, ok); ++m)
          on_reply(conns[i], id, ok);
      }
    }
    return true;
  }
};

result run_raw(const settings& s, const std::vector<std::string>& addrs) {
  result r;
  zmq::context_t ctx{1};
  raw_state st{s, addrs, {}, {}, bench::header(bench::cmd_request), {}, {}, {}, r};
  for (std::size_t i = 0; i < s.clients; ++i) {
    zmq::socket_t sock{ctx, zmq::socket_type::dealer};
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::sndhwm, 0);
    sock.set(zmq::sockopt::rcvhwm, 0);
    sock.set(zmq::sockopt::rcvtimeo, 10000);
    bench::curve_client_from_env(sock);
    sock.connect(s.endpoint);
    st.conns.push_back({std::move(sock), 0});
  }
  st.sent_at.resize(s.warmup + s.requests + 1);
  r.lat_us.reserve(s.requests);
  const auto hard = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                            std::chrono::duration<double>(s.max_seconds));
  if (s.warmup && !st.phase(1, s.warmup, false, hard)) return r;
  r.errors = 0;
  const auto t0 = clock_type::now();
  if (!st.phase(1 + s.warmup, s.requests, true, hard)) return r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return r;
}

// ---- troupe::client ----------------------------------------------------------

result run_troupe_client(const settings& s, const std::vector<std::string>& addrs) {
  result r;
  troupe::client c(s.endpoint);
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0, errors = 0;
  std::vector<double> lat;
  lat.reserve(s.requests);
  msgpack::sbuffer args(32);
  const auto hard = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                            std::chrono::duration<double>(s.max_seconds));
  auto phase = [&](std::uint64_t first, std::size_t count, bool measure) -> bool {
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t id = first + i;
      {
        std::unique_lock lock(mu);
        if (!cv.wait_until(lock, std::min(hard, clock_type::now() + std::chrono::seconds(10)),
                           [&] { return in_flight < s.window; }))
          return false;
        ++in_flight;
      }
      pack_args(args, s, id);
      const auto t = clock_type::now();
      c.ask_raw(addrs[(id - 1) % addrs.size()], s.method, std::string(args.data(), args.size()),
                std::chrono::milliseconds(s.timeout_ms), [&, t, measure](troupe::raw_reply&& rep) {
                  const auto now = clock_type::now();
                  std::lock_guard lock(mu);
                  if (rep.code != troupe::protocol::status::ok) ++errors;
                  if (measure) lat.push_back(std::chrono::duration<double, std::micro>(now - t).count());
                  --in_flight;
                  cv.notify_one();
                });
    }
    std::unique_lock lock(mu);
    return cv.wait_until(lock, std::min(hard, clock_type::now() + std::chrono::seconds(10)),
                         [&] { return in_flight == 0; });
  };
  if (s.warmup && !phase(1, s.warmup, false)) {
    r.failed = true;
    r.why = "timeout in warm-up";
    return r;
  }
  {
    std::lock_guard lock(mu);
    errors = 0;
  }
  const auto t0 = clock_type::now();
  if (!phase(1 + s.warmup, s.requests, true)) {
    r.failed = true;
    r.why = "timeout";
    return r;
  }
  r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::lock_guard lock(mu);
  r.errors = errors;
  r.lat_us = std::move(lat);
  return r;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  const auto s = parse(argc, argv);
  const auto addrs = make_addresses(s);
  result r = s.via == "raw" ? run_raw(s, addrs) : run_troupe_client(s, addrs);
  if (r.failed) {
    std::printf("{\"failed\": true, \"why\": \"%s\"}\n", r.why.c_str());
    return 1;
  }
  const double p50 = percentile(r.lat_us, 0.50), p99 = percentile(r.lat_us, 0.99),
               p999 = percentile(r.lat_us, 0.999);
  const double mx = r.lat_us.empty() ? 0 : *std::max_element(r.lat_us.begin(), r.lat_us.end());
  std::printf(
      "{\"requests\": %zu, \"errors\": %zu, \"seconds\": %.6f, \"window\": %zu, \"throughput\": %.1f, "
      "\"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, \"via\": \"%s\", "
      "\"clients\": %zu}\n",
      s.requests, r.errors, r.seconds, s.window, static_cast<double>(s.requests) / r.seconds, p50, p99, p999,
      mx, s.via.c_str(), s.clients);
  return r.errors ? 1 : 0;
}
