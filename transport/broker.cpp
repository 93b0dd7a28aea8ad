// The broker's socket loop: one ROUTER socket, one poll. Everything it
// receives goes to the core (broker/core.hpp) with the time; everything the
// core puts in its outbox is sent at once. No routing decision lives here.
#include "troupe/broker.hpp"

#include <array>
#include <cerrno>
#include <zmq.hpp>

#include "broker/core.hpp"
#include "troupe/wire.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

// Messages handled per wake-up before timers run again, so that deadlines
// and heartbeats keep their time under a flood.
constexpr int max_drain = 4096;
// The longest poll, so that a stop request is seen in time.
constexpr auto max_wait = std::chrono::milliseconds(100);

}  // namespace

struct broker::state {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string bound;
  broker_core core;
  zmq::message_t peer;
  std::array<zmq::message_t, broker_core::max_frames> frames;

  explicit state(const broker_options& opt) : core(opt, clock::now()) {
    wire::configure(router, opt.limits);
    router.bind(opt.listen);
    bound = router.get(zmq::sockopt::last_endpoint);
  }

  void flush() {
    for (auto& m : core.out().messages())
      wire::send_routed(router, m.to, m.command, m.meta, m.has_payload ? &m.payload : nullptr);
    core.out().clear();
  }

  // Waits for input until the core's next timer (or max_wait).
  void wait() {
    const auto now = clock::now();
    const auto wake = std::min(core.next_wakeup(), now + max_wait);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, std::chrono::milliseconds(std::max<std::int64_t>(ms, 0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }

  void run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
      wait();
      for (int i = 0; i < max_drain; ++i) {
        const auto n = wire::receive_routed(router, peer, frames);
        if (n == 0) break;
        const std::string_view from(static_cast<const char*>(peer.data()), peer.size());
        core.on_message(from, frames, n, clock::now());
        flush();
      }
      core.tick(clock::now());
      flush();
    }
  }
};

broker::broker(broker_options options) : state_(std::make_unique<state>(options)) {}
broker::~broker() = default;
std::string broker::endpoint() const { return state_->bound; }
void broker::run(const std::atomic<bool>& stop) { state_->run(stop); }

}  // namespace troupe
