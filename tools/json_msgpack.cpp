#include "json_msgpack.hpp"

#include <msgpack.hpp>
#include <stdexcept>

namespace troupe::cli {
namespace {

nlohmann::json to_json(const msgpack::object& o) {
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
      return std::string(o.via.str.ptr, o.via.str.size);
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
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) a.push_back(to_json(o.via.array.ptr[i]));
      return a;
    }
    case msgpack::type::MAP: {
      auto m = nlohmann::json::object();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        // JSON keys are strings; other key types are written as their JSON text.
        const auto key = kv.key.type == msgpack::type::STR
                             ? std::string(kv.key.via.str.ptr, kv.key.via.str.size)
                             : to_json(kv.key).dump();
        m[key] = to_json(kv.val);
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
    }
  }
  const auto bytes = nlohmann::json::to_msgpack(array);
  return std::string(bytes.begin(), bytes.end());
}

nlohmann::json msgpack_to_json(const std::string& bytes, std::size_t max_depth) {
  const auto bound = std::max<std::size_t>(bytes.size(), 1);
  const msgpack::unpack_limit limit(bound, bound, bound, bound, bound, max_depth);
  auto handle = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr, limit);
  return to_json(handle.get());
}

}  // namespace troupe::cli
