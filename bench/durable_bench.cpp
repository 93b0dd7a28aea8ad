// Durable messages measured (issue 11, docs/durability.md "Performance"):
//
//   fsync    one 32-byte append + fdatasync, again and again, in --dir: the
//            disk's floor for anything that confirms only what is on it
//   d1       one durable tell in flight: send -> the broker's confirmation
//   d2       --window durable tells in flight, consumed by a worker and
//            acknowledged as they go: messages per second until the last is
//            confirmed and consumed
//
// It prints one JSON object per mode; bench/durable.py starts the broker
// and the worker and adds the broker's CPU per message. It asserts nothing.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "troupe/client.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct settings {
  std::string mode, endpoint = "tcp://127.0.0.1:5555", dir = "/tmp", address = "squares", method = "square";
  long count = 2000;
  long window = 1000;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void print_latencies(const char* mode, const std::vector<double>& us, double seconds) {
  std::printf(
      "{\"mode\": \"%s\", \"count\": %zu, \"seconds\": %.3f, \"rate\": %.0f, \"p50_us\": %.1f, "
      "\"p99_us\": %.1f, \"max_us\": %.1f}\n",
      mode, us.size(), seconds, static_cast<double>(us.size()) / seconds, percentile(us, 0.5),
      percentile(us, 0.99), percentile(us, 1.0));
}

int fsync_rate(const settings& s) {
  const auto path = s.dir + "/troupe-fsync-bench.dat";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    return 1;
  }
  char line[32];
  std::memset(line, 'x', sizeof line);
  std::vector<double> us;
  const auto start = clock_type::now();
  for (long i = 0; i < s.count; ++i) {
    const auto t0 = clock_type::now();
    if (write(fd, line, sizeof line) != sizeof line || fdatasync(fd) != 0) {
      std::perror("write/fdatasync");
      return 1;
    }
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  close(fd);
  unlink(path.c_str());
  print_latencies("fsync", us, seconds);
  return 0;
}

// Sends `count` durable tells with at most `window` unconfirmed; returns
// each one's time to confirmation.
std::vector<double> tells(troupe::client& c, const settings& s, long count, long window, long& errors) {
  std::mutex mu;
  std::condition_variable cv;
  long in_flight = 0, done = 0;
  std::vector<double> us(static_cast<std::size_t>(count));
  const auto args = troupe::client::pack_args(7);
  for (long i = 0; i < count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    const auto t0 = clock_type::now();
    c.tell_durable_raw(s.address, s.method, args, troupe::tell_options{std::chrono::seconds(60)},
                       [&, i, t0](troupe::raw_reply&& r) {
                         std::lock_guard lock(mu);
                         us[static_cast<std::size_t>(i)] =
                             std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
                         if (r.code != troupe::protocol::status::ok) ++errors;
                         --in_flight;
                         ++done;
                         cv.notify_one();
                       });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done == count; });
  return us;
}

// How many durable messages the broker has finished (stats.durable.finished).
std::uint64_t finished(troupe::client& c) {
  std::promise<troupe::raw_reply> done;
  auto f = done.get_future();
  c.ask_raw("$broker", "stats", "\x90", std::chrono::seconds(10),
            [&done](troupe::raw_reply&& r) { done.set_value(std::move(r)); });
  const auto r = f.get();
  if (r.code != troupe::protocol::status::ok) return 0;
  const auto oh = msgpack::unpack(r.value.data(), r.value.size());
  const auto stats = oh.get().as<std::map<std::string, msgpack::object>>();
  return stats.at("durable").as<std::map<std::string, msgpack::object>>().at("finished").as<std::uint64_t>();
}

int run(const settings& s) {
  troupe::client_options options;
  options.timeout = std::chrono::seconds(60);
  troupe::client c(s.endpoint, options);
  long errors = 0;
  tells(c, s, std::min<long>(s.count / 10 + 1, 500), s.mode == "d1" ? 1 : s.window, errors);  // warm-up
  const auto before = finished(c);
  const auto start = clock_type::now();
  const auto window = s.mode == "d1" ? 1 : s.window;
  const auto us = tells(c, s, s.count, window, errors);
  const double confirmed_s = std::chrono::duration<double>(clock_type::now() - start).count();
  // Consumed too: the worker ran every one and the broker deleted it.
  // Polled every 5 ms: each `stats` costs the broker a store query and a
  // map of counters, which a tighter loop adds to its CPU per message.
  while (finished(c) < before + static_cast<std::uint64_t>(s.count) &&
         clock_type::now() - start < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf(
      "{\"mode\": \"%s\", \"count\": %ld, \"window\": %ld, \"errors\": %ld, \"confirmed_s\": %.3f, "
      "\"seconds\": %.3f, \"rate\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
      s.mode.c_str(), s.count, window, errors, confirmed_s, seconds, static_cast<double>(s.count) / seconds,
      percentile(us, 0.5), percentile(us, 0.99), percentile(us, 1.0));
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--broker")
      s.endpoint = next();
    else if (a == "--dir")
      s.dir = next();
    else if (a == "--count")
      s.count = std::stol(next());
    else if (a == "--window")
      s.window = std::stol(next());
    else if (a == "--address")
      s.address = next();
    else if (a == "--method")
      s.method = next();
    else
      s.mode = a;
  }
  if (s.mode == "fsync") return fsync_rate(s);
  if (s.mode == "d1" || s.mode == "d2") return run(s);
  std::fprintf(stderr,
               "usage: troupe-durable-bench fsync|d1|d2 [--broker EP] [--dir D] [--count N] [--window W]\n");
  return 2;
}
