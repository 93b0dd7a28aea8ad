// The broker's built-in management actor, `$broker`: ping, stats, actors,
// workers (docs/protocol.md, "Management actor"). Every method costs O(1)
// or is bounded: stats keeps no per-name or per-key walk, and the listings
// answer at most `limit` entries from a cursor (listing.cpp).
#include <msgpack.hpp>

#include "broker/core.hpp"
#include "broker/listing.hpp"

namespace troupe {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

template <class V>
void pack_entry(packer& pk, std::string_view key, const V& value) {
  pk.pack(key);
  pk.pack(value);
}

}  // namespace

void broker_core::on_management(const peer& from, const protocol::request_meta& meta,
                                const zmq::message_t& args, time_point now) {
  const std::string_view client = from.id;
  if (meta.is_tell()) return;
  // Process ids and key names are for admins (with CURVE off, everyone).
  const bool admin = has_role(from.role, peer_role::admin);
  msgpack::sbuffer out;
  packer pk(out);
  if (meta.method == "ping") {
    pk.pack(std::string_view("pong"));
  } else if (meta.method == "actors" || meta.method == "workers") {
    std::string why;
    const auto page = listing_page::parse(args.data(), args.size(), &why);
    if (!page) return reply_error(client, meta.id, protocol::status::bad_args, why);
    if (meta.method == "actors") {
      pack_actor_listing(pk, *page);
    } else {
      pack_worker_listing(pk, *page, admin);
    }
  } else if (meta.method == "stats") {
    const auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(now - started_).count();
    pk.pack_map(17 + bounds_stats_entries);
    pack_entry(pk, "uptime_ms", static_cast<std::uint64_t>(uptime));
    pack_entry(pk, "workers", live_workers());
    pack_entry(pk, "actors", actors_.size());
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
    pack_bounds_stats(pk);
    pack_durable_stats(pk);  // durable_admin.cpp
  } else if (meta.method.starts_with("dead_")) {
    return on_dead_letters(client, meta, args, now);  // durable_admin.cpp
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
