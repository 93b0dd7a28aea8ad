#include "json_msgpack.hpp"

#include <msgpack.hpp>
#include <stdexcept>
#include <string_view>

#include "troupe/protocol.hpp"
#include "troupe/value_buffer.hpp"

namespace troupe::cli {
namespace {

// A JSON string never holds bytes that are not UTF-8 (nlohmann::json::dump
// would throw on them); each such byte becomes U+FFFD.
std::string text_of(const char* data, std::uint32_t size) {
  const std::string_view text(data, size);
  return protocol::valid_utf8(text) ? std::string(text) : protocol::to_valid_utf8(text);
}

bool is_scalar(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
    case msgpack::type::BOOLEAN:
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
    case msgpack::type::STR:
      return true;
    default:
      return false;
  }
}

// "msgpack:" and the key's MessagePack bytes in hex: 2 characters a byte,
// whatever the key holds.
std::string hex_key(const msgpack::object& key) {
  troupe::value_buffer packed;  // keeps floats floats, as on the wire
  msgpack::pack(packed, key);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "msgpack:";
  out.reserve(out.size() + 2 * packed.size());
  for (std::size_t i = 0; i < packed.size(); ++i) {
    const auto b = static_cast<unsigned char>(packed.data()[i]);
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

nlohmann::json to_json(const msgpack::object& o, bool inside_key);

// JSON object keys are strings. A str key is itself; any other key is its
// own JSON text (1 -> "1", [1,2] -> "[1,2]"). That text is escaped once more
// as a key, so a container key holding container keys, each rendered the
// same way, would be escaped again at every level and double in size per
// level (issue 16: 54 bytes printed 200 MB). So inside a key, a key that is
// not a scalar is written as its MessagePack hex instead: output stays
// linear in the reply.
std::string key_of(const msgpack::object& key, bool inside_key) {
  if (key.type == msgpack::type::STR) return text_of(key.via.str.ptr, key.via.str.size);
  if (inside_key && !is_scalar(key)) return hex_key(key);
  return to_json(key, true).dump();
}

nlohmann::json to_json(const msgpack::object& o, bool inside_key) {
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return o.via.f64;
    case msgpack::type::STR:
      return text_of(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN: {
      auto bytes = nlohmann::json::array();
      for (std::uint32_t i = 0; i < o.via.bin.size; ++i)
        bytes.push_back(static_cast<unsigned char>(o.via.bin.ptr[i]));
      return bytes;
    }
    case msgpack::type::EXT: {
      auto data = nlohmann::json::array();
      for (std::uint32_t i = 0; i < o.via.ext.size; ++i)
        data.push_back(static_cast<unsigned char>(o.via.ext.data()[i]));
      return {{"ext", o.via.ext.type()}, {"data", data}};
    }
    case msgpack::type::ARRAY: {
      auto a = nlohmann::json::array();
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        a.push_back(to_json(o.via.array.ptr[i], inside_key));
      return a;
    }
    case msgpack::type::MAP: {
      auto m = nlohmann::json::object();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        m[key_of(kv.key, inside_key)] = to_json(kv.val, inside_key);
      }
      return m;
    }
  }
  return nullptr;
}

}  // namespace

std::string json_args_to_msgpack(const std::vector<std::string>& args) {
  auto array = nlohmann::json::array();
  for (std::size_t i = 0; i < args.size(); ++i) {
    try {
      array.push_back(nlohmann::json::parse(args[i]));
    } catch (const nlohmann::json::parse_error&) {
      throw std::invalid_argument("argument " + std::to_string(i + 1) + " is not valid JSON: " + args[i] +
                                  " (strings need quotes: '\"text\"')");
    } catch (const nlohmann::json::out_of_range&) {
      // Valid JSON, but a number that no double holds (1e400).
      throw std::invalid_argument("argument " + std::to_string(i + 1) + " holds a number out of range: " +
                                  args[i] + " (numbers must fit a 64-bit integer or a double)");
    }
  }
  const auto bytes = nlohmann::json::to_msgpack(array);
  return std::string(bytes.begin(), bytes.end());
}

nlohmann::json msgpack_to_json(const std::string& bytes, std::size_t max_depth) {
  const auto bound = std::max<std::size_t>(bytes.size(), 1);
  const msgpack::unpack_limit limit(bound, bound, bound, bound, bound, max_depth);
  auto handle = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr, limit);
  return to_json(handle.get(), false);
}

}  // namespace troupe::cli
