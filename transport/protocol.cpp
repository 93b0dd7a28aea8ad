#include "troupe/protocol.hpp"

#include <msgpack.hpp>

#include <algorithm>

#include "protocol_durable.hpp"
#include "wire_reader.hpp"

namespace troupe::protocol {
namespace {

constexpr std::array<std::string_view, status_count> status_names = {
    "ok",          "unknown_actor",       "unknown_method",    "bad_args",
    "actor_error", "overloaded",          "deadline_exceeded", "worker_lost",
    "bad_request", "time_limit_exceeded", "store_unavailable", "call_cycle",
};

// Appends msgpack output to a std::string whose capacity the caller reuses.
struct string_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         c == '.';
}

// Length of the well-formed UTF-8 sequence starting at p[0] (Unicode table
// 3-7), or 0 if there is none; `left` bytes are readable.
std::size_t utf8_sequence(const unsigned char* p, std::size_t left) {
  const unsigned char b = p[0];
  if (b < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (b >= 0xc2 && b <= 0xdf) {
    n = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    if (b == 0xe0) lo = 0xa0;  // overlong
    if (b == 0xed) hi = 0x9f;  // surrogates
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    if (b == 0xf0) lo = 0x90;  // overlong
    if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;  // continuation byte, overlong lead (c0, c1) or f5..ff
  }
  if (left < n || p[1] < lo || p[1] > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  return n;
}

}  // namespace

bool valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  for (std::size_t i = 0; i < size;) {
    if (p[i] < 0x80) {  // ASCII, the common case for names, keys and methods
      ++i;
      continue;
    }
    const auto n = utf8_sequence(p + i, size - i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  static constexpr std::string_view replacement = "\xef\xbf\xbd";  // U+FFFD
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto n = utf8_sequence(p + i, text.size() - i);
    if (n == 0) {
      out.append(replacement);
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::array<char, header_size> header(command c) {
  return {'T', 'R', 'P', static_cast<char>(version), static_cast<char>(c)};
}

std::optional<command> parse_header(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size != header_size || p[0] != 'T' || p[1] != 'R' || p[2] != 'P' || p[3] != version)
    return std::nullopt;
  if (p[4] < 0x01 || p[4] > 0x06) return std::nullopt;
  return static_cast<command>(p[4]);
}

std::string_view to_string(status s) { return status_names[static_cast<std::size_t>(s)]; }

std::optional<status> status_from_string(std::string_view s) {
  for (std::size_t i = 0; i < status_names.size(); ++i)
    if (status_names[i] == s) return static_cast<status>(i);
  return std::nullopt;
}

bool valid_actor_name(std::string_view name) {
  if (name.empty() || name.size() > limits::max_name_bytes) return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

bool valid_method_name(std::string_view method) {
  return !method.empty() && method.size() <= limits::max_method_bytes && valid_utf8(method);
}

std::optional<address_parts> split_address(std::string_view address) {
  address_parts parts;
  const auto slash = address.find('/');
  parts.name = address.substr(0, slash);
  if (slash != std::string_view::npos) {
    parts.key = address.substr(slash + 1);
    if (parts.key.empty() || parts.key.size() > limits::max_key_bytes || !valid_utf8(parts.key))
      return std::nullopt;
  }
  // The management actor's name is the one allowed exception to the charset.
  if (parts.name != management_actor && !valid_actor_name(parts.name)) return std::nullopt;
  return parts;
}

std::optional<request_meta> decode_request_meta(const void* data, std::size_t size) {
  wire_reader r(data, size);
  request_meta m;
  auto n = r.array_header();
  if (!n || *n < 5 || *n > 7) return std::nullopt;
  auto id = r.uint();
  auto address = r.str();
  auto method = r.str();
  auto flags = r.uint();
  auto timeout = r.uint();
  if (!id || !address || !method || !flags || !timeout) return std::nullopt;
  // The 6th element is the durable map; with a chain after it, nil when
  // the request is not durable.
  if (*n >= 6 && !(*n == 7 && r.nil()) && !decode_durable_meta(r, m))
    return std::nullopt;  // protocol_durable.cpp
  if (*n == 7) {
    const auto* at = r.position();
    if (!check_chain(r)) return std::nullopt;
    m.chain = {reinterpret_cast<const char*>(at), static_cast<std::size_t>(r.position() - at)};
  }
  if (!r.at_end()) return std::nullopt;
  m.id = *id;
  m.address = *address;
  m.method = *method;
  m.flags = *flags;
  m.timeout_ms = *timeout;
  return m;
}

std::optional<reply_meta> decode_reply_meta(const void* data, std::size_t size) {
  wire_reader r(data, size);
  auto n = r.array_header();
  if (!n || *n != 2) return std::nullopt;
  auto id = r.uint();
  auto st = r.str();
  if (!id || !st || !valid_utf8(*st) || !r.at_end()) return std::nullopt;
  return reply_meta{*id, *st};
}

std::optional<ready_info> decode_ready(const void* data, std::size_t size, std::string* why) {
  auto refuse = [why](std::string reason) -> std::optional<ready_info> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  wire_reader r(data, size);
  auto n = r.map_header();
  if (!n) return refuse("READY info must be a map");
  ready_info info;
  // A repeated key is malformed: otherwise a READY could repeat `actors` and
  // register any number of names past the per-array bound. The known keys
  // are tracked here; unknown ones are kept (as views into the frame) and
  // compared once at the end.
  enum : unsigned {
    seen_name = 1,
    seen_pid = 2,
    seen_credits = 4,
    seen_actors = 8,
    seen_keys = 16,
    seen_retry = 32
  };
  unsigned seen = 0;
  auto first_time = [&seen](unsigned bit) {
    const bool fresh = (seen & bit) == 0;
    seen |= bit;
    return fresh;
  };
  auto refuse_twice = [&](std::string_view key) {
    return refuse("READY info has the key '" + std::string(key) + "' twice");
  };
  std::vector<std::string_view> unknown_keys;
  for (std::uint32_t i = 0; i < *n; ++i) {
    auto key = r.str();
    if (!key || !valid_utf8(*key)) return refuse("READY info keys must be UTF-8 str");
    if (*key == "name") {
      if (!first_time(seen_name)) return refuse_twice(*key);
      auto v = r.str();
      if (!v || v->empty() || v->size() > 128 || !valid_utf8(*v))
        return refuse("READY name must be a str of 1..128 bytes of UTF-8");
      info.name = *v;
    } else if (*key == "pid") {
      if (!first_time(seen_pid)) return refuse_twice(*key);
      auto v = r.uint();
      if (!v) return refuse("READY pid must be a non-negative int");
      info.pid = *v;
    } else if (*key == "credits") {
      if (!first_time(seen_credits)) return refuse_twice(*key);
      auto v = r.uint();
      if (!v || *v < 1 || *v > 100000) return refuse("READY credits must be an int in 1..100000");
      info.credits = *v;
    } else if (*key == "actors") {
      if (!first_time(seen_actors)) return refuse_twice(*key);
      auto count = r.array_header();
      if (!count || *count < 1 || *count > 10000)
        return refuse("READY actors must be an array of 1..10000 actor names");
      info.actors.reserve(*count);
      for (std::uint32_t j = 0; j < *count; ++j) {
        auto name = r.str();
        if (!name) return refuse("READY actors must be an array of str");
        if (!valid_actor_name(*name))
          return refuse("READY actor name '" + to_valid_utf8(name->substr(0, 64)) +
                        "' is not 1..64 bytes of [A-Za-z0-9_.-]");
        info.actors.emplace_back(*name);
      }
    } else if (*key == "keys" || *key == "retry") {  // protocol_durable.cpp
      if (!first_time(*key == "keys" ? seen_keys : seen_retry)) return refuse_twice(*key);
      if (auto bad = *key == "keys" ? decode_ready_keys(r, info) : decode_ready_retry(r, info); !bad.empty())
        return refuse(bad);
    } else {  // unknown keys are ignored for forward compatibility
      unknown_keys.push_back(*key);
      if (!r.skip()) return refuse("READY info value of '" + std::string(*key) + "' is malformed");
    }
  }
  if ((seen & seen_credits) == 0) return refuse("READY info lacks 'credits'");
  if ((seen & seen_actors) == 0) return refuse("READY info lacks 'actors'");
  if (!r.at_end()) return refuse("READY info has bytes after the map");
  std::sort(unknown_keys.begin(), unknown_keys.end());
  const auto twice = std::adjacent_find(unknown_keys.begin(), unknown_keys.end());
  if (twice != unknown_keys.end()) return refuse_twice(*twice);
  return info;
}

std::optional<ready_ack> decode_ready_ack(const void* data, std::size_t size) {
  wire_reader r(data, size);
  auto n = r.map_header();
  if (!n) return std::nullopt;
  ready_ack ack;
  bool have_heartbeat = false, have_liveness = false;
  for (std::uint32_t i = 0; i < *n; ++i) {
    auto key = r.str();
    if (!key) return std::nullopt;
    if (*key == "heartbeat_ms" || *key == "liveness") {
      const bool heartbeat = *key == "heartbeat_ms";
      bool& have = heartbeat ? have_heartbeat : have_liveness;
      auto v = r.uint();
      if (have || !v || *v < 1 || *v > (heartbeat ? 3'600'000u : 100u)) return std::nullopt;
      (heartbeat ? ack.heartbeat_ms : ack.liveness) = *v;
      have = true;
    } else if (!r.skip()) {  // unknown keys are ignored for forward compatibility
      return std::nullopt;
    }
  }
  if (!have_heartbeat || !have_liveness || !r.at_end()) return std::nullopt;
  return ack;
}

std::optional<disconnect_info> decode_disconnect_info(const void* data, std::size_t size) {
  wire_reader r(data, size);
  auto n = r.map_header();
  if (!n) return std::nullopt;
  disconnect_info info;
  bool have_stuck = false, have_why = false;
  std::vector<std::string_view> unknown_keys;
  for (std::uint32_t i = 0; i < *n; ++i) {
    auto key = r.str();
    if (!key || !valid_utf8(*key)) return std::nullopt;
    if (*key == "stuck") {
      auto v = r.uint();
      if (have_stuck || !v || *v == 0) return std::nullopt;
      info.stuck = *v;
      have_stuck = true;
    } else if (*key == "why") {
      auto v = r.str();
      if (have_why || !v || v->empty() || v->size() > 256 || !valid_utf8(*v)) return std::nullopt;
      info.why = *v;
      have_why = true;
    } else {  // unknown keys are ignored, but each key may appear once
      unknown_keys.push_back(*key);
      if (!r.skip()) return std::nullopt;
    }
  }
  if (!r.at_end()) return std::nullopt;
  std::sort(unknown_keys.begin(), unknown_keys.end());
  if (std::adjacent_find(unknown_keys.begin(), unknown_keys.end()) != unknown_keys.end()) return std::nullopt;
  return info;
}

std::optional<std::vector<std::string_view>> decode_release(const void* data, std::size_t size) {
  wire_reader r(data, size);
  auto n = r.array_header();
  if (!n || *n < 1 || *n > max_release_addresses) return std::nullopt;
  std::vector<std::string_view> out;
  out.reserve(*n);
  for (std::uint32_t i = 0; i < *n; ++i) {
    auto a = r.str();
    if (!a || !valid_utf8(*a)) return std::nullopt;
    out.push_back(*a);
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

void encode_request_meta(std::string& out, const request_meta& meta) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_array(!meta.chain.empty() ? 7 : meta.has_durable ? 6 : 5);
  pk.pack_uint64(meta.id);
  pk.pack_str(static_cast<std::uint32_t>(meta.address.size()));
  pk.pack_str_body(meta.address.data(), static_cast<std::uint32_t>(meta.address.size()));
  pk.pack_str(static_cast<std::uint32_t>(meta.method.size()));
  pk.pack_str_body(meta.method.data(), static_cast<std::uint32_t>(meta.method.size()));
  pk.pack_uint64(meta.flags);
  pk.pack_uint64(meta.timeout_ms);
  if (meta.has_durable) {
    encode_durable_meta(out, meta);  // protocol_durable.cpp
  } else if (!meta.chain.empty()) {
    pk.pack_nil();
  }
  out.append(meta.chain);  // already encoded (encode_chain), or forwarded as it came
}

void encode_reply_meta(std::string& out, std::uint64_t id, std::string_view status_text) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_array(2);
  pk.pack_uint64(id);
  pk.pack_str(static_cast<std::uint32_t>(status_text.size()));
  pk.pack_str_body(status_text.data(), static_cast<std::uint32_t>(status_text.size()));
}

void encode_ready(std::string& out, const ready_info& info) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  // `name` is optional on the wire and 1..128 bytes when present, so an
  // empty one (a READY that had none) is left out, not written as "".
  const bool named = !info.name.empty();
  pk.pack_map(3 + (named ? 1 : 0) + (info.keys.empty() ? 0 : 1) + (info.retry.empty() ? 0 : 1));
  if (named) {
    pk.pack(std::string_view("name"));
    pk.pack(std::string_view(info.name));
  }
  pk.pack(std::string_view("pid"));
  pk.pack_uint64(info.pid);
  pk.pack(std::string_view("credits"));
  pk.pack_uint64(info.credits);
  pk.pack(std::string_view("actors"));
  pk.pack_array(static_cast<std::uint32_t>(info.actors.size()));
  for (const auto& a : info.actors) pk.pack(std::string_view(a));
  encode_ready_durable(out, info);  // protocol_durable.cpp: `keys` and `retry`, when set
}

void encode_ready_ack(std::string& out, const ready_ack& ack) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_map(2);
  pk.pack(std::string_view("heartbeat_ms"));
  pk.pack_uint64(ack.heartbeat_ms);
  pk.pack(std::string_view("liveness"));
  pk.pack_uint64(ack.liveness);
}

void encode_disconnect_info(std::string& out, const disconnect_info& info) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_map((info.stuck != 0 ? 1 : 0) + (info.why.empty() ? 0 : 1));
  if (info.stuck != 0) {
    pk.pack(std::string_view("stuck"));
    pk.pack_uint64(info.stuck);
  }
  if (!info.why.empty()) {
    pk.pack(std::string_view("why"));
    pk.pack(to_valid_utf8(info.why.substr(0, 250)));  // at most 256 bytes once repaired
  }
}

void encode_release(std::string& out, const std::vector<std::string>& addresses) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_array(static_cast<std::uint32_t>(addresses.size()));
  for (const auto& a : addresses) pk.pack(std::string_view(a));
}

void encode_str(std::string& out, std::string_view text) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  if (valid_utf8(text)) {
    pk.pack(text);
  } else {  // rare: only an error message echoing bad input gets here
    pk.pack(to_valid_utf8(text));
  }
}

}  // namespace troupe::protocol
