// The broker's socket loop: one ROUTER socket, one poll. Everything it
// receives goes to the core (broker/core.hpp) with the time; everything the
// core puts in its outbox is sent at once. No routing decision lives here.
#include "troupe/broker.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <zmq.hpp>

#include "broker/core.hpp"
#include "broker/loop_bounds.hpp"
#include "broker/store_open.hpp"
#include "broker/zap.hpp"
#include "troupe/log.hpp"
#include "troupe/wire.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

// Messages handled per wake-up before timers run again, so that deadlines
// and heartbeats keep their time under a flood.
constexpr int max_drain = 4096;
// The longest poll, so that a stop request is seen in time.
constexpr auto max_wait = std::chrono::milliseconds(100);

// The broker's notices (store, keys, limits) go to the event log, at the
// level their wording says.
void log_line(const std::string& text) {
  constexpr std::string_view warning = "warning: ";
  if (text.starts_with(warning)) {
    log::write(log::level::warn, "broker", std::string_view(text).substr(warning.size()));
  } else {
    log::write(log::level::info, "broker", text);
  }
}

// The secure default: plaintext stays on this host unless asked otherwise.
void check_security_options(const broker_options& opt) {
  const bool keys = !opt.workers_keys.empty() || !opt.clients_keys.empty() || !opt.admins_keys.empty() ||
                    !opt.name_policy.empty();
  if (opt.curve_secret.empty() && keys)
    throw std::runtime_error(
        "key directories and --name-policy need --curve-secret (the broker's secret key)");
  if (!opt.curve_secret.empty() || local_only_endpoint(opt.listen)) return;
  if (!opt.insecure)
    throw std::runtime_error("refusing to listen on " + opt.listen +
                             " without CURVE: anyone who can reach it could register as any actor and read "
                             "every request. Give --curve-secret and key directories (docs/security.md), "
                             "listen on 127.0.0.1 or ipc://, or pass --insecure to accept the risk");
  log_line("warning: --insecure: plaintext on " + opt.listen +
           "; anyone who can reach it may act as any peer");
}

}  // namespace

struct broker::state {
  zmq::context_t ctx{1};
  // CURVE on: the ZAP handler and the keys. Bound before the router, which
  // would otherwise accept any key.
  std::unique_ptr<authenticator> auth;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string bound;
  std::unique_ptr<durable::store> store;  // before the core, which uses it until it is destroyed
  broker_core core;
  zmq::message_t peer;
  std::array<zmq::message_t, broker_core::max_frames> frames;
  std::atomic<bool> reload_requested{false};
  std::uint64_t policy_generation = 0;
  unsent_messages unsent;
  loop_housekeeping housekeeping{log_line};

  explicit state(const broker_options& opt) : core(opt, clock::now()) {
    attach_store(opt);
    check_security_options(opt);
    core.set_log(log_line);
    if (!opt.curve_secret.empty()) {
      auth = std::make_unique<authenticator>(ctx, opt, log_line);
      take_policy();
    }
    wire::configure(router, opt.limits);
    configure_send_bounds(router, opt);
    if (auth) auth->configure(router);
    bind_owner_only(router, opt.listen);
    bound = router.get(zmq::sockopt::last_endpoint);
  }

  // Durable messages (docs/durability.md): a store that cannot be opened
  // leaves the broker serving, refusing durable messages and saying why.
  void attach_store(const broker_options& opt) {
    std::string error;
    store = open_store(opt, error);
    if (!error.empty()) log_line("warning: " + error + "; durable messages are refused");
    core.attach_store(store.get(), error, clock::now());
    if (store && core.durable_pending() > 0)
      log_line("store " + store->describe() + ": " + std::to_string(core.durable_pending()) +
               " durable messages recovered");
  }

  // The core follows the authenticator's policy after each reload.
  void take_policy() {
    if (auth->generation() == policy_generation) return;
    policy_generation = auth->generation();
    core.set_name_policy(auth->policy());
  }

  // Handshakes waiting for the ZAP handler, and a reload asked by SIGHUP.
  void authenticate() {
    if (!auth) return;
    if (reload_requested.exchange(false)) auth->reload(true);
    for (auto n = auth->serve(); n > 0; --n) core.note_refused_handshake();
    take_policy();
  }

  // What ZeroMQ refuses (a peer gone, or one that does not read) goes back
  // to the core, which may answer with more (worker_lost for the asks of a
  // worker it removes); a few rounds settle it, the rest waits a turn.
  void flush() {
    for (int round = 0; round < 4 && !core.out().empty(); ++round) {
      unsent.clear();
      for (auto& m : core.out().messages())
        if (!send_bounded(router, m)) unsent.add(m);
      core.out().clear();
      for (const auto& u : unsent) core.on_unsent(u.to, u.command, u.meta, clock::now());
    }
  }

  // Waits for input until the core's next timer (or max_wait).
  void wait() {
    const auto now = clock::now();
    const auto wake = std::min(core.next_wakeup(), now + max_wait);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {auth ? auth->zap_socket().handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, auth ? 2 : 1, std::chrono::milliseconds(std::max<std::int64_t>(ms, 0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }

  void run(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
      wait();
      authenticate();
      bool idle = true;
      for (int i = 0; i < max_drain; ++i) {
        const auto n = wire::receive_routed(router, peer, frames);
        if (n == 0) break;
        idle = false;
        const std::string_view from(static_cast<const char*>(peer.data()), peer.size());
        // The key's role rides on every frame's metadata (not the routing
        // id's); a message has at least one frame.
        if (auth) {
          core.on_message(auth->identify(from, frames[0]), frames, n, clock::now());
        } else {
          core.on_message(from, frames, n, clock::now());
        }
        flush();
      }
      core.tick(clock::now());
      // One commit (one fsync) for what the batch and the timers changed;
      // the confirmations it allows go out with the next flush.
      core.commit(clock::now());
      flush();
      housekeeping.run(core, idle, clock::now());
    }
  }
};

broker::broker(broker_options options) : state_(std::make_unique<state>(options)) {}
broker::~broker() = default;
std::string broker::endpoint() const { return state_->bound; }
void broker::run(const std::atomic<bool>& stop) { state_->run(stop); }
void broker::request_reload() noexcept { state_->reload_requested.store(true, std::memory_order_relaxed); }

}  // namespace troupe
