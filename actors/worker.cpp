// The worker runtime: one I/O thread that owns the broker socket, answers
// heartbeats and reconnects, and one executor thread that runs user code.
// They talk over an inproc PAIR socket, so a long method never delays a
// heartbeat and the broker never mistakes a busy worker for a dead one.
#include "troupe/worker.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <zmq.hpp>

#include "troupe/dispatch.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;
using protocol::command;

constexpr std::string_view stop_word = "STOP";  // I/O thread → executor: finish and destroy
constexpr std::string_view done_word = "DONE";  // executor → I/O thread: all destroyed

void log_line(const worker_options& opt, const std::string& text) {
  std::fprintf(stderr, "[%s %d] %s\n", opt.name.c_str(), static_cast<int>(getpid()), text.c_str());
}

bool is_word(const zmq::message_t& m, std::string_view word) {
  return m.size() == word.size() && std::memcmp(m.data(), word.data(), word.size()) == 0;
}

// Receives one multipart message into `frames` (up to its size); returns how
// many frames the message had in all, 0 when `first` is dontwait and nothing
// is waiting. Draining with dontwait rather than asking ZMQ_EVENTS before
// each message saves libzmq a poll() system call per message.
template <std::size_t N>
std::size_t recv_all(zmq::socket_t& s, std::array<zmq::message_t, N>& frames,
                     zmq::recv_flags first = zmq::recv_flags::none) {
  std::size_t n = 0;
  zmq::message_t extra;
  for (;;) {
    auto& target = n < N ? frames[n] : extra;
    if (!s.recv(target, n == 0 ? first : zmq::recv_flags::none)) return n;
    ++n;
    if (!target.more()) return n;
  }
}

// ---- executor thread ------------------------------------------------------

void executor_loop(zmq::context_t& ctx, const std::string& endpoint, const registry& types,
                   const worker_options& opt) {
  zmq::socket_t io(ctx, zmq::socket_type::pair);
  io.connect(endpoint);
  dispatcher handler(types, opt.limits);
  troupe::value_buffer value;
  std::string meta_buf;
  std::array<zmq::message_t, 4> frames;  // header, meta, args, arrival time
  for (;;) {
    const auto n = recv_all(io, frames);
    if (n == 1 && is_word(frames[0], stop_word)) break;
    if (n != 4) continue;  // the I/O thread only forwards well-shaped requests
    auto meta = protocol::decode_request_meta(frames[1].data(), frames[1].size());
    if (!meta) continue;
    clock::rep arrival = 0;
    std::memcpy(&arrival, frames[3].data(), sizeof arrival);
    const auto deadline =
        clock::time_point(clock::duration(arrival)) + std::chrono::milliseconds(meta->timeout_ms);

    protocol::status code;
    if (clock::now() > deadline) {
      // The broker has answered the caller already; skip the work, return the credit.
      value.clear();
      msgpack::packer<troupe::value_buffer>(value).pack(std::string_view("expired before it was handled"));
      code = protocol::status::deadline_exceeded;
    } else {
      code = handler.handle(meta->address, meta->method, frames[2].data(), frames[2].size(), value);
    }
    protocol::encode_reply_meta(meta_buf, meta->id, protocol::to_string(code));
    const auto hdr = protocol::header(command::reply);
    io.send(zmq::buffer(hdr), zmq::send_flags::sndmore);
    io.send(zmq::buffer(meta_buf), zmq::send_flags::sndmore);
    io.send(zmq::buffer(value.data(), value.size()), zmq::send_flags::none);
  }
  handler.destroy_all();
  io.send(zmq::buffer(done_word), zmq::send_flags::none);
}

// ---- I/O thread -----------------------------------------------------------

class io_loop {
 public:
  io_loop(const worker_options& opt, const registry& types) : opt_(opt), types_(types) {}

  int run() {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    // Blocked before the executor starts, so both threads inherit the mask
    // and the signals arrive only through the signalfd polled below.
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal_fd_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
      log_line(opt_, std::string("signalfd failed: ") + std::strerror(errno));
      return 1;
    }

    const std::string exec_endpoint = "inproc://troupe-executor";
    executor_.bind(exec_endpoint);
    std::thread exec([&] { executor_loop(ctx_, exec_endpoint, types_, opt_); });

    connect();
    log_line(opt_, "serving " + std::to_string(types_.types().size()) + " actor type(s) via " + opt_.broker);
    const int rc = loop();
    exec.join();
    broker_.set(zmq::sockopt::linger, 1000);  // let the last replies reach the broker
    broker_.close();
    close(signal_fd_);
    log_line(opt_, "stopped");
    return rc;
  }

 private:
  enum class phase { serving, awaiting_ack, draining, done };

  void connect() {
    broker_ = zmq::socket_t(ctx_, zmq::socket_type::dealer);
    broker_.set(zmq::sockopt::linger, 0);
    broker_.set(zmq::sockopt::reconnect_ivl, 100);
    broker_.set(zmq::sockopt::sndhwm, 0);
    broker_.set(zmq::sockopt::rcvhwm, 0);
    // Frames far over the limit are refused by ZeroMQ before they are read.
    broker_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(opt_.limits.max_message_bytes * 4 + 4096));
    broker_.connect(opt_.broker);
    last_heard_ = clock::now();
    send_ready();
  }

  void send_ready() {
    protocol::ready_info info;
    info.name = opt_.name;
    info.pid = static_cast<std::uint64_t>(getpid());
    info.credits = opt_.credits;
    info.actors = types_.names();
    std::string body;
    protocol::encode_ready(body, info);
    send_command(command::ready, body);
  }

  void send_command(command c, std::string_view body = {}) {
    const auto hdr = protocol::header(c);
    broker_.send(zmq::buffer(hdr), body.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
    if (!body.empty()) broker_.send(zmq::buffer(body), zmq::send_flags::none);
  }

  // Handles one waiting message; false when none was waiting.
  bool on_broker_message() {
    const auto n = recv_all(broker_, frames_, zmq::recv_flags::dontwait);
    if (n == 0) return false;
    last_heard_ = clock::now();
    const auto cmd = n >= 1 ? protocol::parse_header(frames_[0].data(), frames_[0].size()) : std::nullopt;
    if (!cmd) return true;  // not ours: drop
    switch (*cmd) {
      case command::request: {
        if (n != 3) return true;
        // Stamp the arrival time so the executor can skip work whose
        // deadline passed while it waited behind earlier requests.
        const auto arrival = clock::now().time_since_epoch().count();
        executor_.send(frames_[0], zmq::send_flags::sndmore);
        executor_.send(frames_[1], zmq::send_flags::sndmore);
        executor_.send(frames_[2], zmq::send_flags::sndmore);
        executor_.send(zmq::buffer(&arrival, sizeof arrival), zmq::send_flags::none);
        return true;
      }
      case command::disconnect:
        if (phase_ == phase::awaiting_ack) {
          start_draining();
        } else if (phase_ == phase::serving) {
          log_line(opt_, "broker asked us to register again");
          send_ready();
        }
        return true;
      default:
        return true;  // heartbeats only refresh last_heard_
    }
  }

  void start_draining() {
    phase_ = phase::draining;
    executor_.send(zmq::buffer(stop_word), zmq::send_flags::none);
  }

  // Forwards one waiting reply; false when none was waiting.
  bool on_executor_message() {
    std::array<zmq::message_t, 3> frames;
    const auto n = recv_all(executor_, frames, zmq::recv_flags::dontwait);
    if (n == 0) return false;
    if (n == 1 && is_word(frames[0], done_word)) {
      phase_ = phase::done;
      return false;
    }
    broker_.send(frames[0], zmq::send_flags::sndmore);
    broker_.send(frames[1], zmq::send_flags::sndmore);
    broker_.send(frames[2], zmq::send_flags::none);
    return true;
  }

  void on_signal() {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof info) == sizeof info) {
      if (phase_ == phase::serving) {
        log_line(opt_, std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) +
                           ": finishing held requests");
        phase_ = phase::awaiting_ack;
        ack_deadline_ =
            clock::now() + std::min<clock::duration>(std::chrono::seconds(2), opt_.heartbeat * opt_.liveness);
        send_command(command::disconnect);
      }
    }
  }

  int loop() {
    auto next_heartbeat = clock::now() + opt_.heartbeat;
    const auto silence_limit = opt_.heartbeat * opt_.liveness;
    while (phase_ != phase::done) {
      zmq::pollitem_t items[] = {
          {broker_.handle(), 0, ZMQ_POLLIN, 0},
          {executor_.handle(), 0, ZMQ_POLLIN, 0},
          {nullptr, signal_fd_, ZMQ_POLLIN, 0},
      };
      const auto now = clock::now();
      auto wake = next_heartbeat;
      if (phase_ == phase::awaiting_ack) wake = std::min(wake, ack_deadline_);
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now);
      zmq::poll(items, 3, std::max(wait, std::chrono::milliseconds(0)));

      if (items[2].revents & ZMQ_POLLIN) on_signal();
      // Drain each socket rather than taking one message per poll.
      for (int i = 0; i < 1024 && on_broker_message(); ++i) {
      }
      for (int i = 0; i < 1024 && on_executor_message(); ++i) {
      }

      const auto after = clock::now();
      if (phase_ == phase::awaiting_ack && after >= ack_deadline_) start_draining();
      if (after >= next_heartbeat) {
        send_command(command::heartbeat);
        next_heartbeat = after + opt_.heartbeat;
        if (phase_ == phase::serving && after - last_heard_ > silence_limit) {
          log_line(opt_, "no word from the broker; reconnecting");
          connect();
        }
      }
    }
    return 0;
  }

  const worker_options& opt_;
  const registry& types_;
  zmq::context_t ctx_{1};
  zmq::socket_t broker_;
  zmq::socket_t executor_{ctx_, zmq::socket_type::pair};
  int signal_fd_ = -1;
  phase phase_ = phase::serving;
  clock::time_point last_heard_;
  clock::time_point ack_deadline_;
  std::array<zmq::message_t, 3> frames_;
};

std::string base_name(const char* path) {
  std::string s = path ? path : "worker";
  const auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

std::string default_broker_endpoint() {
  const char* env = std::getenv("TROUPE_BROKER");
  return env && *env ? env : "tcp://127.0.0.1:5555";
}

int run_worker(const worker_options& options, const registry& types) {
  io_loop loop(options, types);
  return loop.run();
}

int worker_main(int argc, char** argv, const registry& types) {
  worker_options opt;
  opt.broker = default_broker_endpoint();
  opt.name = base_name(argc > 0 ? argv[0] : nullptr);
  bool list = false;
  int heartbeat_ms = static_cast<int>(opt.heartbeat.count());
  int stop_timeout_ms = static_cast<int>(opt.stop_timeout.count());

  CLI::App app{"troupe worker: hosts the actors linked into this executable"};
  app.add_option("--broker", opt.broker, "broker endpoint (default: $TROUPE_BROKER or tcp://127.0.0.1:5555)");
  app.add_option("--name", opt.name, "name in logs and broker stats")->capture_default_str();
  app.add_option("--processes", opt.processes,
                 "fork N worker processes under a supervisor that restarts them")
      ->check(CLI::Range(1, 1024));
  app.add_option("--credits", opt.credits, "requests a worker process may hold at once")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--liveness", opt.liveness, "heartbeats missed before the broker is presumed gone")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--max-message-bytes", opt.limits.max_message_bytes, "largest args frame accepted")
      ->capture_default_str();
  app.add_option("--stop-timeout-ms", stop_timeout_ms, "supervisor: SIGKILL workers that take longer to stop")
      ->capture_default_str();
  app.add_flag("--list", list, "print the actors and methods this executable hosts, then exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  opt.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  opt.stop_timeout = std::chrono::milliseconds(stop_timeout_ms);

  if (!types.errors().empty()) {
    for (const auto& e : types.errors()) std::fprintf(stderr, "troupe: error: %s\n", e.c_str());
    return 2;
  }
  if (types.types().empty()) {
    std::fprintf(stderr,
                 "troupe: error: no actors are registered in this executable; compile the actor "
                 "sources into it (troupe_add_worker) rather than through a static library\n");
    return 2;
  }
  if (list) {
    for (const auto& t : types.types()) {
      std::printf("%s:", t.name.c_str());
      for (const auto& m : t.methods) std::printf(" %s", m.name.c_str());
      std::printf("\n");
    }
    return 0;
  }
  return opt.processes >= 1 ? run_supervisor(opt, types) : run_worker(opt, types);
}

}  // namespace troupe
