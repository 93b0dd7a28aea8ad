// The `$broker` side of durability (docs/protocol.md, "Management actor"):
// the `durable` entry of stats, and dead letters listed, shown, retried and
// purged. Listings read the store a page at a time; retries and purges are
// answered once the batch that holds them is committed.
#include <msgpack.hpp>

#include "broker/core.hpp"
#include "broker/durable.hpp"

namespace troupe {

using protocol::status;

namespace {

using packer = msgpack::packer<msgpack::sbuffer>;

constexpr std::size_t max_dead_page = 1000;
constexpr std::size_t max_dead_batch = 10000;

template <class P, class V>
void entry(P& pk, std::string_view key, const V& value) {
  pk.pack(key);
  pk.pack(value);
}

void pack_dead(packer& pk, const durable::dead_letter& d, bool full) {
  pk.pack_map(full ? 11 : 9);
  entry(pk, "seq", d.msg.seq);
  entry(pk, "id", d.msg.id);
  entry(pk, "address", d.msg.address);
  entry(pk, "method", d.msg.method);
  entry(pk, "reason", d.reason);
  entry(pk, "attempts", d.msg.attempts);
  entry(pk, "deliveries", d.msg.lost);
  entry(pk, "last_error", d.msg.last_error);
  entry(pk, "died_ms", d.died);
  if (!full) return;
  pk.pack(std::string_view("args"));
  pk.pack_bin(static_cast<std::uint32_t>(d.msg.args.size()));
  pk.pack_bin_body(d.msg.args.data(), static_cast<std::uint32_t>(d.msg.args.size()));
  entry(pk, "accepted_ms", d.msg.accepted);
}

// args: [] | [uint, ...] | ["all"]: the seqs named, or every one.
std::optional<std::vector<std::uint64_t>> parse_seqs(const zmq::message_t& args, bool& all) {
  try {
    auto oh = msgpack::unpack(static_cast<const char*>(args.data()), args.size());
    const auto& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size > max_dead_batch) return std::nullopt;
    std::vector<std::uint64_t> seqs;
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      const auto& e = o.via.array.ptr[i];
      if (e.type == msgpack::type::STR && e.as<std::string>() == "all" && o.via.array.size == 1) {
        all = true;
      } else if (e.type == msgpack::type::POSITIVE_INTEGER) {
        seqs.push_back(e.via.u64);
      } else {
        return std::nullopt;
      }
    }
    return seqs;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

template <class Packer>
void broker_core::pack_durable_stats(Packer& pk) const {
  const auto& d = *durable_;
  pk.pack(std::string_view("durable"));
  pk.pack_map(16);
  entry(pk, "store", d.store ? d.store->describe() : std::string("none"));
  entry(pk, "store_error", d.store_error);
  entry(pk, "pending", d.by_id.size());
  entry(pk, "scheduled", d.schedule.size());
  entry(pk, "stored", d.count.stored);
  entry(pk, "duplicates", d.count.duplicates);
  entry(pk, "finished", d.count.finished);
  entry(pk, "redelivered", d.count.redelivered);
  entry(pk, "retried", d.count.retried);
  entry(pk, "dead", d.count.dead);
  std::uint64_t letters = 0;
  try {
    if (d.store) letters = d.store->dead_count();
  } catch (const durable::store_error&) {
  }
  entry(pk, "dead_letters", letters);
  entry(pk, "refused", d.count.refused);
  entry(pk, "commits", d.count.commits);
  entry(pk, "recovered", d.count.recovered);
  entry(pk, "claimed_keys", d.count.claimed);
  entry(pk, "released_claims", d.count.claims_refused);
}

template void broker_core::pack_durable_stats(packer&) const;

void broker_core::on_dead_letters(std::string_view client, const protocol::request_meta& meta,
                                  const zmq::message_t& args, time_point now) {
  auto& d = *durable_;
  if (!d.store)
    return reply_error(client, meta.id, status::store_unavailable,
                       "this broker runs without a store (--store none)");
  msgpack::sbuffer out;
  packer pk(out);
  try {
    if (meta.method == "dead_list") {
      std::uint64_t after = 0, limit = 100;
      auto oh = msgpack::unpack(static_cast<const char*>(args.data()), args.size());
      const auto& o = oh.get();
      if (o.type != msgpack::type::ARRAY || o.via.array.size > 2)
        return reply_error(client, meta.id, status::bad_args, "dead_list takes [] or [after, limit]");
      if (o.via.array.size >= 1) after = o.via.array.ptr[0].as<std::uint64_t>();
      if (o.via.array.size == 2)
        limit = std::clamp<std::uint64_t>(o.via.array.ptr[1].as<std::uint64_t>(), 1, max_dead_page);
      const auto page = d.store->dead_letters(after, limit);
      pk.pack_array(static_cast<std::uint32_t>(page.size()));
      for (const auto& l : page) pack_dead(pk, l, false);
    } else if (meta.method == "dead_show") {
      auto oh = msgpack::unpack(static_cast<const char*>(args.data()), args.size());
      const auto& o = oh.get();
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 1)
        return reply_error(client, meta.id, status::bad_args, "dead_show takes [seq]");
      const auto l = d.store->dead_letter_at(o.via.array.ptr[0].as<std::uint64_t>());
      if (!l) return reply_error(client, meta.id, status::bad_request, "no dead letter has that number");
      pack_dead(pk, *l, true);
    } else if (meta.method == "dead_retry" || meta.method == "dead_purge") {
      return change_dead_letters(client, meta, args, now);
    } else {
      return reply_error(client, meta.id, status::unknown_method,
                         "$broker has no method '" + std::string(meta.method) + "'");
    }
  } catch (const durable::store_error& e) {
    return reply_error(client, meta.id, status::store_unavailable, e.what());
  } catch (const std::exception&) {
    return reply_error(client, meta.id, status::bad_args,
                       std::string(meta.method) + ": args must be unsigned integers");
  }
  reply_value(client, meta.id, "ok", std::string_view(out.data(), out.size()));
}

// dead_retry and dead_purge: answered after the commit that makes them so.
void broker_core::change_dead_letters(std::string_view client, const protocol::request_meta& meta,
                                      const zmq::message_t& args, time_point now) {
  auto& d = *durable_;
  bool all = false;
  auto seqs = parse_seqs(args, all);
  if (!seqs || (seqs->empty() && !all))
    return reply_error(client, meta.id, status::bad_args,
                       std::string(meta.method) + " takes [seq, ...] or [\"all\"]");
  if (all)
    for (const auto& l : d.store->dead_letters(0, max_dead_batch)) seqs->push_back(l.msg.seq);
  std::uint64_t done = 0;
  for (const auto seq : *seqs) {
    auto l = d.store->dead_letter_at(seq);
    if (!l) continue;
    if (meta.method == "dead_purge") {
      d.batch.purged.push_back(seq);
      ++done;
      continue;
    }
    if (d.by_id.count(l->msg.id)) continue;  // its id runs again already
    d.batch.revived.push_back(seq);
    d.batch.forgotten.push_back(l->msg.id);
    d.finishing.erase(l->msg.id);
    if (revive(l->msg, now)) ++done;
  }
  msgpack::sbuffer out;
  packer pk(out);
  pk.pack(done);
  d.after_commit.push_back({std::string(client), meta.id, std::string(out.data(), out.size())});
}

// A dead letter as a new pending message, with fresh counts and a new seq.
bool broker_core::revive(durable::message& m, time_point now) {
  auto& d = *durable_;
  const auto parts = protocol::split_address(m.address);
  if (!parts) return false;
  m.seq = d.next_seq++;
  m.attempts = 0;
  m.lost = 0;
  m.not_before = 0;
  m.last_error.clear();
  d.batch.added.push_back(m);
  recover(m, now, false);  // routed once the commit has it
  return true;
}

}  // namespace troupe
