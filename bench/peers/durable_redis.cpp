// The durable workload of bench/durable.py on Redis Streams with
// appendfsync always (issue 11): a producer XADDs 32-byte messages (Redis
// answers XADD after fsync), a consumer reads them with XREADGROUP and
// XACKs them as they come.
//   durable_redis d1 PORT COUNT 1        one XADD in flight: latency to its reply
//   durable_redis d2 PORT COUNT WINDOW   WINDOW XADDs in flight: messages/s until all are consumed
// Prints one JSON object. Built by bench/durable.py with -lhiredis.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
const char* stream = "troupe-bench";

redisContext* connect(int port) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (!c || c->err) {
    std::fprintf(stderr, "cannot connect to redis on %d\n", port);
    std::exit(1);
  }
  return c;
}

void consume(int port, long total, std::atomic<long>& consumed) {
  redisContext* c = connect(port);
  while (consumed < total) {
    auto* r = static_cast<redisReply*>(
        redisCommand(c, "XREADGROUP GROUP g c1 COUNT 1000 BLOCK 100 STREAMS %s >", stream));
    if (!r) break;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
      const auto* entries = r->element[0]->element[1];
      std::vector<const char*> argv = {"XACK", stream, "g"};
      for (std::size_t i = 0; i < entries->elements; ++i)
        argv.push_back(entries->element[i]->element[0]->str);
      auto* ack =
          static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), nullptr));
      freeReplyObject(ack);
      consumed += static_cast<long>(entries->elements);
    }
    freeReplyObject(r);
  }
  redisFree(c);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const std::string mode = argv[1];
  const int port = std::atoi(argv[2]);
  const long count = std::atol(argv[3]);
  const long window = mode == "d1" ? 1 : std::atol(argv[4]);
  redisContext* p = connect(port);
  freeReplyObject(redisCommand(p, "DEL %s", stream));
  freeReplyObject(redisCommand(p, "XGROUP CREATE %s g $ MKSTREAM", stream));
  std::atomic<long> consumed{0};
  std::thread consumer(consume, port, count, std::ref(consumed));
  const std::string body(32, 'x');
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(count));
  std::vector<clock_type::time_point> sent_at;
  sent_at.reserve(static_cast<std::size_t>(count));
  const auto start = clock_type::now();
  long sent = 0, answered = 0;
  while (answered < count) {
    while (sent < count && sent - answered < window) {
      redisAppendCommand(p, "XADD %s * f %b", stream, body.data(), body.size());
      sent_at.push_back(clock_type::now());
      ++sent;
    }
    void* reply = nullptr;
    if (redisGetReply(p, &reply) != REDIS_OK) return 1;
    freeReplyObject(reply);
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() -
                                                           sent_at[static_cast<std::size_t>(answered)])
                     .count());
    ++answered;
  }
  consumer.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::sort(us.begin(), us.end());
  std::printf(
      "{\"mode\": \"%s\", \"count\": %ld, \"window\": %ld, \"seconds\": %.3f, \"rate\": %.0f, "
      "\"p50_us\": %.1f, \"p99_us\": %.1f}\n",
      mode.c_str(), count, window, seconds, static_cast<double>(count) / seconds, us[us.size() / 2],
      us[us.size() * 99 / 100]);
  redisFree(p);
  return 0;
}
