#include "protocol_durable.hpp"

#include <msgpack.hpp>

#include <algorithm>

namespace troupe::protocol {
namespace {

struct append_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

// Reads a map of keys each seen at most once; `on_key` reads the value of a
// known key and returns false when it is malformed; unknown ones are skipped.
template <class F>
bool read_map_once(wire_reader& r, std::uint32_t n, F on_key) {
  std::vector<std::string_view> seen;
  for (std::uint32_t i = 0; i < n; ++i) {
    auto key = r.str();
    if (!key || !valid_utf8(*key)) return false;
    if (std::find(seen.begin(), seen.end(), *key) != seen.end()) return false;
    seen.push_back(*key);
    int handled = on_key(*key);
    if (handled < 0) return false;
    if (handled == 0 && !r.skip()) return false;
  }
  return true;
}

}  // namespace

bool decode_durable_meta(wire_reader& r, request_meta& m) {
  auto n = r.map_header();
  if (!n || *n > 16) return false;
  bool have_id = false;
  const bool ok = read_map_once(r, *n, [&](std::string_view key) -> int {
    if (key == "id") {
      auto v = r.str();
      if (!v || v->empty() || v->size() > max_message_id_bytes || !valid_utf8(*v)) return -1;
      m.message_id = *v;
      have_id = true;
      return 1;
    }
    if (key == "delay_ms" || key == "delivery") {
      auto v = r.uint();
      if (!v) return -1;
      (key == "delay_ms" ? m.delay_ms : m.delivery) = *v;
      return 1;
    }
    return 0;
  });
  if (!ok || !have_id) return false;
  m.has_durable = true;
  return true;
}

void encode_durable_meta(std::string& out, const request_meta& m) {
  append_sink sink{out};
  msgpack::packer<append_sink> pk(sink);
  pk.pack_map(1 + (m.delay_ms ? 1 : 0) + (m.delivery ? 1 : 0));
  pk.pack(std::string_view("id"));
  pk.pack(m.message_id);
  if (m.delay_ms) {
    pk.pack(std::string_view("delay_ms"));
    pk.pack_uint64(m.delay_ms);
  }
  if (m.delivery) {
    pk.pack(std::string_view("delivery"));
    pk.pack_uint64(m.delivery);
  }
}

std::string decode_ready_keys(wire_reader& r, ready_info& info) {
  auto count = r.array_header();
  if (!count || *count > max_ready_keys)
    return "READY keys must be an array of at most 100000 keyed addresses";
  info.keys.reserve(*count);
  for (std::uint32_t j = 0; j < *count; ++j) {
    auto a = r.str();
    if (!a) return "READY keys must be an array of str";
    const auto parts = split_address(*a);
    if (!parts || parts->key.empty() || parts->name == management_actor)
      return "READY key '" + to_valid_utf8(a->substr(0, 64)) + "' is not a keyed address (name/key)";
    info.keys.emplace_back(*a);
  }
  return {};
}

namespace {

// One `retry` entry; returns why it is refused, or "".
std::string decode_policy(wire_reader& r, retry_policy& p) {
  auto n = r.map_header();
  if (!n) return "READY retry entries must be maps";
  bool have_actor = false, have_method = false;
  std::string bad;
  const bool ok = read_map_once(r, *n, [&](std::string_view key) -> int {
    if (key == "actor" || key == "method") {
      auto v = r.str();
      if (!v || (key == "actor" ? !valid_actor_name(*v) : !valid_method_name(*v))) return -1;
      (key == "actor" ? p.actor : p.method) = std::string(*v);
      (key == "actor" ? have_actor : have_method) = true;
      return 1;
    }
    if (key == "attempts" || key == "backoff_ms" || key == "max_backoff_ms") {
      auto v = r.uint();
      if (!v) return -1;
      if (key == "attempts") {
        if (*v < 1 || *v > 1000) return -1;
        p.attempts = static_cast<std::uint32_t>(*v);
      } else {
        if (*v > 86'400'000) return -1;
        (key == "backoff_ms" ? p.backoff_ms : p.max_backoff_ms) = *v;
      }
      return 1;
    }
    if (key == "on") {
      auto c = r.array_header();
      if (!c || *c > 16) return -1;
      for (std::uint32_t i = 0; i < *c; ++i) {
        auto code = r.str();
        if (!code || !status_from_string(*code) || *code == "ok") return -1;
        p.on.emplace_back(*code);
      }
      return 1;
    }
    return 0;
  });
  if (!ok || !have_actor || !have_method)
    return "READY retry entries must be {actor, method, attempts 1..1000, backoff_ms and max_backoff_ms "
           "0..86400000, on: error codes}";
  return {};
}

}  // namespace

std::string decode_ready_retry(wire_reader& r, ready_info& info) {
  auto count = r.array_header();
  if (!count || *count > 10000) return "READY retry must be an array of at most 10000 policies";
  info.retry.resize(*count);
  for (auto& p : info.retry)
    if (auto bad = decode_policy(r, p); !bad.empty()) return bad;
  return {};
}

void encode_ready_durable(std::string& out, const ready_info& info) {
  append_sink sink{out};
  msgpack::packer<append_sink> pk(sink);
  if (!info.keys.empty()) {
    pk.pack(std::string_view("keys"));
    pk.pack_array(static_cast<std::uint32_t>(info.keys.size()));
    for (const auto& k : info.keys) pk.pack(std::string_view(k));
  }
  if (!info.retry.empty()) {
    pk.pack(std::string_view("retry"));
    pk.pack_array(static_cast<std::uint32_t>(info.retry.size()));
    for (const auto& p : info.retry) {
      pk.pack_map(6);
      pk.pack(std::string_view("actor"));
      pk.pack(std::string_view(p.actor));
      pk.pack(std::string_view("method"));
      pk.pack(std::string_view(p.method));
      pk.pack(std::string_view("attempts"));
      pk.pack_uint32(p.attempts);
      pk.pack(std::string_view("backoff_ms"));
      pk.pack_uint64(p.backoff_ms);
      pk.pack(std::string_view("max_backoff_ms"));
      pk.pack_uint64(p.max_backoff_ms);
      pk.pack(std::string_view("on"));
      pk.pack_array(static_cast<std::uint32_t>(p.on.size()));
      for (const auto& c : p.on) pk.pack(std::string_view(c));
    }
  }
}

}  // namespace troupe::protocol
