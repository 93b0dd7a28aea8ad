// The durable workload of bench/durable.py on RabbitMQ (issue 11):
// persistent 32-byte messages to a durable queue with publisher confirms
// (the broker confirms once the message is on disk), consumed with manual
// acks as they come.
//   durable_rabbitmq d1 PORT COUNT 1        one message unconfirmed at a time
//   durable_rabbitmq d2 PORT COUNT WINDOW   WINDOW unconfirmed: messages/s until all are consumed
// Prints one JSON object. Built by bench/durable.py with -lrabbitmq.
#include <amqp.h>
#include <amqp_tcp_socket.h>

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
const char* queue = "troupe-bench";

amqp_connection_state_t open_channel(int port) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(c);
  if (!s || amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK) {
    std::fprintf(stderr, "cannot connect to rabbitmq on %d\n", port);
    std::exit(1);
  }
  if (amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
      AMQP_RESPONSE_NORMAL)
    std::exit(1);
  amqp_channel_open(c, 1);
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
  return c;
}

void consume(int port, long total, std::atomic<long>& consumed) {
  auto c = open_channel(port);
  amqp_basic_qos(c, 1, 0, 1000, 0);
  amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  timeval tv{0, 200000};
  while (consumed < total) {
    amqp_envelope_t e;
    amqp_maybe_release_buffers(c);
    const auto r = amqp_consume_message(c, &e, &tv, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) continue;
    amqp_basic_ack(c, 1, e.delivery_tag, 0);
    amqp_destroy_envelope(&e);
    ++consumed;
  }
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const std::string mode = argv[1];
  const int port = std::atoi(argv[2]);
  const long count = std::atol(argv[3]);
  const long window = mode == "d1" ? 1 : std::atol(argv[4]);
  auto p = open_channel(port);
  amqp_queue_purge(p, 1, amqp_cstring_bytes(queue));
  amqp_confirm_select(p, 1);
  std::atomic<long> consumed{0};
  std::thread consumer(consume, port, count, std::ref(consumed));
  const std::string body(32, 'x');
  amqp_basic_properties_t props;
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;  // persistent
  std::vector<double> us;
  std::vector<clock_type::time_point> sent_at;
  sent_at.reserve(static_cast<std::size_t>(count));
  const auto start = clock_type::now();
  long sent = 0, confirmed = 0;
  while (confirmed < count) {
    while (sent < count && sent - confirmed < window) {
      amqp_basic_publish(p, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                         amqp_bytes_t{body.size(), const_cast<char*>(body.data())});
      sent_at.push_back(clock_type::now());
      ++sent;
    }
    amqp_frame_t f;
    if (amqp_simple_wait_frame(p, &f) != AMQP_STATUS_OK) return 1;
    if (f.frame_type != AMQP_FRAME_METHOD || f.payload.method.id != AMQP_BASIC_ACK_METHOD) continue;
    const auto* ack = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    const long upto = ack->multiple ? static_cast<long>(ack->delivery_tag) : confirmed + 1;
    const auto now = clock_type::now();
    for (; confirmed < upto; ++confirmed)
      us.push_back(
          std::chrono::duration<double, std::micro>(now - sent_at[static_cast<std::size_t>(confirmed)])
              .count());
  }
  consumer.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  std::sort(us.begin(), us.end());
  std::printf(
      "{\"mode\": \"%s\", \"count\": %ld, \"window\": %ld, \"seconds\": %.3f, \"rate\": %.0f, "
      "\"p50_us\": %.1f, \"p99_us\": %.1f}\n",
      mode.c_str(), count, window, seconds, static_cast<double>(count) / seconds, us[us.size() / 2],
      us[us.size() * 99 / 100]);
  amqp_connection_close(p, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(p);
  return 0;
}
