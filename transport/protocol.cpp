#include "troupe/protocol.hpp"

#include <msgpack.hpp>

#include "wire_reader.hpp"

namespace troupe::protocol {
namespace {

constexpr std::array<std::string_view, status_count> status_names = {
    "ok",         "unknown_actor",     "unknown_method", "bad_args",    "actor_error",
    "overloaded", "deadline_exceeded", "worker_lost",    "bad_request",
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

}  // namespace

std::array<char, header_size> header(command c) {
  return {'T', 'R', 'P', static_cast<char>(version), static_cast<char>(c)};
}

std::optional<command> parse_header(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size != header_size || p[0] != 'T' || p[1] != 'R' || p[2] != 'P' || p[3] != version)
    return std::nullopt;
  if (p[4] < 0x01 || p[4] > 0x05) return std::nullopt;
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
  return !method.empty() && method.size() <= limits::max_method_bytes;
}

std::optional<address_parts> split_address(std::string_view address) {
  address_parts parts;
  const auto slash = address.find('/');
  parts.name = address.substr(0, slash);
  if (slash != std::string_view::npos) {
    parts.key = address.substr(slash + 1);
    if (parts.key.empty() || parts.key.size() > limits::max_key_bytes) return std::nullopt;
  }
  // The management actor's name is the one allowed exception to the charset.
  if (parts.name != management_actor && !valid_actor_name(parts.name)) return std::nullopt;
  return parts;
}

std::optional<request_meta> decode_request_meta(const void* data, std::size_t size) {
  wire_reader r(data, size);
  request_meta m;
  auto n = r.array_header();
  if (!n || *n != 5) return std::nullopt;
  auto id = r.uint();
  auto address = r.str();
  auto method = r.str();
  auto flags = r.uint();
  auto timeout = r.uint();
  if (!id || !address || !method || !flags || !timeout || !r.at_end()) return std::nullopt;
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
  if (!id || !st || !r.at_end()) return std::nullopt;
  return reply_meta{*id, *st};
}

std::optional<ready_info> decode_ready(const void* data, std::size_t size) {
  wire_reader r(data, size);
  auto n = r.map_header();
  if (!n) return std::nullopt;
  ready_info info;
  bool have_credits = false, have_actors = false;
  for (std::uint32_t i = 0; i < *n; ++i) {
    auto key = r.str();
    if (!key) return std::nullopt;
    if (*key == "name") {
      auto v = r.str();
      if (!v || v->size() > 128) return std::nullopt;
      info.name = *v;
    } else if (*key == "pid") {
      auto v = r.uint();
      if (!v) return std::nullopt;
      info.pid = *v;
    } else if (*key == "credits") {
      auto v = r.uint();
      if (!v || *v < 1 || *v > 100000) return std::nullopt;
      info.credits = *v;
      have_credits = true;
    } else if (*key == "actors") {
      auto count = r.array_header();
      if (!count || *count < 1 || *count > 10000) return std::nullopt;
      info.actors.reserve(*count);
      for (std::uint32_t j = 0; j < *count; ++j) {
        auto name = r.str();
        if (!name || !valid_actor_name(*name)) return std::nullopt;
        info.actors.emplace_back(*name);
      }
      have_actors = true;
    } else if (!r.skip()) {  // unknown keys are ignored for forward compatibility
      return std::nullopt;
    }
  }
  if (!have_credits || !have_actors || !r.at_end()) return std::nullopt;
  return info;
}

void encode_request_meta(std::string& out, const request_meta& meta) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack_array(5);
  pk.pack_uint64(meta.id);
  pk.pack_str(static_cast<std::uint32_t>(meta.address.size()));
  pk.pack_str_body(meta.address.data(), static_cast<std::uint32_t>(meta.address.size()));
  pk.pack_str(static_cast<std::uint32_t>(meta.method.size()));
  pk.pack_str_body(meta.method.data(), static_cast<std::uint32_t>(meta.method.size()));
  pk.pack_uint64(meta.flags);
  pk.pack_uint64(meta.timeout_ms);
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
  pk.pack_map(4);
  pk.pack(std::string_view("name"));
  pk.pack(std::string_view(info.name));
  pk.pack(std::string_view("pid"));
  pk.pack_uint64(info.pid);
  pk.pack(std::string_view("credits"));
  pk.pack_uint64(info.credits);
  pk.pack(std::string_view("actors"));
  pk.pack_array(static_cast<std::uint32_t>(info.actors.size()));
  for (const auto& a : info.actors) pk.pack(std::string_view(a));
}

void encode_str(std::string& out, std::string_view text) {
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> pk(sink);
  pk.pack(text);
}

}  // namespace troupe::protocol
