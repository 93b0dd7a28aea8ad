// The broker's built-in management actor, `$broker`: ping, stats, actors,
// workers (docs/protocol.md, "Management actor").
#include <msgpack.hpp>

#include "broker/core.hpp"

namespace troupe {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

template <class V>
void pack_entry(packer& pk, std::string_view key, const V& value) {
  pk.pack(key);
  pk.pack(value);
}

}  // namespace

void broker_core::on_management(const peer& from, const protocol::request_meta& meta, time_point now) {
  const std::string_view client = from.id;
  if (meta.is_tell()) return;
  // Process ids and key names are for admins (with CURVE off, everyone).
  const bool admin = has_role(from.role, peer_role::admin);
  msgpack::sbuffer out;
  packer pk(out);
  auto pack_actors = [&] {
    pk.pack_map(static_cast<std::uint32_t>(actors_.size()));
    for (const auto& [name, a] : actors_) {
      pk.pack(std::string_view(name));
      pk.pack_map(3);
      pack_entry(pk, "workers", a->workers.size());
      pack_entry(pk, "queued", a->queue.size());
      pack_entry(pk, "keys", a->keys.size());
    }
  };

  if (meta.method == "ping") {
    pk.pack(std::string_view("pong"));
  } else if (meta.method == "actors") {
    pack_actors();
  } else if (meta.method == "workers") {
    pk.pack_array(static_cast<std::uint32_t>(live_workers()));
    for (const auto& w : workers_) {
      if (!w.in_use) continue;
      const bool show_key = admin && !w.key.empty();
      pk.pack_map(7 + (admin ? 1 : 0) + (show_key ? 1 : 0));
      pack_entry(pk, "name", w.name);
      pack_entry(pk, "keys", w.keys);
      if (admin) pack_entry(pk, "pid", w.pid);
      if (show_key) pack_entry(pk, "key", w.key);
      pack_entry(pk, "credits", w.credits);
      pack_entry(pk, "in_flight", w.in_flight);
      pack_entry(pk, "queued", w.keyed_queue.size());
      pk.pack(std::string_view("actors"));
      pk.pack_array(static_cast<std::uint32_t>(w.actors.size()));
      for (const auto* a : w.actors) pk.pack(std::string_view(a->name));
      pack_entry(pk, "state", std::string_view(w.draining ? "draining" : "ready"));
    }
  } else if (meta.method == "stats") {
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count();
    pk.pack_map(16);
    pack_entry(pk, "uptime_ms", static_cast<std::uint64_t>(uptime));
    pack_entry(pk, "workers", live_workers());
    pk.pack(std::string_view("actors"));
    pack_actors();
    pack_entry(pk, "queued", queued_);
    pack_entry(pk, "in_flight", in_flight_);
    pack_entry(pk, "requests", count_.requests);
    pack_entry(pk, "replies", count_.replies);
    pack_entry(pk, "errors", count_.errors);
    pack_entry(pk, "dropped", count_.dropped);
    pack_entry(pk, "bad_requests", count_.bad_requests);
    pack_entry(pk, "overloaded", count_.overloaded);
    pack_entry(pk, "deadline_exceeded", count_.deadline_exceeded);
    pack_entry(pk, "worker_lost", count_.worker_lost);
    pack_entry(pk, "unknown_actor", count_.unknown_actor);
    pack_entry(pk, "refused", count_.refused);
    pack_entry(pk, "refused_handshakes", count_.refused_handshakes);
  } else {
    return reply_error(client, meta.id, protocol::status::unknown_method,
                       "$broker has no method '" + std::string(meta.method) + "'");
  }
  auto& m = out_.push(client, protocol::command::reply);
  protocol::encode_reply_meta(m.meta, meta.id, "ok");
  m.payload.rebuild(out.data(), out.size());
  m.has_payload = true;
  ++count_.replies;
}

}  // namespace troupe
