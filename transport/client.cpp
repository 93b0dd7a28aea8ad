#include "troupe/client.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "troupe/wire.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

// How long past its timeout the client waits for the broker's own
// deadline_exceeded before giving up locally (broker down or unreachable).
constexpr auto local_grace = std::chrono::milliseconds(250);
// After the broker refused the handshake ZeroMQ does not reconnect; the
// client opens a new socket after this pause, doubled (up to the maximum)
// while it keeps being refused.
constexpr auto first_reopen_delay = std::chrono::milliseconds(100);
constexpr auto max_reopen_delay = std::chrono::milliseconds(5000);

// The client whose I/O thread is the current thread, if any: a callback that
// asks again from that thread needs no wake-up.
thread_local const void* current_io_thread_owner = nullptr;

}  // namespace

struct client::impl {
  struct outgoing {
    std::uint64_t id;
    std::string meta;
    std::string args;
    callback done;  // empty for a tell
    clock::time_point deadline;
    bool durable = false;  // kept to re-send after a reconnect
  };
  struct pending {
    callback done;
    clock::time_point deadline;
    std::string meta, args;  // a durable request's frames, re-sent after a reconnect; else empty
  };

  std::string endpoint;
  protocol::limits limits;
  std::optional<curve::client_credentials> credentials;  // CURVE on
  zmq::context_t ctx{1};
  std::atomic<std::uint64_t> next_id{1};
  // Durable requests: message ids, and re-sending after a reconnect.
  const std::uint64_t id_prefix = (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}() ^
                                  static_cast<std::uint64_t>(getpid());
  std::atomic<std::uint64_t> next_message{1};
  bool ever_connected = false;  // I/O thread only
  bool resend_durable = false;  // I/O thread only
  std::atomic<bool> stopping{false};
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  std::mutex mu;
  std::vector<outgoing> submitted;  // guarded by mu; swapped out by the I/O thread

  std::unordered_map<std::uint64_t, pending> in_flight;  // I/O thread only
  std::thread thread;
  unsigned monitors_opened = 0;

  // The connection as ZeroMQ's socket monitor reports it (written by the
  // I/O thread, waited for by callers).
  mutable std::mutex link_mu;
  mutable std::condition_variable link_cv;
  client::link_state link = client::link_state::connecting;

  // The handshakes in words, for errors (I/O thread only). After the broker
  // refused us, a new socket is opened at reopen_at.
  curve::handshake_state handshake;
  std::optional<clock::time_point> reopen_at;
  clock::duration reopen_delay = first_reopen_delay;

  impl(std::string ep, const protocol::limits& lim, const curve::client_keys& keys)
      : endpoint(std::move(ep)), limits(lim), handshake(endpoint, keys.enabled()) {
    if (wake_fd < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    if (keys.enabled()) credentials = curve::load(keys);
    // Connect here so a bad endpoint throws in the constructor, not later.
    zmq::socket_t socket = open_socket();
    zmq::socket_t monitor = watch(socket);
    socket.connect(endpoint);
    thread = std::thread([this, s = std::move(socket), m = std::move(monitor)]() mutable { run(s, m); });
  }

  zmq::socket_t open_socket() {
    zmq::socket_t socket(ctx, zmq::socket_type::dealer);
    wire::configure_dealer(socket, limits);
    if (credentials) curve::configure_client(socket, *credentials);
    return socket;
  }

  // A PAIR socket receiving the events of `socket` that tell whether a
  // broker is there.
  zmq::socket_t watch(zmq::socket_t& socket) {
    // A new address for each socket the client opens.
    const std::string address = "inproc://troupe-client-monitor-" +
                                std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                                std::to_string(monitors_opened++);
    constexpr int events = ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                           ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) throw zmq::error_t();
    zmq::socket_t monitor(ctx, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(address);
    return monitor;
  }

  void on_monitor_event(zmq::socket_t& monitor) {
    std::array<zmq::message_t, 2> frames;
    while (wire::receive(monitor, frames) == 2) {
      if (frames[0].size() < sizeof(std::uint16_t)) continue;
      std::uint16_t event;
      std::memcpy(&event, frames[0].data(), sizeof event);
      std::uint32_t value = 0;
      if (frames[0].size() >= sizeof event + sizeof value)
        std::memcpy(&value, static_cast<const char*>(frames[0].data()) + sizeof event, sizeof value);
      handshake.on_event(event, value);
      // A new connection after a lost one (the broker restarted): durable
      // requests not answered yet are sent again under their ids.
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) resend_durable = ever_connected;
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) ever_connected = true;
      auto next = client::link_state::connecting;
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        next = client::link_state::connected;
      } else if (handshake.failing() &&
                 (event == ZMQ_EVENT_CONNECT_RETRIED || event == ZMQ_EVENT_DISCONNECTED)) {
        // A failed handshake closes the connection and ZeroMQ tries again:
        // still a refusal by the broker, not "nothing listens".
        next = client::link_state::rejected;
      } else if (event == ZMQ_EVENT_CONNECT_RETRIED) {
        next = client::link_state::refused;
      } else if (event & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)) {
        next = client::link_state::rejected;
      }
      {
        std::lock_guard lock(link_mu);
        link = next;
      }
      link_cv.notify_all();
    }
  }

  client::link_state wait_connected(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(link_mu);
    link_cv.wait_for(lock, timeout, [&] { return link == client::link_state::connected; });
    return link;
  }

  ~impl() {
    stopping = true;
    wake();
    thread.join();
    close(wake_fd);
  }

  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_fd, &one, sizeof one);
  }

  void submit(outgoing&& o) {
    if (current_io_thread_owner == this) {
      // From a callback: the loop sends it before it waits again.
      std::lock_guard lock(mu);
      submitted.push_back(std::move(o));
      return;
    }
    bool was_empty;
    {
      std::lock_guard lock(mu);
      was_empty = submitted.empty();
      submitted.push_back(std::move(o));
    }
    if (was_empty) wake();  // the I/O thread takes the whole batch at once
  }

  void send_batch(zmq::socket_t& s, std::vector<outgoing>& batch) {
    for (auto& o : batch) {
      if (!wire::send(s, protocol::command::request, o.meta, zmq::buffer(o.args))) {
        // No connection to queue it on: the broker refused our handshake.
        if (o.done) fail(o.done, handshake.why_unreachable());
        continue;
      }
      if (o.done) {
        in_flight.emplace(
            o.id, pending{std::move(o.done), o.deadline, o.durable ? std::move(o.meta) : std::string(),
                          o.durable ? std::move(o.args) : std::string()});
      }
    }
    batch.clear();
  }

  // Handles one waiting message; false when none was waiting. Anything but
  // a REPLY for a request of ours is ignored.
  bool on_reply(zmq::socket_t& s) {
    std::array<zmq::message_t, 3> frames;
    const auto n = wire::receive(s, frames);
    if (n == 0) return false;
    if (n != 3 || protocol::parse_header(frames[0].data(), frames[0].size()) != protocol::command::reply)
      return true;
    auto meta = protocol::decode_reply_meta(frames[1].data(), frames[1].size());
    if (!meta) return true;
    auto it = in_flight.find(meta->id);
    if (it == in_flight.end()) return true;  // answered locally already, or id 0
    raw_reply reply;
    // A status this client does not know yet is still an error, never a value.
    reply.code = protocol::status_from_string(meta->status_text).value_or(protocol::status::bad_request);
    reply.value.assign(static_cast<const char*>(frames[2].data()), frames[2].size());
    auto done = std::move(it->second.done);
    in_flight.erase(it);
    done(std::move(reply));
    return true;
  }

  void fail(callback& done, std::string_view message) {
    raw_reply reply;
    reply.code = protocol::status::deadline_exceeded;
    std::string buf;
    protocol::encode_str(buf, message);
    reply.value = std::move(buf);
    done(std::move(reply));
  }

  void expire(clock::time_point now) {
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (it->second.deadline <= now) {
        auto done = std::move(it->second.done);
        it = in_flight.erase(it);
        fail(done, handshake.connected() ? "no reply from the broker within the timeout"
                                         : handshake.why_unreachable());
      } else {
        ++it;
      }
    }
  }

  // When the broker refused our handshake (a key it does not accept, CURVE
  // on one side only), ZeroMQ has dropped the connection and what was
  // queued on it, and does not reconnect: the asks in flight can get no
  // reply and fail now, and a new socket tries again after a pause.
  void watch_refusal(zmq::socket_t& s, zmq::socket_t& monitor, clock::time_point now) {
    if (handshake.connected()) reopen_delay = first_reopen_delay;
    if (!reopen_at) {
      if (!handshake.gave_up()) return;
      const auto why = handshake.why_unreachable();
      auto lost = std::move(in_flight);
      in_flight.clear();
      for (auto& [id, p] : lost) fail(p.done, why);
      reopen_at = now + reopen_delay;
      reopen_delay = std::min<clock::duration>(reopen_delay * 2, max_reopen_delay);
      return;
    }
    if (now < *reopen_at) return;
    reopen_at.reset();
    zmq_socket_monitor(s.handle(), nullptr, 0);
    monitor.close();
    s = open_socket();
    monitor = watch(s);
    s.connect(endpoint);
    handshake = curve::handshake_state(endpoint, credentials.has_value());
  }

  // Sends what callers submitted.
  void flush(zmq::socket_t& s, std::vector<outgoing>& batch) {
    {
      std::lock_guard lock(mu);
      batch.swap(submitted);
    }
    send_batch(s, batch);
  }

  void resend(zmq::socket_t& s) {
    resend_durable = false;
    for (auto& [id, p] : in_flight)
      if (!p.meta.empty()) wire::send(s, protocol::command::request, p.meta, zmq::buffer(p.args));
  }

  // A fresh message id: this client's random prefix and a counter.
  std::string new_message_id() {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(id_prefix),
                  static_cast<unsigned long long>(next_message.fetch_add(1, std::memory_order_relaxed)));
    return buf;
  }

  void run(zmq::socket_t& s, zmq::socket_t& monitor) {
    current_io_thread_owner = this;
    std::vector<outgoing> batch;
    auto next_scan = clock::now();
    while (!stopping) {
      zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, wake_fd, ZMQ_POLLIN, 0},
                                 {monitor.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 3, std::chrono::milliseconds(in_flight.empty() ? 100 : 20));
      if (items[1].revents & ZMQ_POLLIN) {
        std::uint64_t count;
        [[maybe_unused]] auto n = read(wake_fd, &count, sizeof count);
      }
      if (items[2].revents & ZMQ_POLLIN) on_monitor_event(monitor);
      if (resend_durable) resend(s);
      flush(s, batch);
      for (int i = 0; i < 4096 && on_reply(s); ++i) {
      }
      const auto now = clock::now();
      if (now >= next_scan) {
        watch_refusal(s, monitor, now);
        expire(now);
        next_scan = now + std::chrono::milliseconds(20);
      }
      flush(s, batch);  // what callbacks asked for goes out before the next wait
    }
    // Every ask ends: what is still pending fails now.
    {
      std::lock_guard lock(mu);
      batch.swap(submitted);
    }
    for (auto& o : batch)
      if (o.done) fail(o.done, "the client was closed");
    for (auto& [id, p] : in_flight) fail(p.done, "the client was closed");
    in_flight.clear();
    zmq_socket_monitor(s.handle(), nullptr, 0);
  }
};

client::client(std::string endpoint, client_options options)
    : endpoint_(std::move(endpoint)),
      options_(options),
      impl_(std::make_unique<impl>(endpoint_, options_.limits, options_.curve)) {}

client::~client() = default;

client::link_state client::wait_connected(std::chrono::milliseconds timeout) const {
  return impl_->wait_connected(timeout);
}

void client::ask_raw(std::string_view address, std::string_view method, std::string args,
                     std::chrono::milliseconds timeout, callback done) {
  if (timeout.count() <= 0) timeout = options_.timeout;
  impl::outgoing o;
  o.id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  protocol::encode_request_meta(o.meta,
                                {o.id, address, method, 0, static_cast<std::uint64_t>(timeout.count())});
  o.args = std::move(args);
  o.done = std::move(done);
  o.deadline = clock::now() + timeout + local_grace;
  impl_->submit(std::move(o));
}

void client::ask_raw(std::string_view address, std::string_view method, std::string args,
                     const call_options& opts, callback done) {
  if (!opts.durable && opts.chain.empty())
    return ask_raw(address, method, std::move(args), opts.timeout, std::move(done));
  const auto timeout = opts.timeout.count() > 0 ? opts.timeout : options_.timeout;
  impl::outgoing o;
  o.id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  const std::string mid = !opts.durable || !opts.id.empty() ? opts.id : impl_->new_message_id();
  protocol::request_meta meta{o.id, address, method, opts.durable ? protocol::flag_durable : 0,
                              static_cast<std::uint64_t>(timeout.count())};
  meta.has_durable = opts.durable;
  meta.message_id = mid;
  meta.chain = opts.chain;
  protocol::encode_request_meta(o.meta, meta);
  o.args = std::move(args);
  o.done = std::move(done);
  o.deadline = clock::now() + timeout + local_grace;
  o.durable = opts.durable;
  impl_->submit(std::move(o));
}

void client::tell_durable_raw(std::string_view address, std::string_view method, std::string args,
                              const tell_options& opts, callback done) {
  const auto timeout = opts.timeout.count() > 0 ? opts.timeout : options_.timeout;
  impl::outgoing o;
  o.id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  const std::string mid = opts.id.empty() ? impl_->new_message_id() : opts.id;
  protocol::request_meta meta{o.id, address, method, protocol::flag_durable | protocol::flag_tell,
                              static_cast<std::uint64_t>(timeout.count())};
  meta.has_durable = true;
  meta.message_id = mid;
  meta.delay_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(opts.delay.count(), 0));
  protocol::encode_request_meta(o.meta, meta);
  o.args = std::move(args);
  o.done = std::move(done);
  o.deadline = clock::now() + timeout + local_grace;
  o.durable = true;
  impl_->submit(std::move(o));
}

void client::tell_raw(std::string_view address, std::string_view method, std::string args) {
  impl::outgoing o;
  o.id = impl_->next_id.fetch_add(1, std::memory_order_relaxed);
  protocol::encode_request_meta(o.meta, {o.id, address, method, protocol::flag_tell,
                                         static_cast<std::uint64_t>(options_.timeout.count())});
  o.args = std::move(args);
  impl_->submit(std::move(o));
}

msgpack::object_handle client::unpack(const std::string& bytes) const {
  try {
    return wire::unpack_bounded(bytes.data(), bytes.size(), options_.limits);
  } catch (const std::exception& e) {
    throw result_type_error(std::string("the reply value is not valid msgpack: ") + e.what());
  }
}

void client::check(const raw_reply& reply) const {
  if (reply.code == protocol::status::ok) return;
  std::string message;
  try {
    unpack(reply.value).get().convert(message);
  } catch (const std::exception&) {
    message = "(no readable message)";
  }
  throw error(reply.code, message);
}

}  // namespace troupe
