// The worker runtime. The main thread owns the work socket and runs user
// code: it takes each request off the socket, calls the method and sends the
// reply itself, with no hand-off between threads on the way. A heartbeat
// thread, which never runs user code, owns a second socket: it tells the
// broker every interval that this worker (named by the work socket's
// routing id) is alive, and notices when the broker goes silent. So a long
// method never makes the worker look dead, and a request costs no more
// thread wake-ups than the ZeroMQ floor's. While a method runs, the
// heartbeat thread also takes what arrives off the work socket (under a
// lock the main thread lends it then), stamped, so that a request whose
// timeout passes while it waits is answered without running.
#include "troupe/worker.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <zmq.hpp>

#include "caller.hpp"
#include "limit_flags.hpp"
#include "registration.hpp"
#include "troupe/dispatch.hpp"
#include "troupe/endpoint.hpp"
#include "troupe/log.hpp"
#include "troupe/version.hpp"
#include "troupe/wire.hpp"
#include "worker_limits.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;
using protocol::command;

// Text as "[NAME PID] ...", or, with --log-format json, the fields every
// troupe program writes (troupe/log.hpp). --log-level filters both.
void log_line(const worker_options& opt, const std::string& text) {
  constexpr std::string_view error_prefix = "error: ";
  const bool error = text.starts_with(error_prefix);
  const auto level = error ? log::level::error : log::level::info;
  if (!log::enabled(level)) return;
  if (log::configured_format() == log::format::json) {
    log::write(level, "worker", error ? std::string_view(text).substr(error_prefix.size()) : text,
               {{"worker", opt.name}});
    return;
  }
  std::fprintf(stderr, "[%s %d] %s\n", opt.name.c_str(), static_cast<int>(getpid()), text.c_str());
}

// A fresh routing id for the work socket, so the heartbeat socket can name it.
std::string new_routing_id() {
  static std::mt19937_64 rng(std::random_device{}() ^ static_cast<std::uint64_t>(getpid()));
  char buf[24];
  std::snprintf(buf, sizeof buf, "w%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

class worker_runtime {
 public:
  worker_runtime(const worker_options& opt, const registry& types, call_page* page)
      : opt_(opt), types_(types), handler_(types, opt.limits), bounds_(opt, page), calls_out_(opt) {
    bounds_.attach(handler_);
    handler_.set_call_site(&calls_out_);
  }

  int run() {
    if (opt_.curve.enabled()) {
      try {
        credentials_ = curve::load(opt_.curve);
      } catch (const curve::key_error& e) {
        log_line(opt_, std::string("error: ") + e.what());
        return 1;
      }
    }
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    // Blocked before the heartbeat thread starts, so it inherits the mask
    // and the signals arrive only through the signalfd polled below.
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal_fd_ = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
      log_line(opt_, std::string("signalfd failed: ") + std::strerror(errno));
      return 1;
    }
    // The main thread holds the work socket's lock but while user code runs.
    const std::lock_guard own(work_mu_);
    try {
      connect();
    } catch (const zmq::error_t& e) {  // a malformed endpoint: retrying cannot help
      log_line(opt_, "error: cannot connect to " + opt_.broker + ": " + e.what());
      close(signal_fd_);
      return 2;
    }
    std::thread heartbeats([this] { heartbeat_loop(); });
    serve();
    end_suspended();
    handler_.destroy_all();
    stop_heartbeats_ = true;
    heartbeats.join();
    work_.set(zmq::sockopt::linger, 1000);  // let the last replies reach the broker
    work_.close();
    close(signal_fd_);
    log_line(opt_, "stopped");
    return exit_code_;
  }

 private:
  enum class phase { serving, awaiting_ack, done };

  // ---- main thread: the work socket ----------------------------------------

  void connect() {
    std::string id = new_routing_id();
    work_ = zmq::socket_t(ctx_, zmq::socket_type::dealer);
    wire::configure_dealer(work_, opt_.limits);
    if (credentials_) curve::configure_client(work_, *credentials_);
    backlog_.clear();  // the old socket's: their replies could not reach the broker's old peer
    work_.set(zmq::sockopt::routing_id, id);
    bounds_.publish_routing_id(id);  // for the supervisor, should this process die
    work_.connect(opt_.broker);
    {
      std::lock_guard lock(id_mu_);
      work_id_ = std::move(id);
    }
    send_ready();
  }

  void send_ready() {
    if (registered_) {  // the clock for "nobody answers" runs from the first unanswered READY
      registered_ = false;
      warned_unanswered_ = false;
      registering_since_ = clock::now();
    }
    wire::send(work_, command::ready, ready_body(opt_, types_, held_));  // registration.cpp: with our keys
  }

  void handle_request(std::size_t n) {
    if (n != 3) return;
    auto meta = protocol::decode_request_meta(frames_[1].data(), frames_[1].size());
    if (!meta) return;  // the broker never sends this; nothing to answer
    // The broker restarted and we registered again from the heartbeat
    // thread: what waits here from before the new broker's acknowledgement
    // was sent by the old one and is not run (a durable message is
    // delivered again by the new one).
    if (stale_.load(std::memory_order_relaxed)) return;
    if (expired_while_waiting(*meta)) return;
    // A keyed message may build an instance: claimed in a later READY.
    if (meta->address.find('/') != std::string_view::npos && !handler_.has_instance(meta->address))
      held_.add(meta->address);
    // Its instance awaits an ask (a troupe::task method): it is
    // non-reentrant, so this message waits here, in order, until that
    // method has returned. Its time runs from now.
    if (handler_.awaiting(meta->address)) {
      auto& q = parked_[std::string(meta->address)];
      q.push_back({std::move(frames_[1]), std::move(frames_[2]), seen_.value_or(clock::now())});
      return;
    }
    run_request(*meta, frames_[2], seen_.value_or(clock::now()));
  }

  // Runs one request: a plain method to its end, a coroutine method up to
  // its first suspension (the reply goes when it ends: finish_calls).
  void run_request(const protocol::request_meta& meta, const zmq::message_t& args,
                   clock::time_point arrived) {
    // The broker alone keeps time: a request whose timeout passed while it
    // waited here still runs (we cannot tell how long it waited), and the
    // broker drops its late reply.
    bounds_.before_request(meta.id, meta.timeout_ms);
    const message_info info{
        meta.id, meta.chain,
        arrived + std::chrono::milliseconds(std::min<std::uint64_t>(meta.timeout_ms, 86'400'000))};
    detail::started_task started;
    protocol::status code;
    {
      // While user code runs, the heartbeat thread may take what arrives
      // off the work socket (take_waiting).
      const socket_lent lent(work_mu_);
      code = handler_.handle(meta.address, meta.method, args.data(), args.size(), value_, &info, &started);
    }
    if (!started.handle) {
      reply(meta.id, code);
      bounds_.after_request();
      maybe_recycle();
      return;
    }
    const auto id = meta.id;
    suspended_.emplace(id, suspended_call{std::string(meta.address), started});
    started.promise->on_done = [this, id] { finished_.push_back(id); };
    bounds_.begin(std::chrono::milliseconds(0));  // user code again, up to its first suspension
    {
      const socket_lent lent(work_mu_);
      started.handle.resume();
    }
    bounds_.end();
    bounds_.after_request();
    finish_calls();
  }

  void reply(std::uint64_t id, protocol::status code) {
    protocol::encode_reply_meta(meta_buf_, id, protocol::to_string(code));
    wire::send(work_, command::reply, meta_buf_, zmq::buffer(value_.data(), value_.size()));
  }

  // Coroutine methods that ended: their replies go, and the messages that
  // waited for their instances run, in order.
  void finish_calls() {
    while (!finished_.empty()) {
      const auto id = finished_.front();
      finished_.pop_front();
      auto it = suspended_.find(id);
      if (it == suspended_.end()) continue;
      const std::string address = std::move(it->second.address);
      auto started = it->second.started;
      suspended_.erase(it);
      reply(id, handler_.finish(address, started, value_));
      maybe_recycle();
      run_parked(address);
      if (!handler_.awaiting(address) && release_when_idle_.erase(address) && handler_.drop(address))
        log_line(opt_,
                 "dropped keyed instance '" + address + "', which another worker holds, once it was idle");
    }
  }

  void run_parked(const std::string& address) {
    auto it = parked_.find(address);
    while (it != parked_.end() && !it->second.empty() && !handler_.awaiting(address)) {
      auto p = std::move(it->second.front());
      it->second.pop_front();
      if (auto meta = protocol::decode_request_meta(p.meta.data(), p.meta.size()))
        run_request(*meta, p.args, p.arrived);
      it = parked_.find(address);  // running it may have parked more
    }
    if (it != parked_.end() && it->second.empty()) parked_.erase(it);
  }

  // Replies to asks made from methods came: their coroutines go on.
  void resume_ready() {
    for (auto h : calls_out_.take()) {
      bounds_.begin(std::chrono::milliseconds(0));  // user code runs: watched for the worker's time limit
      {
        const socket_lent lent(work_mu_);
        h.resume();
      }
      bounds_.end();
    }
    finish_calls();
  }

  // Before the instances go: every ask still out ends (deadline_exceeded),
  // so every suspended method ends and replies.
  void end_suspended() {
    if (suspended_.empty()) return;
    calls_out_.close();
    for (int round = 0; round < 1000 && !suspended_.empty(); ++round) resume_ready();
    for (auto& [id, call] : suspended_) call.started.handle.destroy();  // stuck on something else: dropped
    suspended_.clear();
  }

  // A request's timeout_ms is the time left when the broker sent it. One
  // that waited here behind a long method longer than that is answered
  // deadline_exceeded without running (docs/protocol.md, "Deadlines"): its
  // caller has stopped waiting. Counted from when it was taken off the
  // socket, so never early; a request read at once has not waited.
  bool expired_while_waiting(const protocol::request_meta& meta) {
    // A durable message has no deadline (its timeout is a fresh one per
    // delivery): it always runs.
    if (!seen_ || meta.timeout_ms == 0 || meta.is_durable()) return false;
    const auto waited = clock::now() - *seen_;
    if (waited <= std::chrono::milliseconds(meta.timeout_ms)) return false;
    std::string text;
    protocol::encode_str(text, "the request's timeout passed while it waited in the worker");
    protocol::encode_reply_meta(meta_buf_, meta.id, protocol::to_string(protocol::status::deadline_exceeded));
    wire::send(work_, command::reply, meta_buf_, zmq::buffer(text));
    return true;
  }

  // Heartbeat thread, holding work_mu_ while the main thread runs user
  // code: what arrived meanwhile is taken off the work socket and stamped,
  // so that its wait is known. Bounded by what the broker may send
  // (credits) plus room for its other commands.
  void take_waiting() {
    const auto now = clock::now();
    while (backlog_.size() < opt_.credits + 1024) {
      waiting_message m;
      m.n = wire::receive(work_, m.frames);
      if (m.n == 0) return;
      m.seen = now;
      backlog_.push_back(std::move(m));
    }
  }

  // Past --max-requests, or asked by the supervisor (--max-rss): drain, and
  // exit for a fresh process to take over.
  void maybe_recycle() {
    if (phase_ != phase::serving) return;
    if (auto why = bounds_.recycle_reason()) {
      begin_stop("recycling: " + *why + "; finishing held requests");
      exit_code_ = exit_recycled;
    }
  }

  // No new work (DISCONNECT); what we hold is finished before we stop.
  void begin_stop(const std::string& why) {
    log_line(opt_, why);
    phase_ = phase::awaiting_ack;
    ack_deadline_ =
        clock::now() + std::min<clock::duration>(std::chrono::seconds(2), heartbeat() * liveness_.load());
    bounds_.stopping();
    wire::send(work_, command::disconnect);
  }

  // Handles one waiting message; false when none was waiting.
  bool handle_one() {
    std::size_t n = 0;
    seen_.reset();
    if (!backlog_.empty()) {  // taken off the socket earlier: first, in order
      auto& m = backlog_.front();
      n = m.n;
      for (std::size_t i = 0; i < frames_.size(); ++i) frames_[i] = std::move(m.frames[i]);
      seen_ = m.seen;
      backlog_.pop_front();
    } else {
      n = wire::receive(work_, frames_);
    }
    if (n == 0) return false;
    const auto cmd = protocol::parse_header(frames_[0].data(), frames_[0].size());
    if (!cmd) return true;  // not ours: drop
    switch (*cmd) {
      case command::request:
        handle_request(n);
        return true;
      case command::ready:
        on_ready_ack(n);
        return true;
      case command::release:  // another worker holds these keys: drop our instances
        drop_released(n);
        return true;
      case command::disconnect:
        if (n == 2) {  // with a reason: our READY was refused, and will be again
          on_refused();
          return false;
        }
        if (phase_ == phase::awaiting_ack) {
          // Nothing follows the acknowledgement: every request sent to us
          // before it has been handled, in order.
          phase_ = phase::done;
          return false;
        }
        log_line(opt_, "broker asked us to register again");
        send_ready();
        return true;
      default:
        return true;  // heartbeats to the work socket need no answer
    }
  }

  // The broker registered us and says which liveness settings to keep.
  void drop_released(std::size_t n) {
    if (n != 2) return;
    const auto addresses = protocol::decode_release(frames_[1].data(), frames_[1].size());
    if (!addresses) return;
    std::size_t dropped = 0;
    for (const auto a : *addresses) {
      if (handler_.drop(a)) {
        ++dropped;
      } else if (handler_.awaiting(a)) {
        release_when_idle_.emplace(a);
      }
      held_.remove(a);
    }
    if (dropped)
      log_line(opt_, "dropped " + std::to_string(dropped) + " keyed instance(s) another worker holds");
  }

  void on_ready_ack(std::size_t n) {
    const auto ack = n == 2 ? protocol::decode_ready_ack(frames_[1].data(), frames_[1].size()) : std::nullopt;
    if (!ack) return;  // not an acknowledgement we can read: wait for the next
    heartbeat_ms_ = static_cast<std::int64_t>(ack->heartbeat_ms);
    liveness_ = static_cast<int>(ack->liveness);
    // What follows any acknowledgement is the acknowledging broker's, even
    // when we were registered already (a second READY on our behalf).
    stale_ = false;
    if (registered_) return;
    registered_ = true;
    registered_once_ = true;
    // Messages waiting behind an awaiting instance came from the previous
    // registration: like those still on the socket then, they are not run
    // (their broker is gone or has forgotten us; a durable one comes again).
    parked_.clear();
    log_line(opt_, std::string(ever_registered_ ? "registered again" : "registered") +
                       " with the broker at " + opt_.broker + ": serving " +
                       std::to_string(types_.types().size()) + " actor type(s) with " +
                       std::to_string(opt_.credits) + " credits");
    ever_registered_ = true;
  }

  void on_refused() {
    std::string reason = "(no readable reason)";
    try {
      wire::unpack_bounded(frames_[1].data(), frames_[1].size(), opt_.limits).get().convert(reason);
    } catch (const std::exception&) {
    }
    log_line(opt_, "error: the broker refused this worker: " + protocol::to_valid_utf8(reason));
    exit_code_ = 2;  // a registration the broker refuses will be refused again: do not retry
    phase_ = phase::done;
  }

  void warn_if_unanswered() {
    if (registered_ || warned_unanswered_ || phase_ != phase::serving) return;
    if (clock::now() - registering_since_ < heartbeat() * liveness_.load()) return;
    warned_unanswered_ = true;
    std::string why;
    {
      std::lock_guard lock(id_mu_);
      why = unreachable_why_;
    }
    log_line(opt_, (why.empty() ? "no broker answering at " + opt_.broker : why) + " yet; still trying");
  }

  std::chrono::milliseconds heartbeat() const { return std::chrono::milliseconds(heartbeat_ms_.load()); }

  void on_signal() {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof info) == sizeof info) {
      if (phase_ != phase::serving) continue;  // already stopping
      begin_stop(std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) +
                 ": finishing held requests");
    }
  }

  void serve() {
    // After the broker's last word, methods still awaiting an ask finish
    // and reply, within the stop timeout.
    clock::time_point stop_by = clock::time_point::max();
    while (phase_ != phase::done || (!suspended_.empty() && clock::now() < stop_by)) {
      if (phase_ == phase::done && stop_by == clock::time_point::max())
        stop_by = clock::now() + opt_.stop_timeout;
      zmq::pollitem_t items[] = {
          {work_.handle(), 0, ZMQ_POLLIN, 0},
          {nullptr, signal_fd_, ZMQ_POLLIN, 0},
          {nullptr, calls_out_.fd(), ZMQ_POLLIN, 0},
      };
      // Wake now and then to see what the heartbeat thread asked for; at
      // once while messages taken off the socket wait.
      zmq::poll(items, 3, std::chrono::milliseconds(backlog_.empty() ? 100 : 0));
      if (items[1].revents & ZMQ_POLLIN) on_signal();
      if (items[2].revents & ZMQ_POLLIN) resume_ready();
      for (int i = 0; i < 1024 && phase_ != phase::done && handle_one(); ++i) {
      }
      bounds_.passivate(handler_, clock::now(),
                        [this](const std::string& body) { wire::send(work_, command::release, body); });
      maybe_recycle();
      // Instances destroyed (passivated): our claims follow.
      if (handler_.live_instances() < last_live_) held_.reset(handler_.keyed_addresses());
      last_live_ = handler_.live_instances();
      if (phase_ == phase::serving && reconnect_.exchange(false)) {
        log_line(opt_, "no word from the broker; reconnecting");
        connect();
      }
      if (phase_ == phase::serving && reregister_.exchange(false)) {
        log_line(opt_, "broker does not know us; registering again");
        send_ready();
      }
      if (phase_ == phase::awaiting_ack && clock::now() >= ack_deadline_) phase_ = phase::done;
      warn_if_unanswered();
    }
  }

  // ---- heartbeat thread: never runs user code ------------------------------

  // The broker does not know us. After a restart (we were registered
  // before) the heartbeat thread registers the work socket itself, at once,
  // however busy the main thread is; before, the main thread does (our
  // first READY may simply not have arrived yet). At most once a beat.
  // Returns whether it sent a READY.
  bool register_on_behalf(zmq::socket_t& hb, clock::time_point& last) {
    reregister_ = true;
    if (!registered_once_ || clock::now() - last < heartbeat()) return false;
    last = clock::now();
    std::string id;
    {
      std::lock_guard lock(id_mu_);
      id = work_id_;
    }
    stale_ = true;
    reconnect_ = false;  // the work socket reconnects by itself; it needs no new identity
    wire::send(hb, command::ready, ready_body(opt_, types_, held_), zmq::buffer(id));
    return true;
  }

  void heartbeat_loop() {
    zmq::context_t ctx(1);
    zmq::socket_t hb;
    // Its handshakes say why the broker is silent, if it is: a refused key
    // reads differently from no broker at all. Both sockets use the same
    // keys, so what holds for this one holds for the work socket.
    std::optional<curve::handshake_monitor> monitor;
    auto open = [&] {
      monitor.reset();
      hb = zmq::socket_t(ctx, zmq::socket_type::dealer);
      wire::configure_dealer(hb, opt_.limits);
      if (credentials_) curve::configure_client(hb, *credentials_);
      monitor.emplace(ctx, hb, opt_.broker, credentials_.has_value());
      hb.connect(opt_.broker);
    };
    open();
    auto last_heard = clock::now();
    // The first beat waits an interval: sent at once it can overtake the
    // work socket's READY (another connection) and get a needless DISCONNECT.
    auto next_beat = clock::now() + heartbeat();
    auto last_on_behalf = clock::time_point{};
    // After a READY on the work socket's behalf, a DISCONNECT can still
    // come that answers a beat sent before it: taken for a new restart, it
    // would make the main thread drop what the broker sends after its
    // acknowledgement. So until the broker answers a beat with HEARTBEAT
    // (it knows us), or a liveness window passes, DISCONNECT here is not
    // acted on; the work socket still hears one if the broker lost us.
    bool awaiting_beat_answer = false;
    std::array<zmq::message_t, 2> frames;
    while (!stop_heartbeats_) {
      auto now = clock::now();
      if (now >= next_beat) {
        std::string id;
        {
          std::lock_guard lock(id_mu_);
          id = work_id_;
        }
        wire::send(hb, command::heartbeat, id);
        next_beat = now + heartbeat();
      }
      zmq::pollitem_t items[] = {{hb.handle(), 0, ZMQ_POLLIN, 0}};
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - now);
      zmq::poll(items, 1, std::clamp(wait, std::chrono::milliseconds(0), std::chrono::milliseconds(100)));
      if (work_mu_.try_lock()) {  // the main thread runs user code (or is about to)
        take_waiting();
        work_mu_.unlock();
      }
      for (std::size_t n; (n = wire::receive(hb, frames)) > 0;) {
        last_heard = clock::now();
        // DISCONNECT here means the broker does not know the worker we named.
        const auto c = protocol::parse_header(frames[0].data(), frames[0].size());
        if (c == command::heartbeat) awaiting_beat_answer = false;
        if (c != command::disconnect) continue;
        if (awaiting_beat_answer && clock::now() - last_on_behalf < heartbeat() * liveness_.load()) continue;
        if (register_on_behalf(hb, last_on_behalf)) awaiting_beat_answer = true;
      }
      if (monitor->poll()) {
        std::lock_guard lock(id_mu_);
        unreachable_why_ = monitor->state().failing() ? monitor->why_unreachable() : std::string();
      }
      if (!bounds_.pooled()) watch_own_limits(hb);
      // The broker's settings, once it has acknowledged us (until then our own).
      if (clock::now() - last_heard > heartbeat() * liveness_.load()) {
        reconnect_ = true;  // the main thread reconnects the work socket when it can
        open();
        last_heard = clock::now();
      }
    }
    monitor.reset();
  }

  // A worker on its own has no supervisor to replace it when a call runs
  // past its limit, or a stop past --stop-timeout-ms: it tells the broker
  // (which answers the stuck ask and the others) and ends itself, for its
  // service manager to restart.
  void watch_own_limits(zmq::socket_t& hb) {
    const auto now = clock::now();
    auto v = bounds_.overdue(now);
    int code = exit_time_limit;
    if (!v) {
      v = bounds_.stop_overdue(now);
      code = 1;
    }
    if (!v) return;
    std::string id;
    {
      std::lock_guard lock(id_mu_);
      id = work_id_;
    }
    log_line(opt_, std::string(code == exit_time_limit ? "the call running " : "this worker ") + v->why +
                       ": telling the broker and exiting with code " + std::to_string(code));
    std::string info;
    protocol::encode_disconnect_info(info, {v->stuck, v->why});
    wire::send(hb, command::disconnect, id, zmq::buffer(info));
    hb.set(zmq::sockopt::linger, 1000);
    hb.close();
    // Terminating the context could wait on the handshake monitor's socket:
    // give the notice time to leave instead, then go.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::fflush(nullptr);
    _exit(code);
  }

  const worker_options& opt_;
  const registry& types_;
  dispatcher handler_;
  worker_limits bounds_;
  zmq::context_t ctx_{1};
  zmq::socket_t work_;
  int signal_fd_ = -1;
  phase phase_ = phase::serving;
  clock::time_point ack_deadline_;
  std::array<zmq::message_t, 3> frames_;
  // The work socket's lock: held by the main thread except while a method
  // runs; then the heartbeat thread may take messages off the socket.
  std::mutex work_mu_;
  // Unlocks a held mutex for a scope (a method's run), and locks it again.
  struct socket_lent {
    explicit socket_lent(std::mutex& mu) : mu_(mu) { mu_.unlock(); }
    ~socket_lent() { mu_.lock(); }
    socket_lent(const socket_lent&) = delete;
    socket_lent& operator=(const socket_lent&) = delete;
    std::mutex& mu_;
  };
  // Messages taken off the socket after a long method (take_waiting), with
  // when; seen_: the stamp of the one being handled, if it came from there.
  struct waiting_message {
    clock::time_point seen;
    std::array<zmq::message_t, 3> frames;
    std::size_t n = 0;
  };
  std::deque<waiting_message> backlog_;  // guarded by work_mu_, as work_ is
  std::optional<clock::time_point> seen_;
  troupe::value_buffer value_;
  std::string meta_buf_;

  // Calls from methods (caller.hpp): coroutine methods suspended on them,
  // by the broker's request id; those that ended, to reply to; messages
  // waiting for their awaiting instances, by address.
  struct suspended_call {
    std::string address;
    detail::started_task started;
  };
  struct parked_request {
    zmq::message_t meta, args;
    clock::time_point arrived;
  };
  caller calls_out_;
  std::unordered_map<std::uint64_t, suspended_call> suspended_;
  std::deque<std::uint64_t> finished_;
  std::unordered_map<std::string, std::deque<parked_request>> parked_;
  // Keys the broker RELEASEd while their instance awaited: dropped once it
  // is idle, never under a suspended coroutine.
  std::unordered_set<std::string> release_when_idle_;

  // Registration, as the main thread sees it.
  bool registered_ = false;         // the broker acknowledged our last READY
  bool ever_registered_ = false;    // for the log: "registered" or "registered again"
  bool warned_unanswered_ = false;  // said once per READY that nobody answers
  clock::time_point registering_since_ = clock::now();
  int exit_code_ = 0;

  // Shared between the two threads. The liveness settings start as ours and
  // become the broker's when it acknowledges READY.
  std::atomic<std::int64_t> heartbeat_ms_{opt_.heartbeat.count()};
  std::atomic<int> liveness_{opt_.liveness};
  std::optional<curve::client_credentials> credentials_;  // CURVE on; set before the threads start
  std::mutex id_mu_;
  std::string work_id_;          // guarded by id_mu_
  std::string unreachable_why_;  // guarded by id_mu_: why the last handshake failed, if it did
  std::atomic<bool> stop_heartbeats_{false};
  std::atomic<bool> reconnect_{false};
  std::atomic<bool> reregister_{false};
  // Registering again from the heartbeat thread (docs/protocol.md, READY).
  held_keys held_;                  // keyed instances we hold, for READY `keys`
  std::atomic<bool> stale_{false};  // requests before the next acknowledgement are the old broker's
  std::atomic<bool> registered_once_{false};
  std::size_t last_live_ = 0;  // main thread: live instances after the last passivation
};

std::string base_name(const char* path) {
  std::string s = path ? path : "worker";
  const auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

int run_worker(const worker_options& options, const registry& types) {
  worker_runtime runtime(options, types, nullptr);
  return runtime.run();
}

int run_pool_worker(const worker_options& options, const registry& types, call_page* page) {
  worker_runtime runtime(options, types, page);
  return runtime.run();
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
  app.add_option("--stop-timeout-ms", stop_timeout_ms,
                 "a stop taking longer is cut short: held asks get worker_lost (a pool SIGKILLs its workers)")
      ->capture_default_str();
  limit_flags bounds_flags(app, opt);
  app.add_flag("--list", list, "print the actors and methods this executable hosts, then exit");
  opt.curve = curve::client_keys::from_environment();
  app.add_option("--curve-secret", opt.curve.secret_file,
                 "CURVE: this worker's secret key file (default: $TROUPE_CURVE_SECRET)");
  app.add_option("--broker-key", opt.curve.broker_key_file,
                 "CURVE: the broker's public key file (default: $TROUPE_BROKER_KEY)");
  std::string log_level = "info", log_format = "text";
  app.add_option("--log-level", log_level, "least severe lines logged")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text, or json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.set_version_flag("--version", std::string("troupe ") + version());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error 2 (docs/operations.md),
    // not CLI11's own codes.
    return app.exit(e) == 0 ? 0 : 2;
  }
  log::configure(opt.name, *log::parse_level(log_level), *log::parse_format(log_format));
  // --list needs no broker, so a bad endpoint does not stop it.
  if (const auto why = list ? std::string() : endpoint_error(opt.broker); !why.empty()) {
    std::fprintf(stderr, "troupe: error: %s\n", why.c_str());
    return 2;
  }
  opt.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  opt.stop_timeout = std::chrono::milliseconds(stop_timeout_ms);
  if (const auto bad = bounds_flags.apply(opt); !bad.empty()) {
    std::fprintf(stderr, "troupe: error: %s\n", bad.c_str());
    return 2;
  }

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
  if (!list && opt.curve.enabled()) {
    // Checked here too, so that a supervisor stops at once rather than
    // restarting workers that cannot start.
    try {
      curve::load(opt.curve);
    } catch (const curve::key_error& e) {
      std::fprintf(stderr, "troupe: error: %s\n", e.what());
      return 1;
    }
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
