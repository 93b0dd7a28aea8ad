// CAF peer (issue 4): the same payload, square(x) on int64, over CAF 0.17
// remote actors (caf_io, TCP loopback).
//
//   caf-peer --mode=server [--port=0]          publishes the actor; prints "caf listening on PORT"
//   caf-peer --mode=client --port=P [--b1=20000] [--b2=200000] [--window=1000] [--warmup=1000]
//                                             prints one JSON line
//
// B1: request(...).receive(...) from a scoped_actor, one at a time.
// B2: plain asynchronous sends with at most `window` in flight; the server's
// returned value comes back to the sender as an ordinary message.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "caf/all.hpp"
#include "caf/io/all.hpp"

using namespace caf;

namespace {

std::atomic<bool> stop{false};
void on_signal(int) { stop = true; }

behavior square_server(event_based_actor*) {
  return {[](int64_t x) -> int64_t { return x * x; }};
}

class config : public actor_system_config {
 public:
  std::string mode = "server";
  uint16_t port = 0;
  size_t b1 = 20000, b2 = 200000, window = 1000, warmup = 1000;
  config() {
    opt_group{custom_options_, "global"}
        .add(mode, "mode", "server or client")
        .add(port, "port", "port")
        .add(b1, "b1", "B1 requests")
        .add(b2, "b2", "B2 requests")
        .add(window, "window", "B2 window")
        .add(warmup, "warmup", "warm-up requests");
  }
};

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void caf_main(actor_system& sys, const config& cfg) {
  using clk = std::chrono::steady_clock;
  if (cfg.mode == "server") {
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    auto a = sys.spawn(square_server);
    auto port = sys.middleman().publish(a, cfg.port, "127.0.0.1");
    if (!port) {
      std::fprintf(stderr, "publish failed: %s\n", sys.render(port.error()).c_str());
      return;
    }
    std::printf("caf listening on %u\n", static_cast<unsigned>(*port));
    std::fflush(stdout);
    for (int i = 0; i < 36000 && !stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    anon_send_exit(a, exit_reason::user_shutdown);
    return;
  }
  auto r = sys.middleman().remote_actor("127.0.0.1", cfg.port);
  if (!r) {
    std::fprintf(stderr, "remote_actor failed: %s\n", sys.render(r.error()).c_str());
    std::printf("{\"failed\": true}\n");
    return;
  }
  auto server = *r;
  scoped_actor self{sys};
  size_t errors = 0;
  // B1
  std::vector<double> lat;
  lat.reserve(cfg.b1);
  for (size_t i = 0; i < cfg.warmup + cfg.b1; ++i) {
    const auto t = clk::now();
    self->request(server, std::chrono::seconds(10), static_cast<int64_t>(i))
        .receive(
            [&](int64_t) {
              if (i >= cfg.warmup)
                lat.push_back(std::chrono::duration<double, std::micro>(clk::now() - t).count());
            },
            [&](error&) { ++errors; });
  }
  // B2
  size_t sent = 0, done = 0;
  const size_t total = cfg.b2;
  const auto t0 = clk::now();
  while (sent < total && sent < cfg.window) self->send(server, static_cast<int64_t>(sent++));
  bool timed_out = false;
  while (done < total && !timed_out) {
    self->receive(
        [&](int64_t) {
          ++done;
          if (sent < total) self->send(server, static_cast<int64_t>(sent++));
        },
        after(std::chrono::seconds(10)) >> [&] { timed_out = true; });
  }
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  std::printf(
      "{\"b1_requests\": %zu, \"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"b2_requests\": %zu, "
      "\"window\": %zu, \"throughput\": %.1f, \"errors\": %zu, \"failed\": %s}\n",
      cfg.b1, pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999), total, cfg.window, done / secs, errors,
      timed_out ? "true" : "false");
  std::fflush(stdout);
}

}  // namespace

CAF_MAIN(io::middleman)
