// `$broker actors` and `workers` a page at a time, and the bounds' keys of
// `$broker stats` (docs/protocol.md, "Management actor"). A page costs
// O(limit) (plus the free worker slots it steps over), never O(names) or
// O(keys): a listing at a million names keeps the broker serving.
#include "broker/listing.hpp"

#include <msgpack.hpp>

#include "broker/core.hpp"
#include "wire_reader.hpp"

namespace troupe {
namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

// Most actor names one page of `workers` lists, whatever its limit.
constexpr std::size_t listing_names_budget = 20000;

template <class V>
void pack_entry(packer& pk, std::string_view key, const V& value) {
  pk.pack(key);
  pk.pack(value);
}

// The paged form wraps the plain one: {"items": ..., "next": n | nil}.
void begin_page(packer& pk, const listing_page& page) {
  if (!page.paged) return;
  pk.pack_map(2);
  pk.pack(std::string_view("items"));
}

void end_page(packer& pk, const listing_page& page, std::size_t next, bool more) {
  if (!page.paged) return;
  pk.pack(std::string_view("next"));
  if (more) {
    pk.pack(static_cast<std::uint64_t>(next));
  } else {
    pk.pack_nil();
  }
}

}  // namespace

std::optional<listing_page> listing_page::parse(const void* args, std::size_t size, std::string* why) {
  auto refuse = [why](const char* text) -> std::optional<listing_page> {
    if (why) *why = text;
    return std::nullopt;
  };
  protocol::wire_reader r(args, size);
  const auto n = r.array_header();
  if (!n || *n > 2) return refuse("args must be [], [limit] or [limit, cursor]");
  listing_page page;
  if (*n >= 1) {
    const auto limit = r.uint();
    if (!limit || *limit < 1 || *limit > max_limit) return refuse("limit must be an int in 1..10000");
    page.limit = static_cast<std::size_t>(*limit);
    page.paged = true;
  }
  if (*n == 2) {
    const auto cursor = r.uint();
    if (!cursor) return refuse("cursor must be a non-negative int (0, or `next` from the page before)");
    page.cursor = static_cast<std::size_t>(std::min<std::uint64_t>(*cursor, SIZE_MAX));
  }
  if (!r.at_end()) return refuse("args must be [], [limit] or [limit, cursor]");
  return page;
}

// Names in the order of their dense index: a name forgotten while a
// listing is paged through moves the last name into its place, so that one
// name may be missed or listed twice; others are listed once.
template <class Packer>
void broker_core::pack_actor_listing(Packer& pk, const listing_page& page) const {
  const std::size_t from = std::min(page.cursor, actor_list_.size());
  const std::size_t to = from + std::min(page.limit, actor_list_.size() - from);
  begin_page(pk, page);
  pk.pack_map(static_cast<std::uint32_t>(to - from));
  for (std::size_t i = from; i < to; ++i) {
    const auto& a = *actor_list_[i];
    pk.pack(std::string_view(a.name));
    pk.pack_map(3);
    pack_entry(pk, "workers", a.workers.size());
    pack_entry(pk, "queued", a.queue.size());
    pack_entry(pk, "keys", a.keys.size());
  }
  end_page(pk, page, to, to < actor_list_.size());
}

// Workers in the order of their slots; a page may hold fewer than `limit`
// when workers left meanwhile, or when their names would pass
// listing_names_budget (a worker may host 10,000 names: a page of them
// could otherwise hold millions of strings). Process ids and key names are
// for admins.
template <class Packer>
void broker_core::pack_worker_listing(Packer& pk, const listing_page& page, bool admin) const {
  const std::size_t from = std::min(page.cursor, workers_.size());
  std::size_t to = from, n = 0, names = 0;
  for (; to < workers_.size() && n < page.limit; ++to) {
    if (!workers_[to].in_use) continue;
    names += workers_[to].actors.size();
    if (n > 0 && names > listing_names_budget) break;  // the first one always fits
    ++n;
  }
  begin_page(pk, page);
  pk.pack_array(static_cast<std::uint32_t>(n));
  for (std::size_t i = from; i < to; ++i) {
    const auto& w = workers_[i];
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
  end_page(pk, page, to, to < workers_.size());
}

// The bounds' entries of `stats`: bounds_stats_entries of them. O(workers).
template <class Packer>
void broker_core::pack_bounds_stats(Packer& pk) const {
  std::size_t keys = 0;
  for (const auto& w : workers_)
    if (w.in_use) keys += w.keys;
  pack_entry(pk, "keys", keys);
  pack_entry(pk, "queued_bytes", queued_bytes_);
  pack_entry(pk, "unsent", bounds_.unsent);
  pack_entry(pk, "refused_connections", bounds_.refused_connections);
  pack_entry(pk, "names_refused", bounds_.names_refused);
  pack_entry(pk, "names_forgotten", bounds_.names_forgotten);
  pack_entry(pk, "passivated", bounds_.passivated);
  pack_entry(pk, "releases_kept", bounds_.releases_kept);
  pack_entry(pk, "workers_gone", bounds_.workers_gone);
  pack_entry(pk, "time_limit_exceeded", bounds_.time_limit_exceeded);
  pack_entry(pk, "over_queued_bytes", bounds_.over_queued_bytes);
  pack_entry(pk, "call_cycles", bounds_.call_cycles);
  pk.pack(std::string_view("limits"));
  pk.pack_map(6);
  pack_entry(pk, "send_queue_limit", opt_.send_queue_limit);
  pack_entry(pk, "queue_limit", opt_.queue_limit);
  pack_entry(pk, "max_queued_bytes", opt_.max_queued_bytes);
  pack_entry(pk, "max_queued_bytes_per_name", opt_.max_queued_bytes_per_name);
  pack_entry(pk, "max_names", opt_.max_names);
  pack_entry(pk, "forget_names_after_ms", static_cast<std::uint64_t>(opt_.forget_names_after.count()));
}

template void broker_core::pack_actor_listing(packer&, const listing_page&) const;
template void broker_core::pack_worker_listing(packer&, const listing_page&, bool) const;
template void broker_core::pack_bounds_stats(packer&) const;

}  // namespace troupe
