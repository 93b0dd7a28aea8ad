// Micro-benchmarks of the worker's dispatch (troupe::dispatcher::handle):
// find or build the instance, find the method, decode args, call, encode
// the result. No sockets.
#include <benchmark/benchmark.h>

#include <msgpack.hpp>

#include <string>
#include <vector>

#include "bench_common.hpp"
#include "troupe/actor.hpp"
#include "troupe/dispatch.hpp"
#include "troupe/registry.hpp"

namespace {

class squares {
 public:
  long long square(long long x) const { return x * x; }
};

class counter {
 public:
  long long add(long long n) { return total_ += n; }
  long long get() const { return total_; }

 private:
  long long total_ = 0;
};

const troupe::registry& types() {
  static troupe::registry r = [] {
    troupe::registry reg;
    reg.add(troupe::describe_actor<squares>("squares", {troupe::method("square", &squares::square)}));
    reg.add(troupe::describe_actor<counter>(
        "counter", {troupe::method("add", &counter::add), troupe::method("get", &counter::get)}));
    return reg;
  }();
  return r;
}

std::string args_int(long long x) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(1);
  pk.pack(x);
  return {b.data(), b.size()};
}

void BM_dispatch_square(benchmark::State& st) {
  troupe::dispatcher d(types());
  const auto args = args_int(12345);
  troupe::value_buffer out;
  for (auto _ : st) {
    auto s = d.handle("squares", "square", args.data(), args.size(), out);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_dispatch_square);

// Keyed: one instance per key; range(0) keys already live, cycled through.
void BM_dispatch_keyed_add(benchmark::State& st) {
  troupe::dispatcher d(types());
  const auto args = args_int(1);
  const auto n = static_cast<std::size_t>(st.range(0));
  std::vector<std::string> addrs;
  addrs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) addrs.push_back("counter/k" + std::to_string(i));
  troupe::value_buffer out;
  for (const auto& a : addrs) d.handle(a, "add", args.data(), args.size(), out);
  std::size_t i = 0;
  for (auto _ : st) {
    auto s = d.handle(addrs[i], "add", args.data(), args.size(), out);
    benchmark::DoNotOptimize(s);
    if (++i == n) i = 0;
  }
}
BENCHMARK(BM_dispatch_keyed_add)->Arg(1)->Arg(1000)->Arg(100000);

// An error path: unknown method (builds an error message string).
void BM_dispatch_unknown_method(benchmark::State& st) {
  troupe::dispatcher d(types());
  const auto args = args_int(1);
  troupe::value_buffer out;
  for (auto _ : st) {
    auto s = d.handle("squares", "nope", args.data(), args.size(), out);
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_dispatch_unknown_method);

// Baseline: what the floor worker does for the same request's args
// (bench_common.hpp's minimal reader and writer, multiply).
void BM_floor_decode_call_encode(benchmark::State& st) {
  const auto args = args_int(12345);
  bench::mp_writer out;
  for (auto _ : st) {
    bench::mp_reader r(args.data(), args.size());
    const auto n = r.array();
    const auto x = r.integer();
    out.n = 0;
    out.integer(x * x);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(out.buf);
  }
}
BENCHMARK(BM_floor_decode_call_encode);

// The previous floor worker's way: msgpack-c's unpacker with a reused zone.
void BM_floor_msgpack_c_decode_call_encode(benchmark::State& st) {
  const auto args = args_int(12345);
  msgpack::zone zone;
  msgpack::sbuffer out;
  for (auto _ : st) {
    zone.clear();
    std::size_t off = 0;
    const auto o = msgpack::unpack(zone, args.data(), args.size(), off);
    const auto x = o.via.array.ptr[0].as<long long>();
    out.clear();
    msgpack::packer<msgpack::sbuffer>(out).pack(x * x);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_floor_msgpack_c_decode_call_encode);

}  // namespace

BENCHMARK_MAIN();
