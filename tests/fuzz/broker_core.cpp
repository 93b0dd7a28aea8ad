// The broker's state machine (transport/broker/core.hpp), with no socket:
// eight peers (four meant as clients, four as workers, though any peer may
// send anything) and a clock moved by the input. The input is a program of
// steps: well-formed READY, REQUEST, REPLY, HEARTBEAT and DISCONNECT
// messages, raw frames, and time steps that call tick(). The harness keeps
// a model of what each peer has said and checks, after every step:
//
// - core.audit() is empty (counts, queues, placements agree);
// - every REPLY has a meta that decodes and a value that is one msgpack
//   value; a worker's reply reaches its client byte for byte, with the
//   worker's status;
// - every tracked ask gets at most one REPLY, a tell none;
// - a worker only gets REQUESTs for names its latest READY listed, none
//   after it said DISCONNECT, and never more than its credits at once
//   (REQUESTs sent to it minus its REPLYs the broker accepted; calls from
//   awaiting methods, which carry a call chain, may pass them); the
//   broker's `$broker workers` agrees with that count;
// - a keyed address stays on its worker while that worker lives and hosts
//   the name (issue 16, finding 2);
// - a worker that goes away leaves no ask it held unanswered;
// - names() and placed_keys() stay within what the peers registered and
//   asked for;
// and at the end, after every worker falls silent and the clock passes
// every deadline and the liveness window: nothing is queued, in flight or
// placed, and every tracked ask got exactly one REPLY.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "broker/core.hpp"
#include "fuzz_support.hpp"

namespace {

using namespace std::chrono_literals;
using troupe::broker_core;
using troupe::fuzz::hex;
using troupe::protocol::command;

constexpr std::size_t peer_count = 8;
const std::string peers[peer_count] = {"client-0", "client-1", "client-2", "client-3",
                                       "worker-0", "worker-1", "worker-2", "worker-3"};
const std::string admin = "admin";  // asks `$broker workers` after every step
constexpr std::string_view names[] = {"squares", "counter", "echo", "alpha", "beta"};
constexpr std::string_view keys[] = {"alice", "bob", "k"};
constexpr std::string_view statuses[] = {"ok", "actor_error", "bad_args", "a_newer_code", "unknown_method"};

// Ids of the asks the harness tracks; raw frames that would reuse one are
// not delivered, so that each tracked id means one ask.
constexpr std::uint64_t tracked_base = 0x7472'0000'0000'0000;
constexpr std::uint64_t admin_base = 0x6164'0000'0000'0000;

struct ask {
  std::size_t client = 0;
  std::uint64_t id = 0;
  bool tell = false;
  std::string args;
  int replies = 0;
  int dispatched = 0;
};

struct held_request {
  std::uint64_t tag = 0;  // a tracked ask's id, or 0
  std::string address;
};

struct worker_model {
  bool registered = false;    // since its READY was applied, until `$broker workers` no longer lists it
  bool draining = false;      // said DISCONNECT while registered
  std::uint64_t credits = 0;  // as the broker applied them (it may cap what was asked)
  std::set<std::string, std::less<>> hosts;    // its latest applied READY's names
  std::map<std::uint64_t, held_request> held;  // REQUESTs sent to it, not yet replied (this registration)
};

// A READY that decoded, before `$broker workers` says whether it was applied.
struct pending_ready {
  std::size_t peer;
  std::set<std::string, std::less<>> actors;
  std::uint64_t credits;
};

// A worker's reply the broker accepted; it must reach the client as it was.
struct expected_reply {
  std::size_t client;
  std::uint64_t id;
  std::string status, value;
};

// FUZZ_TRACE=1 in the environment prints every message in and out, for
// reading a reproducer.
const bool tracing = std::getenv("FUZZ_TRACE") != nullptr;

void trace(std::string_view dir, std::string_view peer, const std::vector<std::string>& frames) {
  if (!tracing) return;
  std::fprintf(stderr, "%.*s %.*s:", static_cast<int>(dir.size()), dir.data(), static_cast<int>(peer.size()),
               peer.data());
  for (const auto& f : frames) std::fprintf(stderr, " %s", hex(f).c_str());
  std::fprintf(stderr, "\n");
}

std::string packed_tag(std::uint64_t tag) {
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer> pk(buf);
  pk.pack_array(1);
  pk.pack(tag);
  return {buf.data(), buf.size()};
}

// An outbox entry copied out, to put back after reading past it.
struct outgoing_copy {
  std::string to;
  command cmd;
  std::string meta;
  std::optional<std::string> payload;
};

outgoing_copy copy_of(const troupe::outgoing_message& m) {
  outgoing_copy c{m.to, m.command, m.meta, std::nullopt};
  if (m.has_payload) c.payload = std::string(static_cast<const char*>(m.payload.data()), m.payload.size());
  return c;
}

std::string header_frame(command c) {
  const auto h = troupe::protocol::header(c);
  return {h.data(), h.size()};
}

class harness {
 public:
  harness(troupe::broker_options options, broker_core::time_point start)
      : opt_(options), now_(start), core_(options, start) {}

  // ---- steps ----------------------------------------------------------------

  void ready(std::size_t p, const std::vector<std::string>& actors, std::uint64_t credits) {
    troupe::protocol::ready_info info;
    info.name = peers[p];
    info.pid = 1000 + p;
    info.credits = credits;
    info.actors = actors;
    std::string body;
    troupe::protocol::encode_ready(body, info);
    deliver(p, {header_frame(command::ready), body}, 2);
  }

  void request(std::size_t client, std::string_view address, std::string_view method, bool tell,
               std::uint64_t timeout_ms) {
    ask a;
    a.client = client;
    a.id = tracked_base + asks_.size() + 1;
    a.tell = tell;
    a.args = packed_tag(a.id);
    std::string meta;
    troupe::protocol::encode_request_meta(
        meta, {a.id, address, method, tell ? troupe::protocol::flag_tell : 0, timeout_ms});
    const auto args = a.args;
    asks_.emplace(a.id, std::move(a));
    deliver(client, {header_frame(command::request), meta, args}, 3, true);
  }

  // A reply from worker p to one of the requests it holds (or, if it holds
  // none, to a made-up id).
  void reply(std::size_t p, std::size_t which, std::uint64_t made_up, std::string_view status,
             std::string value) {
    auto& w = model_[p];
    std::uint64_t id = made_up;
    if (!w.held.empty()) id = std::next(w.held.begin(), static_cast<long>(which % w.held.size()))->first;
    std::string meta;
    troupe::protocol::encode_reply_meta(meta, id, status);
    deliver(p, {header_frame(command::reply), meta, std::move(value)}, 3);
  }

  void raw(std::size_t p, std::vector<std::string> frames, std::size_t count) {
    deliver(p, std::move(frames), count);
  }

  // A HEARTBEAT from a worker's heartbeat socket, naming its work socket.
  void heartbeat_for(std::size_t sender, std::string_view named) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(header_frame(command::heartbeat).data(), troupe::protocol::header_size);
    frames.emplace_back(named.data(), named.size());
    named_.insert(std::string(named));
    core_.on_message("hb-" + std::to_string(sender), frames, 2, now_);
    after_step();
  }

  void advance(std::chrono::milliseconds ms) {
    if (tracing) std::fprintf(stderr, "tick +%lld ms\n", static_cast<long long>(ms.count()));
    now_ += ms;
    core_.tick(now_);
    after_step();
  }

  // Silences every worker, moves the clock past the liveness window and
  // every deadline (at most one day), and checks that every ask ended.
  void finish() {
    const auto window = opt_.heartbeat * opt_.liveness + 1ms;
    for (int i = 0; i < 3; ++i) advance(std::chrono::duration_cast<std::chrono::milliseconds>(window));
    advance(24h + 1h);
    advance(std::chrono::duration_cast<std::chrono::milliseconds>(window));
    FUZZ_CHECK(core_.live_workers() == 0, "a silent worker is still registered");
    FUZZ_CHECK(core_.queued() == 0, std::to_string(core_.queued()) + " requests still queued at the end");
    FUZZ_CHECK(core_.in_flight() == 0,
               std::to_string(core_.in_flight()) + " requests still in flight at the end");
    FUZZ_CHECK(core_.placed_keys() == 0,
               std::to_string(core_.placed_keys()) + " keys still placed at the end");
    for (const auto& [id, a] : asks_) {
      if (a.tell) continue;
      FUZZ_CHECK(a.replies == 1, "ask " + std::to_string(id - tracked_base) + " got " +
                                     std::to_string(a.replies) + " replies");
    }
  }

 private:
  // Delivers one message from peer p, first updating the model with what the
  // broker will make of it.
  void deliver(std::size_t p, std::vector<std::string> frames, std::size_t count, bool tracked = false) {
    const auto kept = std::min({count, frames.size(), broker_core::max_frames});
    const auto cmd =
        kept >= 1 ? troupe::protocol::parse_header(frames[0].data(), frames[0].size()) : std::nullopt;
    std::optional<expected_reply> expected;
    auto& w = model_[p];
    if (cmd == command::request && count == 3 && kept == 3) {
      if (const auto meta = troupe::protocol::decode_request_meta(frames[1].data(), frames[1].size())) {
        // Raw frames that would pose as a tracked ask are not delivered.
        if (!tracked && (meta->id >= tracked_base || tag_of(frames[2]))) return;
        if (const auto parts = troupe::protocol::split_address(meta->address); parts && !parts->key.empty())
          keys_asked_.insert(std::string(meta->address));
      }
    } else if (cmd == command::ready && (count == 2 || count == 3) && kept == count) {
      // With a third frame, a READY from a heartbeat socket registers the
      // work socket that frame names (docs/protocol.md, READY).
      std::size_t target = p;
      if (count == 3) {
        named_.insert(frames[2]);
        target = peer_index(frames[2]);
      }
      if (auto info = troupe::protocol::decode_ready(frames[1].data(), frames[1].size())) {
        if (target == peer_count) return;  // would register a worker outside the model
        FUZZ_CHECK(info->actors.size() <= 10000, "a READY with more than 10000 names was accepted");
        if (info->name != peers[target]) {  // `$broker workers` is matched by name
          info->name = peers[target];
          troupe::protocol::encode_ready(frames[1], *info);
        }
        // The broker may refuse a READY that decodes (bounds, policy):
        // whether it was applied is read from `$broker workers` after the step.
        names_registered_.insert(info->actors.begin(), info->actors.end());
        note_claimed_keys(*info);
        pending_ready_ = pending_ready{target, {info->actors.begin(), info->actors.end()}, info->credits};
      }
    } else if (cmd == command::reply && count == 3 && kept == 3 && w.registered) {
      const auto meta = troupe::protocol::decode_reply_meta(frames[1].data(), frames[1].size());
      if (meta && w.held.contains(meta->id)) {
        // Accepted: the broker forwards the value without reading it, so
        // the harness's workers, like the real ones, send one value.
        if (!troupe::fuzz::one_value(frames[2])) frames[2] = "\xc0";
        const auto h = w.held.at(meta->id);
        w.held.erase(meta->id);
        if (h.tag) {
          const auto& a = asks_.at(h.tag);
          if (!a.tell && a.replies == 0)
            expected = expected_reply{a.client, a.id, std::string(meta->status_text), frames[2]};
        }
      }
    } else if ((cmd == command::heartbeat || cmd == command::disconnect) && count >= 2 && kept >= 2) {
      named_.insert(frames[1]);  // speaks for the worker it names, and may be answered there
      // A DISCONNECT with a body is no graceful DISCONNECT of its sender
      // (docs/protocol.md, DISCONNECT); older brokers took it for one. The
      // sender's draining state is read from the listing after this step.
      if (cmd == command::disconnect && w.registered) draining_unknown_ = p;
    } else if (cmd == command::disconnect && count == 1 && w.registered) {
      w.draining = true;  // with a body, DISCONNECT speaks for another worker and removes it
    } else if (cmd == command::release && w.registered) {
      // The worker passivated some keys: the broker may place them anew.
      std::erase_if(placement_, [&](const auto& kv) { return kv.second == p; });
    }

    std::vector<zmq::message_t> msg;
    for (std::size_t i = 0; i < kept; ++i) msg.emplace_back(frames[i].data(), frames[i].size());
    trace("in ", peers[p], frames);
    core_.on_message(peers[p], msg, count, now_);
    after_step(std::move(expected));
  }

  void after_step(std::optional<expected_reply> expected = std::nullopt) {
    FUZZ_CHECK(core_.audit().empty(), core_.audit());
    // Which workers are left after this step decides what its messages may
    // do (a key may move off a worker removed in the same step), so the
    // listing is read first and applied last.
    listed_ = list_workers();
    for (auto& m : core_.out().messages()) {
      const std::string payload =
          m.has_payload ? std::string(static_cast<const char*>(m.payload.data()), m.payload.size())
                        : std::string();
      trace("out", m.to, {std::string(1, static_cast<char>(m.command)), m.meta, payload});
      if (m.command == command::reply) on_reply(m.to, m.meta, m.has_payload, payload, expected);
      if (m.command == command::request) on_request(m.to, m.meta, m.has_payload, payload);
      if (m.command == command::ready && pending_ready_ && m.to == peers[pending_ready_->peer])
        ready_acked_ = true;
      FUZZ_CHECK(peer_index(m.to) < peer_count || m.to.starts_with("hb-") || named_.contains(m.to),
                 "a message to a stranger: " + hex(m.to));
    }
    core_.out().clear();
    FUZZ_CHECK(!expected, "a worker's accepted reply did not reach its client");
    apply_listing();
    FUZZ_CHECK(core_.names() <= names_registered_.size(), "more names than READYs registered");
    FUZZ_CHECK(core_.placed_keys() <= keys_asked_.size(), "more keys placed than were asked for");
  }

  // A READY may claim keys it holds (`keys`, where the protocol has them):
  // the broker places those too.
  template <class Info>
  void note_claimed_keys(const Info& info) {
    if constexpr (requires { info.keys; }) keys_asked_.insert(info.keys.begin(), info.keys.end());
  }

  static std::size_t peer_index(std::string_view id) {
    for (std::size_t i = 0; i < peer_count; ++i)
      if (peers[i] == id) return i;
    return peer_count;
  }

  void on_reply(const std::string& to, const std::string& meta_bytes, bool has_payload,
                const std::string& payload, std::optional<expected_reply>& expected) {
    const auto meta = troupe::protocol::decode_reply_meta(meta_bytes.data(), meta_bytes.size());
    FUZZ_CHECK(meta.has_value(), "a REPLY whose meta does not decode: " + hex(meta_bytes));
    FUZZ_CHECK(has_payload && troupe::fuzz::one_value(payload),
               "a REPLY whose value is not one msgpack value: " + hex(payload));
    if (meta->status_text != "ok") {
      // The broker's own errors carry a str; a worker's are forwarded as sent.
    }
    const auto c = peer_index(to);
    if (c == peer_count || meta->id < tracked_base || meta->id >= tracked_base + asks_.size() + 1) return;
    auto& a = asks_.at(meta->id);
    FUZZ_CHECK(a.client == c, "a REPLY went to another client");
    FUZZ_CHECK(!a.tell, "a tell got a REPLY");
    FUZZ_CHECK(a.replies == 0, "an ask got a second REPLY");
    ++a.replies;
    if (expected && expected->id == a.id) {
      FUZZ_CHECK(expected->status == meta->status_text, "the worker's status was changed");
      FUZZ_CHECK(expected->value == payload, "the worker's value was changed: " + hex(payload));
      expected.reset();
    }
  }

  void on_request(const std::string& to, const std::string& meta_bytes, bool has_payload,
                  const std::string& args) {
    const auto p = peer_index(to);
    FUZZ_CHECK(p < peer_count, "a REQUEST to a stranger");
    auto& w = model_[p];
    const auto meta = troupe::protocol::decode_request_meta(meta_bytes.data(), meta_bytes.size());
    FUZZ_CHECK(meta.has_value() && has_payload, "a REQUEST to a worker that does not decode");
    const auto parts = troupe::protocol::split_address(meta->address);
    FUZZ_CHECK(parts.has_value() && troupe::protocol::valid_method_name(meta->method),
               "a malformed REQUEST forwarded");
    // The worker as the broker lists it after this step (a READY in this
    // step may have registered it), or as it was before if the step
    // removed it.
    const auto listed = listed_.find(to);
    const bool registered = listed != listed_.end() || w.registered;
    const auto& hosts = listed != listed_.end() ? listed->second.actors : w.hosts;
    const bool draining = listed != listed_.end() ? listed->second.draining : w.draining;
    const auto credits = listed != listed_.end() ? listed->second.credits : w.credits;
    FUZZ_CHECK(registered, "a REQUEST to a peer that is no worker: " + to);
    FUZZ_CHECK(hosts.contains(parts->name),
               "a REQUEST for '" + std::string(meta->address) + "' to " + to + ", which does not host it");
    FUZZ_CHECK(!draining, "a REQUEST to a worker that said DISCONNECT");
    // A call from an awaiting method (it carries a chain) may pass the
    // credits (docs/protocol.md, "Call chains"); nothing else may.
    FUZZ_CHECK(!meta->chain.empty() || w.held.size() < credits, "a REQUEST beyond the worker's credits");
    FUZZ_CHECK(meta->timeout_ms >= 1 && meta->id != 0 && (meta->flags & ~troupe::protocol::flag_tell) == 0);
    FUZZ_CHECK(!w.held.contains(meta->id), "a broker id reused while held");
    held_request h;
    h.address = std::string(meta->address);
    // A tracked ask's args are [its id]; the broker forwards them unchanged.
    if (const auto tag = tag_of(args)) {
      auto& a = asks_.at(*tag);
      FUZZ_CHECK(a.args == args, "args changed on the way");
      FUZZ_CHECK(a.tell == meta->is_tell(), "ask and tell mixed up");
      FUZZ_CHECK(++a.dispatched == 1, "one request sent to workers twice");
      FUZZ_CHECK(a.tell || a.replies == 0, "a request sent on after its client got its answer");
      h.tag = *tag;
    }
    if (!parts->key.empty()) {
      const auto it = placement_.find(h.address);
      if (it != placement_.end() && it->second != p) {
        // Legitimate only if its worker is gone or no longer hosts the name
        // after this step (a READY in the same step may have dropped it).
        const auto q = listed_.find(peers[it->second]);
        FUZZ_CHECK(
            q == listed_.end() || !q->second.actors.contains(parts->name),
            "key '" + h.address + "' moved from " + peers[it->second] + " to " + to + " while it lives");
      }
      placement_[h.address] = p;
    }
    w.held.emplace(meta->id, std::move(h));
  }

  std::optional<std::uint64_t> tag_of(const std::string& args) const {
    if (args.size() != 10 || static_cast<unsigned char>(args[0]) != 0x91) return std::nullopt;
    const auto h = msgpack::unpack(args.data(), args.size());
    const auto& o = h.get().via.array.ptr[0];
    if (o.type != msgpack::type::POSITIVE_INTEGER || !asks_.contains(o.via.u64)) return std::nullopt;
    return o.via.u64;
  }

  struct listed_worker {
    std::uint64_t in_flight = 0, credits = 0;
    bool draining = false;
    std::set<std::string, std::less<>> actors;
  };

  // Asks `$broker workers`; the answer is taken out of the outbox, which
  // keeps the step's own messages.
  std::map<std::string, listed_worker> list_workers() {
    std::string meta;
    troupe::protocol::encode_request_meta(meta, {admin_base + ++admin_asks_, "$broker", "workers", 0, 0});
    std::vector<zmq::message_t> msg;
    msg.emplace_back(header_frame(command::request).data(), troupe::protocol::header_size);
    msg.emplace_back(meta.data(), meta.size());
    msg.emplace_back("\x90", 1);
    const auto before = core_.out().size();
    core_.on_message(admin, msg, 3, now_);
    auto out = core_.out().messages();
    FUZZ_CHECK(out.size() == before + 1, "$broker workers changed more than its reply");
    const auto& answer = out.back();
    FUZZ_CHECK(answer.to == admin && answer.command == command::reply && answer.has_payload);
    const std::string value(static_cast<const char*>(answer.payload.data()), answer.payload.size());
    // Drop the answer: the step's messages stay.
    std::vector<outgoing_copy> keep;
    for (std::size_t i = 0; i + 1 < out.size(); ++i) keep.push_back(copy_of(out[i]));
    core_.out().clear();
    for (auto& k : keep) {
      auto& m = core_.out().push(k.to, k.cmd);
      m.meta = k.meta;
      if (k.payload) {
        m.payload.rebuild(k.payload->data(), k.payload->size());
        m.has_payload = true;
      }
    }

    std::map<std::string, listed_worker> listed;
    const auto h = msgpack::unpack(value.data(), value.size());
    const auto& all = h.get();
    FUZZ_CHECK(all.type == msgpack::type::ARRAY && all.via.array.size <= peer_count);
    for (std::uint32_t i = 0; i < all.via.array.size; ++i) {
      const auto fields = all.via.array.ptr[i].as<std::map<std::string, msgpack::object>>();
      auto& w = listed[fields.at("name").as<std::string>()];
      w.in_flight = fields.at("in_flight").as<std::uint64_t>();
      w.credits = fields.at("credits").as<std::uint64_t>();
      w.draining = fields.at("state").as<std::string>() == "draining";
      for (const auto& name : fields.at("actors").as<std::vector<std::string>>()) w.actors.insert(name);
    }
    return listed;
  }

  // Compares the listing with the model; a worker no longer listed has been
  // removed, which must have answered every ask it held.
  void apply_listing() {
    if (draining_unknown_ < peer_count) {
      const auto it = listed_.find(peers[draining_unknown_]);
      if (it != listed_.end()) model_[draining_unknown_].draining = it->second.draining;
      draining_unknown_ = peer_count;
    }
    if (pending_ready_) apply_ready(*pending_ready_);
    pending_ready_.reset();
    ready_acked_ = false;
    for (std::size_t p = 0; p < peer_count; ++p) {
      auto& w = model_[p];
      const auto it = listed_.find(peers[p]);
      if (it == listed_.end()) {
        if (w.registered) gone(p);
        continue;
      }
      FUZZ_CHECK(w.registered, peers[p] + " is listed but never registered");
      FUZZ_CHECK(it->second.in_flight == w.held.size(),
                 peers[p] + ": the broker counts " + std::to_string(it->second.in_flight) +
                     " in flight, the worker holds " + std::to_string(w.held.size()));
      FUZZ_CHECK(it->second.credits == w.credits, peers[p] + ": credits differ");
      FUZZ_CHECK(it->second.draining == w.draining, peers[p] + ": draining state differs");
    }
  }

  // A READY that decoded: applied if the broker now lists exactly its names
  // for the worker (it must be, if the broker acknowledged it).
  void apply_ready(const pending_ready& r) {
    const auto it = listed_.find(peers[r.peer]);
    const bool applied = it != listed_.end() && it->second.actors == r.actors;
    if (ready_acked_)
      FUZZ_CHECK(applied, "an acknowledged READY is not what `$broker workers` lists for " + peers[r.peer]);
    if (!applied) return;
    FUZZ_CHECK(it->second.credits >= 1 && it->second.credits <= r.credits,
               peers[r.peer] + " got more credits than it asked for");
    auto& w = model_[r.peer];
    w.registered = true;
    w.draining = false;
    w.credits = it->second.credits;
    w.hosts = r.actors;
    // Keys of names it no longer hosts are released (finding 2).
    for (auto k = placement_.begin(); k != placement_.end();) {
      const auto name = k->first.substr(0, k->first.find('/'));
      k = k->second == r.peer && !w.hosts.contains(name) ? placement_.erase(k) : std::next(k);
    }
  }

  void gone(std::size_t p) {
    auto& w = model_[p];
    for (const auto& [id, h] : w.held) {
      if (!h.tag) continue;
      const auto& a = asks_.at(h.tag);
      FUZZ_CHECK(a.tell || a.replies == 1, peers[p] + " went away and an ask it held got no reply");
    }
    w = worker_model{};
    std::erase_if(placement_, [&](const auto& kv) { return kv.second == p; });
  }

  troupe::broker_options opt_;
  broker_core::time_point now_;
  broker_core core_;
  worker_model model_[peer_count];
  std::map<std::uint64_t, ask> asks_;
  std::map<std::string, std::size_t> placement_;  // keyed address -> worker it was last sent to
  std::set<std::string> names_registered_, keys_asked_;
  std::uint64_t admin_asks_ = 0;
  std::map<std::string, listed_worker> listed_;  // `$broker workers` after the current step
  std::optional<pending_ready> pending_ready_;   // a READY of this step that decoded
  bool ready_acked_ = false;                     // and the broker acknowledged it
  std::set<std::string> named_;                  // routing ids named in a `worker` frame
  std::size_t draining_unknown_ = peer_count;    // a peer whose draining state this step left open
};

// ---- input -> steps ----------------------------------------------------------

std::string fuzz_value(troupe::fuzz::input& in) {
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer> pk(buf);
  switch (in.pick(6)) {
    case 0:
      pk.pack_nil();
      break;
    case 1:
      pk.pack(static_cast<std::int64_t>(in.u64()));
      break;
    case 2:
      pk.pack(in.short_bytes(40));
      break;
    case 3: {
      const auto bits = in.u64();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      pk.pack(d);
      break;
    }
    case 4:
      pk.pack_array(2);
      pk.pack(in.u8());
      pk.pack(in.short_bytes(8));
      break;
    default:
      return std::string(in.short_bytes(60));  // raw: replaced by nil unless it is one value
  }
  return {buf.data(), buf.size()};
}

std::uint64_t fuzz_timeout(troupe::fuzz::input& in) {
  switch (in.pick(4)) {
    case 0:
      return 0;  // the broker's default
    case 1:
      return in.u16() % 5000;
    case 2:
      return in.u64();  // clamped to one day
    default:
      return 100;
  }
}

std::uint64_t fuzz_credits(troupe::fuzz::input& in) {
  switch (in.pick(4)) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 1 + in.pick(8);
    default:
      return in.u64();  // almost always out of range: the READY is malformed
  }
}

std::string fuzz_address(troupe::fuzz::input& in) {
  const auto choice = in.pick(8);
  if (choice == 6) return "$broker";
  if (choice == 7) return std::string(in.short_bytes(40));
  std::string address(names[in.pick(std::size(names))]);
  if (choice >= 3) address += "/" + std::string(keys[in.pick(std::size(keys))]);
  return address;
}

std::string fuzz_method(troupe::fuzz::input& in, std::string_view address) {
  if (address == "$broker") {
    constexpr std::string_view management[] = {"ping", "stats", "actors", "workers", "nope"};
    return std::string(management[in.pick(std::size(management))]);
  }
  return in.pick(8) == 0 ? std::string(in.short_bytes(20)) : "m";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  troupe::fuzz::input in(data, size);
  troupe::broker_options options;
  const auto setup = in.u8();
  constexpr std::size_t queue_limits[] = {1, 2, 3, 10000};
  options.queue_limit = queue_limits[setup & 3];
  options.default_timeout = (setup & 4) ? 500ms : 60000ms;
  options.limits.max_message_bytes = (setup & 8) ? 64 : 1 << 20;
  options.request_id_seed = 1;  // replays must not depend on a random start
  const broker_core::time_point start{std::chrono::hours(1)};
  harness h(options, start);

  for (int steps = 0; steps < 256 && !in.empty(); ++steps) {
    const auto op = in.u8();
    // Workers are usually peers 4..7 and clients 0..3; bit 7 lets any peer
    // play any part.
    const std::size_t worker = (op & 0x80) ? in.pick(peer_count) : 4 + in.pick(4);
    const std::size_t client = (op & 0x80) ? in.pick(peer_count) : in.pick(4);
    switch (op % 10) {
      case 0: {
        std::vector<std::string> actors;
        const auto mask = in.u8();
        for (std::size_t i = 0; i < std::size(names); ++i)
          if (mask & (1u << i)) actors.emplace_back(names[i]);
        if (mask & 0x80) actors.emplace_back(in.short_bytes(70));  // maybe not a valid name
        h.ready(worker, actors, fuzz_credits(in));
        break;
      }
      case 1:
      case 2: {
        const auto address = fuzz_address(in);
        const auto method = fuzz_method(in, address);
        const bool tell = (in.u8() & 3) == 0;
        h.request(client, address, method, tell, fuzz_timeout(in));
        break;
      }
      case 3:
      case 4: {
        const auto which = in.u8();
        const auto made_up = in.pick(3) == 0 ? in.u64() : 0x1'0000'0000 + in.u8();
        const auto si = in.pick(std::size(statuses) + 1);
        const std::string status =
            si < std::size(statuses) ? std::string(statuses[si]) : std::string(in.short_bytes(20));
        h.reply(worker, which, made_up, status, fuzz_value(in));
        break;
      }
      case 5:
        h.raw(worker, {header_frame(command::heartbeat)}, 1);
        break;
      case 6: {
        const auto sender = in.pick(4);
        h.heartbeat_for(sender, in.flag() ? peers[worker] : std::string(in.short_bytes(10)));
      } break;
      case 7:
        h.raw(worker, {header_frame(command::disconnect)}, 1);
        break;
      case 8: {
        constexpr std::chrono::milliseconds steps_ms[] = {1ms, 100ms, 999ms, 1000ms, 1001ms, 3001ms, 60001ms};
        const auto choice = in.pick(std::size(steps_ms) + 1);
        h.advance(choice < std::size(steps_ms) ? steps_ms[choice] : std::chrono::milliseconds(in.u32()));
        break;
      }
      default: {
        // Raw frames: a header for some command (or not), then anything.
        const auto count = in.pick(6);
        std::vector<std::string> frames;
        for (std::size_t i = 0; i < count; ++i) {
          if (i == 0 && in.flag()) {
            frames.push_back(header_frame(static_cast<command>(in.pick(7))));
          } else {
            frames.emplace_back(in.long_bytes(300));
          }
        }
        h.raw((op & 0x80) ? worker : in.pick(peer_count), std::move(frames), count);
        break;
      }
    }
  }
  h.finish();
  return 0;
}
