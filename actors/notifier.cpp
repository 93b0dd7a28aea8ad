#include "notifier.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>
#include <zmq.hpp>

#include "troupe/curve.hpp"
#include "troupe/wire.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

// A record in the pipe: u32 id size, id, u64 stuck, u32 why size, why.
// At most 4 + 255 + 8 + 4 + 256 bytes: below PIPE_BUF, so one write() is atomic.
constexpr std::size_t max_why = 256;

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <class T>
bool get(std::string_view& in, T& v) {
  if (in.size() < sizeof v) return false;
  std::memcpy(&v, in.data(), sizeof v);
  in.remove_prefix(sizeof v);
  return true;
}

// Parses the complete records at the front of `buf`, sends one DISCONNECT
// each, and keeps the incomplete rest.
void send_records(zmq::socket_t& s, std::string& buf) {
  std::string_view in(buf);
  for (;;) {
    std::string_view rec = in;
    std::uint32_t id_size = 0, why_size = 0;
    std::uint64_t stuck = 0;
    if (!get(rec, id_size) || rec.size() < id_size) break;
    const auto id = rec.substr(0, id_size);
    rec.remove_prefix(id_size);
    if (!get(rec, stuck) || !get(rec, why_size) || rec.size() < why_size) break;
    protocol::disconnect_info info{stuck, std::string(rec.substr(0, why_size))};
    rec.remove_prefix(why_size);
    std::string body;
    protocol::encode_disconnect_info(body, info);
    wire::send(s, protocol::command::disconnect, id, zmq::buffer(body));
    in = rec;
  }
  buf.erase(0, buf.size() - in.size());
}

[[noreturn]] void run_helper(const worker_options& opt, int fd,
                             void (*log)(const worker_options&, const std::string&)) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // it has nothing to do without its supervisor
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  wire::configure_dealer(s, opt.limits);
  if (opt.curve.enabled()) {
    try {
      curve::configure_client(s, curve::load(opt.curve));
    } catch (const std::exception& e) {
      log(opt, std::string("notifier: ") + e.what() + "; dead workers will be noticed by their heartbeats");
    }
  }
  s.connect(opt.broker);
  std::string buf;
  char chunk[4096];
  for (bool open = true; open;) {
    zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, fd, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(1000));
    zmq::message_t ignored;
    while (s.recv(ignored, zmq::recv_flags::dontwait)) {  // the broker says nothing here that matters
    }
    if (!(items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) continue;
    const auto n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      send_records(s, buf);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      open = false;  // the supervisor is done
    }
  }
  s.set(zmq::sockopt::linger, 1000);  // what was sent reaches the broker
  s.close();
  ctx.close();
  _exit(0);
}

}  // namespace

notifier notifier::start(const worker_options& options,
                         void (*log)(const worker_options&, const std::string&)) {
  notifier n;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    log(options, std::string("notifier: pipe failed: ") + std::strerror(errno));
    return n;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    log(options, std::string("notifier: fork failed: ") + std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return n;
  }
  if (pid == 0) {
    ::close(fds[1]);
    run_helper(options, fds[0], log);
  }
  ::close(fds[0]);
  // Never block the supervisor: a notice that does not fit is left to the heartbeats.
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  n.pid_ = pid;
  n.fd_ = fds[1];
  return n;
}

notifier::notifier(notifier&& o) noexcept : pid_(std::exchange(o.pid_, -1)), fd_(std::exchange(o.fd_, -1)) {}

notifier& notifier::operator=(notifier&& o) noexcept {
  if (this != &o) {
    finish(std::chrono::milliseconds(0));
    pid_ = std::exchange(o.pid_, -1);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

notifier::~notifier() { finish(std::chrono::milliseconds(2000)); }

void notifier::gone(std::string_view routing_id, std::uint64_t stuck, std::string_view why) noexcept {
  if (fd_ < 0 || routing_id.empty() || routing_id.size() > 255) return;
  why = why.substr(0, max_why);
  std::string rec;
  put(rec, static_cast<std::uint32_t>(routing_id.size()));
  rec.append(routing_id);
  put(rec, stuck);
  put(rec, static_cast<std::uint32_t>(why.size()));
  rec.append(why);
  (void)!::write(fd_, rec.data(), rec.size());
}

void notifier::lost() noexcept {
  pid_ = -1;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void notifier::finish(std::chrono::milliseconds timeout) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (pid_ <= 0) return;
  const auto deadline = clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
}

void notifier::close_in_child() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pid_ = -1;
}

}  // namespace troupe
