#include "troupe/broker.hpp"

#include "troupe/flat_string_map.hpp"
#include "troupe/string_map.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <functional>
#include <string_view>
#include <vector>
#include <zmq.hpp>

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;
using protocol::command;
using protocol::status;

constexpr std::uint32_t no_index = 0xffffffff;
constexpr std::uint64_t max_timeout_ms = 86'400'000;  // one day

// A request id on the broker→worker leg: slot index plus the slot's
// generation, so a stale or forged id never matches a reused slot.
std::uint64_t make_id(std::uint32_t index, std::uint32_t generation) {
  return (static_cast<std::uint64_t>(generation) << 32) | index;
}

struct actor_entry;

struct worker_entry {
  std::uint32_t generation = 0;
  bool in_use = false;
  bool draining = false;  // said DISCONNECT: no new work, finishing what it holds
  std::string identity;
  std::string name;
  std::uint64_t pid = 0;
  std::uint32_t credits = 0;
  std::uint32_t in_flight = 0;
  std::size_t keys = 0;  // keys placed here
  clock::time_point last_seen;
  std::vector<actor_entry*> actors;
  std::vector<std::uint8_t> hosts;  // by actor_entry::index: 1 if this worker hosts it
  // Requests for keys placed on this worker that wait for a credit, in order.
  std::deque<std::uint64_t> keyed_queue;

  bool has_credit() const { return !draining && in_flight < credits; }
};

struct placement {
  std::uint32_t worker = no_index;
  std::uint32_t generation = 0;
};

struct actor_entry {
  std::uint32_t index = 0;  // dense, for worker_entry::hosts
  bool listed = false;      // in broker::state::waiting_actors
  std::string name;
  std::vector<std::uint32_t> workers;  // live workers hosting this name
  std::size_t cursor = 0;              // round-robin position in `workers`
  // Requests waiting for any worker: unkeyed ones, and keyed ones that
  // arrived while no worker hosted the name.
  std::deque<std::uint64_t> queue;
  flat_string_map<placement> keys;
};

enum class slot_state : std::uint8_t { free, queued, in_flight };

struct request_slot {
  std::uint32_t generation = 0;
  slot_state state = slot_state::free;
  bool tell = false;
  bool answered = false;  // the client already got deadline_exceeded
  std::uint32_t worker = no_index;
  std::size_t heap_pos = no_index;
  std::uint64_t client_id = 0;
  std::string client;  // routing id: short, fits the small-string buffer
  actor_entry* actor = nullptr;
  clock::time_point deadline;
  zmq::message_t meta;  // the client's meta frame, parsed again on dispatch
  zmq::message_t args;  // forwarded to the worker untouched
};

struct counters {
  std::uint64_t requests = 0, replies = 0, errors = 0, dropped = 0;
  std::uint64_t bad_requests = 0, overloaded = 0, deadline_exceeded = 0, worker_lost = 0, unknown_actor = 0;
};

}  // namespace

struct broker::state {
  broker_options opt;
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string bound;
  clock::time_point started = clock::now();
  clock::time_point next_heartbeat;

  std::vector<worker_entry> workers;
  std::vector<std::uint32_t> free_workers;
  string_map<std::uint32_t> worker_by_identity;

  string_map<std::unique_ptr<actor_entry>> actors;
  // Actors whose queue may be non-empty. A returned credit looks only here,
  // so its cost does not grow with the names a worker hosts.
  std::vector<actor_entry*> waiting_actors;
  std::size_t waiting_cursor = 0;  // round-robin over waiting_actors

  std::vector<request_slot> slots;
  std::vector<std::uint32_t> free_slots;
  std::vector<std::uint32_t> deadline_heap;  // slot indices, min-heap on deadline
  std::size_t queued = 0, in_flight = 0;

  counters count;

  // Reused buffers: the hot path allocates nothing once they have grown.
  std::string meta_buf;
  std::string value_buf;
  std::array<zmq::message_t, 4> frames;

  explicit state(broker_options o) : opt(std::move(o)) {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::sndhwm, 0);  // flow is bounded by credits and queue limits
    router.set(zmq::sockopt::rcvhwm, 0);
    // A hard cap well above the soft limit protects memory from a peer that
    // sends gigabytes; the soft limit below still gets a bad_request reply.
    router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(opt.limits.max_message_bytes * 4 + 4096));
    router.bind(opt.listen);
    bound = router.get(zmq::sockopt::last_endpoint);
  }

  // ---- sending -----------------------------------------------------------

  void send_frames(std::string_view identity, command cmd, std::string_view f1, zmq::message_t* f2) {
    const auto hdr = protocol::header(cmd);
    const bool has_body = !f1.empty() || f2;
    router.send(zmq::buffer(identity), zmq::send_flags::sndmore);
    router.send(zmq::buffer(hdr), has_body ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (!has_body) return;
    router.send(zmq::buffer(f1), f2 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (f2) router.send(*f2, zmq::send_flags::none);
  }

  void reply_error(std::string_view client, std::uint64_t id, status code, std::string_view message) {
    protocol::encode_reply_meta(meta_buf, id, protocol::to_string(code));
    protocol::encode_str(value_buf, message);
    zmq::message_t value(value_buf.data(), value_buf.size());
    send_frames(client, command::reply, meta_buf, &value);
    ++count.replies;
    ++count.errors;
    switch (code) {
      case status::bad_request:
        ++count.bad_requests;
        break;
      case status::overloaded:
        ++count.overloaded;
        break;
      case status::deadline_exceeded:
        ++count.deadline_exceeded;
        break;
      case status::worker_lost:
        ++count.worker_lost;
        break;
      case status::unknown_actor:
        ++count.unknown_actor;
        break;
      default:
        break;
    }
  }

  void reply_value(std::string_view client, std::uint64_t id, const msgpack::sbuffer& value) {
    protocol::encode_reply_meta(meta_buf, id, "ok");
    zmq::message_t v(value.data(), value.size());
    send_frames(client, command::reply, meta_buf, &v);
    ++count.replies;
  }

  // ---- request slots and deadlines ----------------------------------------

  std::uint32_t alloc_slot() {
    if (free_slots.empty()) {
      slots.emplace_back();
      return static_cast<std::uint32_t>(slots.size() - 1);
    }
    const auto i = free_slots.back();
    free_slots.pop_back();
    return i;
  }

  void free_slot(std::uint32_t i) {
    auto& s = slots[i];
    heap_remove(i);
    if (s.state == slot_state::queued) --queued;
    if (s.state == slot_state::in_flight) --in_flight;
    s.state = slot_state::free;
    ++s.generation;
    s.answered = false;
    s.worker = no_index;
    s.actor = nullptr;
    s.args = zmq::message_t();
    s.meta = zmq::message_t();
    free_slots.push_back(i);
  }

  request_slot* slot_by_id(std::uint64_t id) {
    const auto index = static_cast<std::uint32_t>(id & 0xffffffff);
    const auto gen = static_cast<std::uint32_t>(id >> 32);
    if (index >= slots.size()) return nullptr;
    auto& s = slots[index];
    if (s.state == slot_state::free || s.generation != gen) return nullptr;
    return &s;
  }

  bool heap_less(std::size_t a, std::size_t b) const {
    return slots[deadline_heap[a]].deadline < slots[deadline_heap[b]].deadline;
  }
  void heap_swap(std::size_t a, std::size_t b) {
    std::swap(deadline_heap[a], deadline_heap[b]);
    slots[deadline_heap[a]].heap_pos = a;
    slots[deadline_heap[b]].heap_pos = b;
  }
  void heap_up(std::size_t i) {
    while (i > 0) {
      const auto parent = (i - 1) / 2;
      if (!heap_less(i, parent)) break;
      heap_swap(i, parent);
      i = parent;
    }
  }
  void heap_down(std::size_t i) {
    for (;;) {
      const auto l = 2 * i + 1, r = l + 1;
      auto smallest = i;
      if (l < deadline_heap.size() && heap_less(l, smallest)) smallest = l;
      if (r < deadline_heap.size() && heap_less(r, smallest)) smallest = r;
      if (smallest == i) break;
      heap_swap(i, smallest);
      i = smallest;
    }
  }
  void heap_push(std::uint32_t slot) {
    deadline_heap.push_back(slot);
    slots[slot].heap_pos = deadline_heap.size() - 1;
    heap_up(deadline_heap.size() - 1);
  }
  void heap_remove(std::uint32_t slot) {
    const auto pos = slots[slot].heap_pos;
    if (pos == no_index) return;
    const auto last = deadline_heap.size() - 1;
    if (pos != last) {
      heap_swap(pos, last);
      deadline_heap.pop_back();
      heap_down(pos);
      heap_up(pos);
    } else {
      deadline_heap.pop_back();
    }
    slots[slot].heap_pos = no_index;
  }

  // ---- routing ------------------------------------------------------------

  // Sends a slot's request to worker `wi`, which has a free credit.
  void dispatch(std::uint32_t si, std::uint32_t wi) {
    auto& s = slots[si];
    auto& w = workers[wi];
    auto meta = protocol::decode_request_meta(s.meta.data(), s.meta.size());  // validated on arrival
    const auto now = clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.deadline - now).count();
    meta->id = make_id(si, s.generation);
    meta->timeout_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(left, 1));
    protocol::encode_request_meta(meta_buf, *meta);
    if (s.state == slot_state::queued) --queued;
    s.state = slot_state::in_flight;
    s.worker = wi;
    ++in_flight;
    ++w.in_flight;
    send_frames(w.identity, command::request, meta_buf, &s.args);
  }

  bool placement_valid(const placement& p) const {
    return p.worker != no_index && p.worker < workers.size() && workers[p.worker].in_use &&
           workers[p.worker].generation == p.generation;
  }

  // Picks a live, non-draining worker hosting `a`, preferring one with a
  // free credit; round-robin so load spreads evenly.
  std::uint32_t pick_worker(actor_entry& a, bool need_credit) {
    const auto n = a.workers.size();
    std::uint32_t fallback = no_index;
    for (std::size_t i = 0; i < n; ++i) {
      const auto wi = a.workers[(a.cursor + i) % n];
      auto& w = workers[wi];
      if (w.draining) continue;
      if (w.has_credit()) {
        a.cursor = (a.cursor + i + 1) % n;
        return wi;
      }
      if (fallback == no_index) fallback = wi;
    }
    if (need_credit) return no_index;
    if (fallback != no_index) a.cursor = (a.cursor + 1) % std::max<std::size_t>(n, 1);
    return fallback;
  }

  // Routes an accepted request (slot already filled). Returns false when it
  // was answered `overloaded` and freed.
  bool route(std::uint32_t si, std::string_view key) {
    auto& s = slots[si];
    auto& a = *s.actor;
    if (key.empty()) {
      if (a.queue.empty()) {
        const auto wi = pick_worker(a, true);
        if (wi != no_index) {
          dispatch(si, wi);
          return true;
        }
      }
      return enqueue_for_any(a, si);
    }
    placement* placed = a.keys.find(key);
    if (!placed || !placement_valid(*placed)) {
      const auto wi = pick_worker(a, false);
      if (wi == no_index) return enqueue_for_any(a, si);  // no live worker: wait for one
      if (!placed) placed = &a.keys.insert(key, placement{});
      *placed = placement{wi, workers[wi].generation};
      ++workers[wi].keys;
    }
    const auto wi = placed->worker;
    auto& w = workers[wi];
    if (w.keyed_queue.empty() && w.has_credit()) {
      dispatch(si, wi);
      return true;
    }
    slots[si].worker = wi;  // whose keyed queue it waits in, for erase_queued
    return enqueue(w.keyed_queue, si);
  }

  bool enqueue(std::deque<std::uint64_t>& q, std::uint32_t si) {
    auto& s = slots[si];
    if (q.size() >= opt.queue_limit) {
      if (!s.tell) reply_error(s.client, s.client_id, status::overloaded, "queue is full");
      free_slot(si);
      return false;
    }
    if (s.state != slot_state::queued) {
      s.state = slot_state::queued;
      ++queued;
    }
    q.push_back(make_id(si, s.generation));
    return true;
  }

  // Queues a request for whichever worker hosting `a` frees a credit first.
  bool enqueue_for_any(actor_entry& a, std::uint32_t si) {
    slots[si].worker = no_index;
    if (!enqueue(a.queue, si)) return false;
    if (!a.listed) {
      a.listed = true;
      waiting_actors.push_back(&a);
    }
    return true;
  }

  void unlist_waiting(std::size_t i) {
    waiting_actors[i]->listed = false;
    waiting_actors[i] = waiting_actors.back();
    waiting_actors.pop_back();
  }

  static std::string_view key_of(const request_slot& s) {
    auto meta = protocol::decode_request_meta(s.meta.data(), s.meta.size());
    return protocol::split_address(meta->address)->key;
  }

  // Gives worker `wi` work up to its credits: first its keyed queue, then the
  // queues of the names it hosts, round-robin.
  void pump(std::uint32_t wi) {
    auto& w = workers[wi];
    while (w.has_credit() && !w.keyed_queue.empty()) {
      const auto id = w.keyed_queue.front();
      w.keyed_queue.pop_front();
      if (slot_by_id(id)) dispatch(static_cast<std::uint32_t>(id), wi);
    }
    // Then the waiting names it hosts, round-robin; stop after a full pass
    // that found nothing for this worker.
    std::size_t fruitless = 0;
    while (w.has_credit() && fruitless < waiting_actors.size()) {
      if (waiting_cursor >= waiting_actors.size()) waiting_cursor = 0;
      auto& a = *waiting_actors[waiting_cursor];
      if (a.queue.empty()) {
        unlist_waiting(waiting_cursor);  // another actor moved into this place
        continue;
      }
      ++waiting_cursor;
      if (a.index >= w.hosts.size() || !w.hosts[a.index]) {  // names seen after it registered
        ++fruitless;
        continue;
      }
      fruitless = 0;
      const auto id = a.queue.front();
      a.queue.pop_front();
      auto* s = slot_by_id(id);
      if (!s) continue;
      const auto si = static_cast<std::uint32_t>(id);
      const auto key = key_of(*s);
      if (key.empty()) {
        dispatch(si, wi);
      } else {
        route(si, key);  // waited for any worker; place its key now
      }
    }
  }

  // Keyed requests that waited in a name's queue for a worker to appear are
  // placed as soon as one does, so a later request for the same key cannot
  // overtake them.
  void place_waiting_keys(actor_entry& a) {
    std::deque<std::uint64_t> waiting;
    waiting.swap(a.queue);
    for (const auto id : waiting) {
      auto* s = slot_by_id(id);
      if (!s) continue;
      const auto si = static_cast<std::uint32_t>(id);
      const auto key = key_of(*s);
      if (key.empty()) {
        a.queue.push_back(id);  // still listed: the queue was not empty
      } else {
        route(si, key);
      }
    }
  }

  // ---- workers ------------------------------------------------------------

  actor_entry& actor_named(std::string_view name) {
    auto it = actors.find(name);
    if (it == actors.end()) {
      auto a = std::make_unique<actor_entry>();
      a->index = static_cast<std::uint32_t>(actors.size());
      a->name = std::string(name);
      it = actors.emplace(a->name, std::move(a)).first;
    }
    return *it->second;
  }

  void on_ready(std::string_view identity, const zmq::message_t& body) {
    auto info = protocol::decode_ready(body.data(), body.size());
    if (!info) {
      ++count.dropped;
      return;
    }
    std::uint32_t wi;
    if (auto it = worker_by_identity.find(identity); it != worker_by_identity.end()) {
      wi = it->second;
      detach_from_actors(wi);  // re-registration replaces the hosted names
    } else {
      if (free_workers.empty()) {
        workers.emplace_back();
        wi = static_cast<std::uint32_t>(workers.size() - 1);
      } else {
        wi = free_workers.back();
        free_workers.pop_back();
      }
      auto& w = workers[wi];
      w.in_use = true;
      w.identity = std::string(identity);
      w.in_flight = 0;
      w.keys = 0;
      worker_by_identity.emplace(w.identity, wi);
    }
    auto& w = workers[wi];
    w.name = std::move(info->name);
    w.pid = info->pid;
    w.credits = static_cast<std::uint32_t>(info->credits);
    w.draining = false;
    w.last_seen = clock::now();
    w.actors.clear();
    for (const auto& name : info->actors) {
      auto& a = actor_named(name);
      if (a.index >= w.hosts.size()) w.hosts.resize(actors.size(), 0);
      if (w.hosts[a.index]) continue;  // listed twice
      w.hosts[a.index] = 1;
      w.actors.push_back(&a);
      a.workers.push_back(wi);
    }
    for (auto* a : w.actors) place_waiting_keys(*a);
    pump(wi);
  }

  void detach_from_actors(std::uint32_t wi) {
    auto& w = workers[wi];
    std::fill(w.hosts.begin(), w.hosts.end(), 0);
    for (auto* a : w.actors) {
      auto& ws = a->workers;
      ws.erase(std::remove(ws.begin(), ws.end(), wi), ws.end());
      if (a->cursor >= ws.size()) a->cursor = 0;
    }
  }

  // Forgets a worker: answers what it held with worker_lost (unless it left
  // gracefully and held nothing), and places its waiting keyed requests again.
  void remove_worker(std::uint32_t wi) {
    auto& w = workers[wi];
    for (std::uint32_t si = 0; si < slots.size(); ++si) {
      auto& s = slots[si];
      if (s.state != slot_state::in_flight || s.worker != wi) continue;
      if (!s.tell && !s.answered)
        reply_error(s.client, s.client_id, status::worker_lost,
                    "worker '" + w.name + "' was lost while handling the request");
      free_slot(si);
    }
    // Forget its keys now rather than on their next request, so the broker's
    // memory for keys follows the live workers.
    if (w.keys > 0)
      for (auto* a : w.actors)
        a->keys.erase_if([&](std::string_view, const placement& p) { return p.worker == wi; });
    w.keys = 0;
    detach_from_actors(wi);
    worker_by_identity.erase(w.identity);
    std::deque<std::uint64_t> waiting;
    waiting.swap(w.keyed_queue);
    w.in_use = false;
    ++w.generation;  // invalidates every key placed here
    w.actors.clear();
    w.in_flight = 0;
    free_workers.push_back(wi);
    for (const auto id : waiting) {
      auto* s = slot_by_id(id);
      if (s) route(static_cast<std::uint32_t>(id), key_of(*s));  // still counted as queued
    }
  }

  void on_reply(std::uint32_t wi, zmq::message_t& meta_msg, zmq::message_t& value) {
    auto meta = protocol::decode_reply_meta(meta_msg.data(), meta_msg.size());
    auto* s = meta ? slot_by_id(meta->id) : nullptr;
    if (!s || s->state != slot_state::in_flight || s->worker != wi) {
      ++count.dropped;  // malformed, late after a broker restart, or forged
      return;
    }
    const auto si = static_cast<std::uint32_t>(meta->id & 0xffffffff);
    auto& w = workers[wi];
    --w.in_flight;
    if (s->tell || s->answered) {
      if (s->answered) ++count.dropped;  // late: the client got deadline_exceeded
    } else {
      protocol::encode_reply_meta(meta_buf, s->client_id, meta->status_text);
      send_frames(s->client, command::reply, meta_buf, &value);
      ++count.replies;
      if (meta->status_text != "ok") ++count.errors;
    }
    free_slot(si);
    if (w.draining && w.in_flight == 0) {
      remove_worker(wi);
    } else {
      pump(wi);
    }
  }

  // A HEARTBEAT from a worker's heartbeat socket names the worker's work
  // socket. It is answered on the socket it came from, so the worker knows
  // we are alive; DISCONNECT there says we do not know that worker.
  void on_heartbeat_for(std::string_view sender, const zmq::message_t& named) {
    const std::string_view worker_id(static_cast<const char*>(named.data()), named.size());
    const auto it = worker_by_identity.find(worker_id);
    if (it == worker_by_identity.end()) {
      send_frames(sender, command::disconnect, {}, nullptr);
      return;
    }
    workers[it->second].last_seen = clock::now();
    send_frames(sender, command::heartbeat, {}, nullptr);
  }

  void on_worker_disconnect(std::uint32_t wi) {
    auto& w = workers[wi];
    w.draining = true;
    send_frames(w.identity, command::disconnect, {}, nullptr);
    if (w.in_flight == 0) remove_worker(wi);
  }

  // ---- clients ------------------------------------------------------------

  void on_request(std::string_view client, zmq::message_t& meta_msg, zmq::message_t& args) {
    ++count.requests;
    auto meta = protocol::decode_request_meta(meta_msg.data(), meta_msg.size());
    if (!meta)
      return reply_error(client, 0, status::bad_request,
                         "request meta is not [id, address, method, flags, timeout_ms]");
    const bool tell = meta->is_tell();
    auto refuse = [&](status code, std::string_view message) {
      if (tell) {
        ++count.dropped;
        return;
      }
      reply_error(client, meta->id, code, message);
    };
    if (meta->id == 0) return refuse(status::bad_request, "request id 0 is reserved");
    if ((meta->flags & ~protocol::flag_tell) != 0) return refuse(status::bad_request, "unknown flags");
    auto parts = protocol::split_address(meta->address);
    if (!parts) return refuse(status::bad_request, "malformed address");
    if (!protocol::valid_method_name(meta->method))
      return refuse(status::bad_request, "malformed method name");
    if (args.size() > opt.limits.max_message_bytes)
      return refuse(status::bad_request, "args frame is over the size limit");

    if (parts->name == protocol::management_actor) return on_management(client, *meta);

    auto it = actors.find(parts->name);
    if (it == actors.end()) {
      if (tell) {
        ++count.dropped;
        return;
      }
      return reply_error(client, meta->id, status::unknown_actor,
                         "no worker hosts actor '" + std::string(parts->name) + "'");
    }

    const auto si = alloc_slot();
    auto& s = slots[si];
    s.state = slot_state::queued;  // until dispatched
    ++queued;
    s.tell = tell;
    s.client_id = meta->id;
    s.client.assign(client);
    s.actor = it->second.get();
    // Clamped so that a hostile value cannot overflow the clock arithmetic.
    const auto timeout =
        meta->timeout_ms
            ? std::chrono::milliseconds(std::min<std::uint64_t>(meta->timeout_ms, max_timeout_ms))
            : opt.default_timeout;
    s.deadline = clock::now() + timeout;
    // Moving a small zmq message moves its bytes too, so re-base the key
    // view onto the slot's copy instead of parsing the frame again.
    const auto key_offset =
        parts->key.empty() ? 0 : parts->key.data() - static_cast<const char*>(meta_msg.data());
    s.meta = std::move(meta_msg);
    s.args = std::move(args);
    heap_push(si);
    const std::string_view key =
        parts->key.empty()
            ? std::string_view{}
            : std::string_view(static_cast<const char*>(s.meta.data()) + key_offset, parts->key.size());
    route(si, key);
  }

  void on_management(std::string_view client, const protocol::request_meta& meta) {
    if (meta.is_tell()) return;
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> pk(out);
    if (meta.method == "ping") {
      pk.pack(std::string_view("pong"));
    } else if (meta.method == "stats") {
      pack_stats(pk);
    } else if (meta.method == "actors") {
      pack_actors(pk);
    } else if (meta.method == "workers") {
      pack_workers(pk);
    } else {
      return reply_error(client, meta.id, status::unknown_method,
                         "$broker has no method '" + std::string(meta.method) + "'");
    }
    reply_value(client, meta.id, out);
  }

  std::size_t live_workers() const {
    std::size_t n = 0;
    for (const auto& w : workers) n += w.in_use ? 1 : 0;
    return n;
  }

  template <class P>
  void pack_actors(P& pk) {
    pk.pack_map(static_cast<std::uint32_t>(actors.size()));
    for (const auto& [name, a] : actors) {
      pk.pack(std::string_view(name));
      pk.pack_map(3);
      pk.pack(std::string_view("workers"));
      pk.pack(a->workers.size());
      pk.pack(std::string_view("queued"));
      pk.pack(a->queue.size());
      pk.pack(std::string_view("keys"));
      pk.pack(a->keys.size());
    }
  }

  template <class P>
  void pack_workers(P& pk) {
    pk.pack_array(static_cast<std::uint32_t>(live_workers()));
    for (const auto& w : workers) {
      if (!w.in_use) continue;
      pk.pack_map(8);
      pk.pack(std::string_view("name"));
      pk.pack(std::string_view(w.name));
      pk.pack(std::string_view("keys"));
      pk.pack(w.keys);
      pk.pack(std::string_view("pid"));
      pk.pack(w.pid);
      pk.pack(std::string_view("credits"));
      pk.pack(w.credits);
      pk.pack(std::string_view("in_flight"));
      pk.pack(w.in_flight);
      pk.pack(std::string_view("queued"));
      pk.pack(w.keyed_queue.size());
      pk.pack(std::string_view("actors"));
      pk.pack_array(static_cast<std::uint32_t>(w.actors.size()));
      for (auto* a : w.actors) pk.pack(std::string_view(a->name));
      pk.pack(std::string_view("state"));
      pk.pack(std::string_view(w.draining ? "draining" : "ready"));
    }
  }

  template <class P>
  void pack_stats(P& pk) {
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count();
    pk.pack_map(14);
    auto kv = [&](std::string_view k, auto v) {
      pk.pack(k);
      pk.pack(v);
    };
    kv("uptime_ms", static_cast<std::uint64_t>(uptime));
    kv("workers", live_workers());
    pk.pack(std::string_view("actors"));
    pack_actors(pk);
    kv("queued", queued);
    kv("in_flight", in_flight);
    kv("requests", count.requests);
    kv("replies", count.replies);
    kv("errors", count.errors);
    kv("dropped", count.dropped);
    kv("bad_requests", count.bad_requests);
    kv("overloaded", count.overloaded);
    kv("deadline_exceeded", count.deadline_exceeded);
    kv("worker_lost", count.worker_lost);
    kv("unknown_actor", count.unknown_actor);
  }

  // ---- the loop -------------------------------------------------------------

  void handle_message(std::size_t nframes) {
    // frames[0] identity, [1] header, [2..] body; nframes counts them all,
    // capped at frames.size() + 1 when the message had more.
    const std::string_view identity(static_cast<const char*>(frames[0].data()), frames[0].size());
    const auto cmd = nframes >= 2 ? protocol::parse_header(frames[1].data(), frames[1].size()) : std::nullopt;
    if (!cmd) {
      ++count.dropped;
      return;
    }
    const std::size_t body = nframes - 2;
    if (*cmd == command::request) {
      if (body != 2)
        return reply_error(identity, 0, status::bad_request,
                           "REQUEST needs exactly 2 frames after the header");
      return on_request(identity, frames[2], frames[3]);
    }
    if (*cmd == command::heartbeat && body == 1) return on_heartbeat_for(identity, frames[2]);
    const auto it = worker_by_identity.find(identity);
    if (*cmd == command::ready) {
      if (body != 1) {
        ++count.dropped;
        return;
      }
      return on_ready(identity, frames[2]);
    }
    if (it == worker_by_identity.end()) {
      // A worker we do not know (we restarted, or declared it dead): ask it
      // to register again. A DISCONNECT from it needs no answer.
      if (*cmd != command::disconnect) send_frames(identity, command::disconnect, {}, nullptr);
      if (*cmd == command::reply) ++count.dropped;
      return;
    }
    const auto wi = it->second;
    workers[wi].last_seen = clock::now();
    switch (*cmd) {
      case command::reply:
        if (body != 2) {
          ++count.dropped;
          return;
        }
        return on_reply(wi, frames[2], frames[3]);
      case command::heartbeat:
        return;
      case command::disconnect:
        return on_worker_disconnect(wi);
      default:
        ++count.dropped;  // REPLY-only commands from a worker in the wrong shape
    }
  }

  // Receives one multipart message into `frames`; returns the number of
  // frames, or 0 when nothing was waiting.
  std::size_t receive() {
    std::size_t n = 0;
    for (;;) {
      zmq::message_t& target = n < frames.size() ? frames[n] : scratch;
      const auto got = router.recv(target, n == 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
      if (!got) return 0;
      ++n;
      if (!target.more()) return std::min(n, frames.size() + 1);
    }
  }
  zmq::message_t scratch;

  void expire_deadlines(clock::time_point now) {
    while (!deadline_heap.empty()) {
      const auto si = deadline_heap.front();
      auto& s = slots[si];
      if (s.deadline > now) break;
      heap_remove(si);
      if (!s.tell && !s.answered)
        reply_error(s.client, s.client_id, status::deadline_exceeded, "the request's timeout passed");
      if (s.state == slot_state::queued) {
        erase_queued(si);
        free_slot(si);
      } else {
        // The worker still holds it and owes a reply, which returns its
        // credit; the slot lives until then.
        s.answered = true;
      }
    }
  }

  // A queued request waits in its worker's keyed queue when it has a worker
  // (set by route), else in its name's queue (enqueue_for_any). An id left
  // behind would only be skipped by pump, but would hold a place under
  // queue_limit until then.
  void erase_queued(std::uint32_t si) {
    const auto& s = slots[si];
    auto& q = s.worker != no_index ? workers[s.worker].keyed_queue : s.actor->queue;
    auto it = std::find(q.begin(), q.end(), make_id(si, s.generation));
    if (it != q.end()) q.erase(it);
  }

  void heartbeat(clock::time_point now) {
    const auto expiry = opt.heartbeat * opt.liveness;
    for (std::uint32_t wi = 0; wi < workers.size(); ++wi) {
      auto& w = workers[wi];
      if (!w.in_use) continue;
      if (now - w.last_seen > expiry) {
        remove_worker(wi);
        continue;
      }
      send_frames(w.identity, command::heartbeat, {}, nullptr);
    }
    next_heartbeat = now + opt.heartbeat;
  }

  void run(const std::atomic<bool>& stop) {
    next_heartbeat = clock::now() + opt.heartbeat;
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    while (!stop.load(std::memory_order_relaxed)) {
      auto now = clock::now();
      auto wake = std::min(next_heartbeat, now + std::chrono::milliseconds(100));
      if (!deadline_heap.empty()) wake = std::min(wake, slots[deadline_heap.front()].deadline);
      const auto wait = std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
      try {
        zmq::poll(items, 1, std::chrono::milliseconds(wait));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      // Drain what is waiting (bounded, so timers still run under load).
      for (int i = 0; i < 4096; ++i) {
        const auto n = receive();
        if (n == 0) break;
        handle_message(n);
      }
      now = clock::now();
      expire_deadlines(now);
      if (now >= next_heartbeat) heartbeat(now);
    }
  }
};

broker::broker(broker_options options) : state_(std::make_unique<state>(std::move(options))) {}
broker::~broker() = default;
std::string broker::endpoint() const { return state_->bound; }
void broker::run(const std::atomic<bool>& stop) { state_->run(stop); }

}  // namespace troupe
