// The broker's logic as a state machine with no socket and no clock of its
// own. Inputs are received messages (the sender's routing id and its frames)
// and the current time; outputs are messages appended to an outbox, which
// the socket loop in broker.cpp sends. So every rule of docs/protocol.md
// (routing, credits, sticky keys, queue bounds, deadlines, liveness) can be
// driven and checked message by message, with time moved by hand.
//
// Layout: core.cpp screens each message and handles requests and replies;
// routing.cpp places requests on workers and queues; workers.cpp registers,
// watches and removes workers; management.cpp answers `$broker`.
//
// Not thread-safe: one thread drives a core.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "broker/bounds.hpp"
#include "broker/deadline_heap.hpp"
#include "broker/durable.hpp"
#include "broker/name_policy.hpp"
#include "broker/outbox.hpp"
#include "broker/peer.hpp"
#include "broker/slot_table.hpp"
#include "troupe/broker.hpp"
#include "troupe/flat_string_map.hpp"
#include "troupe/protocol.hpp"
#include "troupe/string_map.hpp"

namespace troupe {

struct listing_page;

struct broker_counters {
  std::uint64_t requests = 0, replies = 0, errors = 0, dropped = 0;
  std::uint64_t bad_requests = 0, overloaded = 0, deadline_exceeded = 0, worker_lost = 0, unknown_actor = 0;
  // Commands refused for the sender's role, key or name policy (dropped,
  // never routed), and CURVE handshakes the ZAP handler refused.
  std::uint64_t refused = 0, refused_handshakes = 0;
};

class broker_core {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  // The most frames a message of the protocol has (header, meta, payload).
  static constexpr std::size_t max_frames = 3;

  broker_core(broker_options options, time_point now);
  ~broker_core();
  broker_core(const broker_core&) = delete;
  broker_core& operator=(const broker_core&) = delete;

  // Handles one message from `from` (routing id, and with CURVE on the
  // role and name of its key). `frames` are the frames after the routing
  // id, at most max_frames of them; `count` is how many the message had
  // (more than frames.size() means malformed). Payload frames may be moved
  // out of `frames`. Never throws for bad input: it is answered or dropped
  // and counted. A command the sender's role or key may not send is
  // dropped, counted in `refused` and logged; it changes no routing.
  void on_message(const peer& from, std::span<zmq::message_t> frames, std::size_t count, time_point now);
  // The same from a peer with every role (CURVE off).
  void on_message(std::string_view id, std::span<zmq::message_t> frames, std::size_t count, time_point now) {
    on_message(peer{id, peer_role::any, {}}, frames, count, now);
  }

  // The name policy for READY and REQUEST (null: every name allowed). It
  // governs registrations and requests from then on.
  void set_name_policy(std::shared_ptr<const name_policy> policy) { policy_ = std::move(policy); }
  // Where refusals are logged, one line each (at most one per key per
  // second, with a count of those left out). Default: nowhere.
  void set_log(std::function<void(const std::string&)> log) { log_ = std::move(log); }
  // Counts a CURVE handshake the ZAP handler refused (stats).
  void note_refused_handshake() { ++count_.refused_handshakes; }

  // Ends requests whose deadline passed, and sends heartbeats and declares
  // silent workers dead when their time has come. Call it at next_wakeup()
  // at the latest.
  void tick(time_point now);
  // When tick() next has work to do.
  time_point next_wakeup() const;

  // What to send, in order. The caller sends and clears it.
  outbox& out() { return out_; }

  const broker_counters& counters() const { return count_; }
  std::size_t queued() const { return queued_; }
  std::size_t in_flight() const { return in_flight_; }
  std::size_t live_workers() const { return worker_by_identity_.size(); }
  std::size_t names() const { return actors_.size(); }
  // Keys placed on live workers. O(names): for tests and stats, not per request.
  std::size_t placed_keys() const;

  // The socket loop could not send a message the core put in its outbox:
  // ZeroMQ refused it because the peer `to` is gone or has
  // --send-queue-limit messages it has not read. Counted in `unsent`. A
  // worker that a message was for is removed at once (every ask it held is
  // answered `worker_lost`): it is gone, or so far behind that it would
  // never catch up. A reply that a client does not read is dropped: its ask
  // has ended. `meta` is the message's first body frame. Never throws for
  // bad input.
  void on_unsent(std::string_view to, protocol::command c, std::string_view meta, time_point now);
  // Counts connections the socket loop refused for want of file
  // descriptors (stats `refused_connections`).
  void note_refused_connections(std::uint64_t n) { bounds_.refused_connections += n; }
  const bounds_counters& bounds() const { return bounds_; }
  // Bytes of args and meta held by requests waiting in queues.
  std::size_t queued_bytes() const { return queued_bytes_; }

  // ---- durable messages (durable*.cpp, restore.cpp; docs/durability.md) ----
  // Gives the core its store (null: none; `error` says why there is none or
  // why it cannot be written) and recovers the store's pending messages.
  // Call once, before the first message; the store must outlive the core.
  // Never throws for a store that cannot be read: durable requests are
  // then refused, saying why.
  void attach_store(durable::store* store, std::string error, time_point now);
  // Writes what changed since the last commit in one transaction (one
  // fsync), then confirms and routes the durable messages it accepted; if
  // the store fails, refuses them instead. The socket loop calls it after
  // each drained batch and after tick(); it costs nothing when nothing
  // changed. Never throws for store errors.
  void commit(time_point now);
  // Durable messages held (queued, running or scheduled).
  std::size_t durable_pending() const { return durable_->by_id.size(); }

  // Checks that the core's tables agree with each other (counts, queues,
  // placements, credits). Returns what is wrong, or an empty string. O(size
  // of everything): for tests and fuzzers.
  std::string audit() const;

 private:
  struct actor_entry;
  static constexpr std::uint32_t no_worker = 0xffffffff;

  // The adaptive window (routing.cpp, adapt_window): how much work the
  // broker lets a worker hold, within its credits. A fresh worker may hold
  // min(credits, first_window); from then on about window_work of work,
  // estimated from the time between its replies, but never fewer than
  // min(credits, least_window) requests, so the next one is always there
  // when the worker finishes one. Short methods so get up to all their
  // credits (a window of 64 left ZeroMQ's pipeline half empty: docs/
  // performance.md), long ones a few requests, and the rest wait in the
  // broker, where any worker with room can take them.
  static constexpr std::uint32_t first_window = 64;
  static constexpr std::uint32_t least_window = 2;
  static constexpr std::chrono::milliseconds window_work{10};
  // Args bytes a worker may hold, in maximum-size args frames: its memory
  // stays bounded by 64 x max_message_bytes whatever its credits, as it was
  // when the default was 64 credits.
  static constexpr std::size_t window_max_frames = 64;

  struct worker_entry {
    std::uint32_t generation = 0;  // bumped on removal: invalidates its key placements
    bool in_use = false;
    bool draining = false;  // said DISCONNECT: no new work, finishing what it holds
    std::string identity;
    std::string key;  // name of the key that registered it (CURVE); only it may speak for it
    std::string name;
    std::uint64_t pid = 0;
    std::uint32_t credits = 0;
    std::uint32_t in_flight = 0;
    // Of those, requests whose methods await calls they made (calls.cpp):
    // the worker serves others meanwhile, so its window does not count them.
    std::uint32_t awaiting = 0;
    std::uint32_t window = 0;         // the most it may hold now: 1..credits (adapt_window)
    std::size_t bytes_in_flight = 0;  // args bytes of the requests it holds
    std::size_t byte_budget = 0;      // it is sent nothing more while bytes_in_flight reaches this
    std::int64_t reply_gap_ns = -1;   // smoothed time between its replies while busy; -1: none yet
    bool busy_since_reply = false;    // it has held a request ever since its last reply
    time_point last_reply;
    std::size_t keys = 0;  // keys placed here
    time_point last_seen;
    std::vector<actor_entry*> actors;
    std::vector<std::uint8_t> hosts;  // by actor_entry::index: 1 if this worker hosts it
    // Requests for keys placed on this worker that wait for a credit, in order.
    std::deque<std::uint64_t> keyed_queue;

    std::uint32_t working() const { return in_flight - awaiting; }
    bool has_credit() const {
      return !draining && working() < window && in_flight < credits && bytes_in_flight < byte_budget;
    }
    bool hosts_actor(const actor_entry& a) const;
  };

  struct placement {
    std::uint32_t worker = no_worker;
    std::uint32_t generation = 0;
    // Requests for the key routed to this worker that have not ended
    // (queued for it or in flight): a RELEASE of the key is honoured only
    // at 0, so that one key never has two activations (lifecycle.cpp).
    std::uint32_t pending = 0;
    // Which placement this is: a worker that drops a name and claims it
    // again gets a new placement of the key with the same worker and
    // generation, and requests counted on the old one must not count on it.
    std::uint32_t serial = 0;
  };

  struct actor_entry {
    std::uint32_t index = 0;  // dense, for worker_entry::hosts
    bool listed = false;      // in waiting_actors_
    std::string name;
    std::vector<std::uint32_t> workers;  // live workers hosting this name
    std::size_t cursor = 0;              // round-robin position in `workers`
    // Requests waiting for any worker: unkeyed ones, and keyed ones that
    // arrived while no worker hosted the name.
    std::deque<std::uint64_t> queue;
    flat_string_map<placement> keys;
    // ---- bounds (budget.cpp) ----
    std::size_t queued_bytes = 0;  // held by its requests waiting in queues
    std::uint32_t requests = 0;    // its requests the broker holds, queued or in flight
    bool unhosted_listed = false;  // in unhosted_, to be forgotten if no worker comes back
    time_point unhosted_since{};   // when its last worker left
  };

  enum class request_state : std::uint8_t { queued, in_flight };

  // A request the broker holds. Its meta frame is decoded once, on arrival:
  // the offsets below locate the address's name, key and method in it.
  struct request {
    request_state state = request_state::queued;
    bool tell = false;
    bool answered = false;             // the client already got deadline_exceeded
    std::uint32_t worker = no_worker;  // in flight: holder; queued: whose keyed queue, if any
    std::uint64_t client_id = 0;
    std::string client;  // routing id: short, fits the small-string buffer
    actor_entry* actor = nullptr;
    time_point deadline;
    zmq::message_t meta;         // the client's meta frame
    zmq::message_t args;         // forwarded to the worker untouched
    std::size_t args_bytes = 0;  // its size, counted against the worker's byte budget while in flight
    std::uint16_t address_at = 0, address_size = 0, name_size = 0, method_at = 0, method_size = 0;
    std::uint32_t held_bytes = 0;  // counted in the queued-bytes budgets while it waits (budget.cpp)
    bool on_placement = false;     // counted in its key's placement.pending (lifecycle.cpp)
    bool parked = false;  // queued, but in no queue: awaiting a commit, its time or the restore window
    std::unique_ptr<durable_info> durable;  // set for a durable message (durable.cpp)
    std::uint32_t placed_serial = 0;        // ...on that placement of its key (placement::serial)
    // Its call chain (the meta's 7th element), forwarded to the worker.
    std::uint32_t chain_at = 0, chain_size = 0;
    // Unkeyed, from inside a method: workers (index and generation) whose
    // instance of its name waits up its chain and so must not get it
    // (calls.cpp). Usually empty.
    std::vector<std::uint64_t> avoid;
    // Made from inside a method whose request is in flight: its caller
    // waits for it, so it is never held back by its worker's credits
    // (calls.cpp), or an awaiting instance's queued messages, which hold
    // those credits, could starve it.
    bool called = false;
    std::uint64_t caller = 0;     // then the caller's request id, while the call counts in its calls_out
    std::uint32_t calls_out = 0;  // asks its method made that have not ended: while > 0 it awaits

    std::string_view text(std::uint16_t at, std::uint16_t size) const {
      return {static_cast<const char*>(meta.data()) + at, size};
    }
    std::string_view address() const { return text(address_at, address_size); }
    std::string_view key() const;
    std::string_view method() const { return text(method_at, method_size); }
    std::string_view chain() const { return {static_cast<const char*>(meta.data()) + chain_at, chain_size}; }
  };

  // ---- core.cpp: screening, requests, replies, deadlines ----
  void on_request(const peer& from, zmq::message_t& meta_frame, zmq::message_t& args, time_point now);
  // Counts and logs a refused command; it is dropped.
  void refuse_command(const peer& from, std::string_view what, time_point now);
  void accept_request(std::uint32_t ri, const protocol::address_parts& parts, time_point now);
  void on_worker_message(std::uint32_t wi, protocol::command c, std::span<zmq::message_t> body,
                         std::size_t body_count, time_point now);
  void on_reply(std::uint32_t wi, zmq::message_t& meta_frame, zmq::message_t& value, time_point now);
  std::string deadline_message(const request& r, time_point now) const;
  void reply_error(std::string_view client, std::uint64_t id, protocol::status code,
                   std::string_view message);
  void release(std::uint32_t ri);
  void expire_deadlines(time_point now);
  void erase_queued(std::uint32_t ri);

  // ---- calls.cpp: requests made from inside methods ----
  // Refuses (returns false after answering call_cycle) a request that would
  // wait on an instance already waiting up its own chain; fills `avoid`.
  bool screen_chain(std::string_view client, const protocol::request_meta& meta,
                    const protocol::address_parts& parts, std::vector<std::uint64_t>& avoid,
                    std::uint64_t& caller);
  bool queued_for_key(const worker_entry& w, std::string_view key) const;
  void start_call(std::uint32_t ri, std::uint64_t caller, time_point now);
  void end_call(request& r);
  void end_awaiting(request& r);
  bool avoids(const request& r, std::uint32_t wi) const;

  // ---- routing.cpp ----
  void dispatch(std::uint32_t ri, std::uint32_t wi, time_point now);
  void adapt_window(worker_entry& w, time_point now);
  bool placement_valid(const placement& p) const;
  std::uint32_t pick_worker(actor_entry& a, bool need_credit, const request* for_request = nullptr);
  bool route(std::uint32_t ri, time_point now);
  bool enqueue(std::deque<std::uint64_t>& q, std::uint32_t ri);
  bool enqueue_for_any(actor_entry& a, std::uint32_t ri);
  void unlist_waiting(std::size_t i);
  void pump(std::uint32_t wi, time_point now);
  void pump_waiting_names(std::uint32_t wi, time_point now);
  void place_waiting_keys(actor_entry& a, time_point now);

  // ---- workers.cpp ----
  actor_entry& actor_named(std::string_view name);
  void on_ready(const peer& from, const zmq::message_t& body, time_point now);
  void acknowledge_ready(std::string_view identity);
  void refuse_ready(std::string_view identity, std::string_view why, time_point now);
  std::uint32_t add_worker(std::string_view identity);
  void attach_to_actors(std::uint32_t wi, const std::vector<std::string>& names);
  void detach_from_actors(std::uint32_t wi);
  void forget_keys(std::uint32_t wi, const std::vector<actor_entry*>& actors);
  void remove_worker(std::uint32_t wi, time_point now);
  void on_heartbeat_for(const peer& sender, const zmq::message_t& named, time_point now);
  void on_worker_disconnect(std::uint32_t wi, time_point now);
  void send_heartbeats(time_point now);
  void send_command(std::string_view to, protocol::command c) { out_.push(to, c); }

  // ---- budget.cpp: what the broker's memory may hold ----
  bool take_queued_bytes(std::uint32_t ri);
  void give_back_queued_bytes(request& r);
  std::string over_budget_message(const request& r) const;
  std::uint32_t credit_cap() const;
  std::string names_refusal(const protocol::ready_info& info) const;
  void list_actor(actor_entry& a);
  void note_unhosted(actor_entry& a);
  void forget_unhosted_names(time_point now);
  bool forget_name(actor_entry& a, time_point now);
  std::string audit_bounds() const;

  // ---- lifecycle.cpp: how workers and keyed instances end ----
  void on_worker_gone(const peer& from, std::span<zmq::message_t> body, std::size_t count, time_point now);
  void on_release(std::uint32_t wi, std::span<zmq::message_t> body, std::size_t count);
  void count_on_placement(std::uint32_t ri, placement& p);
  void uncount_placement(std::uint32_t ri);
  std::string audit_pending() const;

  // ---- durable.cpp, durable_outcome.cpp, restore.cpp, durable_admin.cpp ----
  std::uint32_t new_request(std::string_view client, const protocol::request_meta& meta,
                            const protocol::address_parts& parts, actor_entry& actor,
                            zmq::message_t& meta_frame, zmq::message_t& args, time_point now);
  void init_durable(time_point now);
  void recover(durable::message& m, time_point now, bool on_disk);
  void on_durable_request(const peer& from, const protocol::request_meta& meta,
                          const protocol::address_parts& parts, zmq::message_t& meta_frame,
                          zmq::message_t& args, time_point now);
  void hold_until_commit(std::uint32_t ri);
  void describe_delivery(request& r, protocol::request_meta& meta);
  bool behind_uncommitted(std::string_view address) const;
  bool answer_known_id(std::string_view client, const protocol::request_meta& meta);
  void reply_value(std::string_view client, std::uint64_t id, std::string_view status_text,
                   std::string_view value);
  durable::message stored(const request& r) const;
  void commit_failed(const std::string& error, time_point now);
  void settle_uncommitted(const std::string& error, time_point now);
  void start_durable(std::uint32_t ri, time_point now);
  void park(std::uint32_t ri);
  void unpark(std::uint32_t ri);
  void schedule(std::uint32_t ri, time_point due);
  void run_schedule(time_point now);
  time_point durable_wakeup(time_point t) const;
  const protocol::retry_policy* policy_of(const request& r) const;
  bool on_durable_outcome(std::uint32_t ri, std::string_view status_text, zmq::message_t& value,
                          time_point now);
  void retry_later(std::uint32_t ri, std::chrono::milliseconds wait, time_point now);
  void to_queued(std::uint32_t ri);
  void finish_durable(std::uint32_t ri, std::string_view status_text, std::string_view value, time_point now);
  void bury(std::uint32_t ri, std::string_view reason, std::string_view status_text, std::string_view value,
            time_point now);
  void redeliver(std::vector<std::uint32_t>& lost, std::string_view worker_name, time_point now);
  static std::string message_text(std::string_view value);
  std::string audit_durable() const;
  void claim_keys(std::uint32_t wi, const std::vector<std::string>& keys);
  void note_registered(std::uint32_t wi, bool fresh, time_point now);
  void note_removed(std::uint32_t wi);
  // The event log (events.cpp).
  void log_joined(std::uint32_t wi, bool fresh) const;
  void log_leaving(std::uint32_t wi) const;
  void log_removed(std::uint32_t wi, std::size_t asks_lost) const;
  void log_refused_ready(std::string_view identity, std::string_view why) const;
  void on_ready_for(const peer& sender, const zmq::message_t& named, const zmq::message_t& info,
                    time_point now);
  bool hold_for_restore(std::uint32_t ri);
  void route_held(time_point now, bool all);
  void end_restore(time_point now);
  void on_dead_letters(std::string_view client, const protocol::request_meta& meta,
                       const zmq::message_t& args, time_point now);
  void change_dead_letters(std::string_view client, const protocol::request_meta& meta,
                           const zmq::message_t& args, time_point now);
  bool revive(durable::message& m, time_point now);
  template <class Packer>
  void pack_durable_stats(Packer& pk) const;

  // ---- management.cpp: the `$broker` actor; listing.cpp: its bounded listings ----
  void on_management(const peer& client, const protocol::request_meta& meta, const zmq::message_t& args,
                     time_point now);
  template <class Packer>
  void pack_actor_listing(Packer& pk, const listing_page& page) const;
  template <class Packer>
  void pack_worker_listing(Packer& pk, const listing_page& page, bool admin) const;
  template <class Packer>
  void pack_bounds_stats(Packer& pk) const;

  broker_options opt_;
  outbox out_;
  broker_counters count_;
  time_point started_;
  time_point next_heartbeat_;

  std::vector<worker_entry> workers_;
  std::vector<std::uint32_t> free_workers_;
  string_map<std::uint32_t> worker_by_identity_;

  string_map<std::unique_ptr<actor_entry>> actors_;
  // Actors whose queue may be non-empty. A returned credit looks only here,
  // so its cost does not grow with the names a worker hosts.
  std::vector<actor_entry*> waiting_actors_;
  std::size_t waiting_cursor_ = 0;  // round-robin over waiting_actors_

  slot_table<request> requests_;
  deadline_heap<time_point> deadlines_;  // by request index
  std::size_t queued_ = 0, in_flight_ = 0;
  std::uint32_t placement_serial_ = 0;  // the last placement::serial given

  std::string meta_buf_;                    // reused while encoding
  std::unique_ptr<durable_state> durable_;  // durable messages (durable.cpp); always set

  // ---- bounds (budget.cpp, lifecycle.cpp) ----
  time_point now_{};  // the time of the input being handled
  bounds_counters bounds_;
  std::size_t queued_bytes_ = 0;
  std::vector<actor_entry*> actor_list_;  // by actor_entry::index: dense; the order of `$broker actors`
  std::deque<actor_entry*> unhosted_;     // names whose last worker left, about oldest first
  std::string removal_why_;               // said in the worker_lost replies of a removal, if set

  // ---- roles and keys (CURVE on) ----
  std::shared_ptr<const name_policy> policy_;
  std::function<void(const std::string&)> log_;
  struct refusal_log {
    time_point last;
    std::uint64_t left_out = 0;
  };
  string_map<refusal_log> refusals_;  // by key name: bounded by the keys the broker accepts
};

}  // namespace troupe
