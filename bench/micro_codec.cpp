// Micro-benchmarks of troupe's wire codec (troupe/protocol.hpp): what the
// client, the broker and the worker do per message to read and write meta.
#include <benchmark/benchmark.h>

#include <string>

#include "troupe/protocol.hpp"

namespace {

using namespace troupe::protocol;

void BM_encode_request_meta(benchmark::State& st) {
  std::string out;
  std::uint64_t id = 1;
  for (auto _ : st) {
    encode_request_meta(out, {id++, "squares", "square", 0, 60000});
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_encode_request_meta);

void BM_decode_request_meta(benchmark::State& st) {
  std::string in;
  encode_request_meta(in, {123456789, "counter/alice", "add", 0, 60000});
  for (auto _ : st) {
    auto m = decode_request_meta(in.data(), in.size());
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_decode_request_meta);

void BM_encode_reply_meta(benchmark::State& st) {
  std::string out;
  std::uint64_t id = 1;
  for (auto _ : st) {
    encode_reply_meta(out, id++, "ok");
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_encode_reply_meta);

void BM_decode_reply_meta(benchmark::State& st) {
  std::string in;
  encode_reply_meta(in, 0x1234567890ull, "ok");
  for (auto _ : st) {
    auto m = decode_reply_meta(in.data(), in.size());
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_decode_reply_meta);

void BM_split_address(benchmark::State& st) {
  const std::string a = "counter/alice";
  for (auto _ : st) {
    auto p = split_address(a);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_split_address);

void BM_parse_header(benchmark::State& st) {
  const auto h = header(command::request);
  for (auto _ : st) {
    auto c = parse_header(h.data(), h.size());
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_parse_header);

}  // namespace

BENCHMARK_MAIN();
