// What CURVE costs ZeroMQ per frame, with nothing of troupe: a DEALER sends
// messages of N frames over tcp loopback to a ROUTER in another thread,
// which echoes them; W messages are in flight. CURVE encrypts every frame
// as its own box (a MESSAGE command with a nonce and a 16-byte MAC), so a
// message of 3 small frames costs about 3 times what one frame of the same
// bytes does. bench/curve_bench.py runs it for 1, 3 and 4 frames, plaintext
// and CURVE, and divides.
//
//   troupe-bench-curve-frames --frames N [--bytes B] [--messages M] [--window W] [--curve]
//
// B is the bytes of the whole message, split over its frames. Prints one
// JSON object: frames, bytes, curve, messages, seconds, msgs_per_s,
// cpu_us_per_msg (this process's CPU: both ends, both directions).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t frames = 1, bytes = 30, messages = 200000, window = 100;
  bool curve = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : 0ULL; };
    if (a == "--frames")
      frames = next();
    else if (a == "--bytes")
      bytes = next();
    else if (a == "--messages")
      messages = next();
    else if (a == "--window")
      window = next();
    else if (a == "--curve")
      curve = true;
    else {
      std::fprintf(stderr, "usage: %s --frames N [--bytes B] [--messages M] [--window W] [--curve]\n",
                   argv[0]);
      return 2;
    }
  }
  if (frames < 1 || window < 1 || messages < window) return 2;

  zmq::context_t ctx{1};
  zmq::socket_t server{ctx, zmq::socket_type::router};
  zmq::socket_t client{ctx, zmq::socket_type::dealer};
  for (auto* s : {&server, &client}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 0);
    s->set(zmq::sockopt::rcvhwm, 0);
  }
  if (curve) {
    char spub[41], ssec[41], cpub[41], csec[41];
    if (zmq_curve_keypair(spub, ssec) != 0 || zmq_curve_keypair(cpub, csec) != 0) {
      std::fprintf(stderr, "this ZeroMQ has no CURVE\n");
      return 1;
    }
    server.set(zmq::sockopt::curve_server, true);
    server.set(zmq::sockopt::curve_secretkey, std::string(ssec, 40));
    client.set(zmq::sockopt::curve_serverkey, std::string(spub, 40));
    client.set(zmq::sockopt::curve_publickey, std::string(cpub, 40));
    client.set(zmq::sockopt::curve_secretkey, std::string(csec, 40));
  }
  server.bind("tcp://127.0.0.1:*");
  client.connect(server.get(zmq::sockopt::last_endpoint));

  // The echo: [routing id][frames...] back as they came.
  std::thread echo([&] {
    zmq::message_t m;
    for (std::size_t done = 0; done < messages;) {
      bool more = true;
      while (more) {
        (void)server.recv(m, zmq::recv_flags::none);
        more = m.more();
        server.send(m, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
      ++done;
    }
  });

  const std::string part(std::max<std::size_t>(bytes / frames, 1), 'x');
  auto send_one = [&] {
    for (std::size_t f = 0; f < frames; ++f)
      client.send(zmq::buffer(part), f + 1 < frames ? zmq::send_flags::sndmore : zmq::send_flags::none);
  };
  auto receive_one = [&] {
    zmq::message_t m;
    do {
      (void)client.recv(m, zmq::recv_flags::none);
    } while (m.more());
  };

  // The first message waits for the handshake; the clock starts after it.
  send_one();
  receive_one();
  const auto cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  const std::size_t measured = messages - 1;
  std::size_t sent = 0, received = 0;
  for (; sent < std::min(window, measured); ++sent) send_one();
  while (received < measured) {
    receive_one();
    ++received;
    if (sent < measured) {
      send_one();
      ++sent;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  echo.join();
  std::printf(
      "{\"frames\": %zu, \"bytes\": %zu, \"curve\": %s, \"messages\": %zu, \"seconds\": %.4f, "
      "\"msgs_per_s\": %.0f, "
      "\"cpu_us_per_msg\": %.3f}\n",
      frames, part.size() * frames, curve ? "true" : "false", measured, seconds,
      static_cast<double>(measured) / seconds, cpu * 1e6 / static_cast<double>(measured));
  return 0;
}
