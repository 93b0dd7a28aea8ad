// decode_ready: never crashes; a READY it accepts holds 1..10000 actor
// names, each passing valid_actor_name, credits 1..100000, a name of at most
// 128 bytes, no key twice; it re-encodes and decodes to the same fields. (Issue 16,
// finding 1: a repeated `actors` key used to register any number of names.)
#include <set>
#include <string>

#include "fuzz_support.hpp"
#include "troupe/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  const auto info = protocol::decode_ready(data, size);
  if (!info) return 0;
  FUZZ_CHECK(!info->actors.empty() && info->actors.size() <= 10000,
             std::to_string(info->actors.size()) + " names in one READY");
  for (const auto& name : info->actors)
    FUZZ_CHECK(protocol::valid_actor_name(name), "an invalid actor name was accepted: " + fuzz::hex(name));
  FUZZ_CHECK(info->credits >= 1 && info->credits <= 100000);
  FUZZ_CHECK(info->name.size() <= 128 && protocol::valid_utf8(info->name));
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(fuzz::one_value(bytes), "accepted bytes that are not one msgpack value: " + fuzz::hex(bytes));
  // A repeated key in any map the protocol defines is malformed.
  const auto handle = msgpack::unpack(bytes.data(), bytes.size());
  const auto& map = handle.get();
  FUZZ_CHECK(map.type == msgpack::type::MAP);
  std::set<std::string_view> keys;
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& key = map.via.map.ptr[i].key;
    FUZZ_CHECK(key.type == msgpack::type::STR, "a READY key that is not a str");
    FUZZ_CHECK(keys.insert(key.as<std::string_view>()).second,
               "a repeated key was accepted: " + fuzz::hex(bytes));
  }

  std::string encoded;
  protocol::encode_ready(encoded, *info);
  const auto again = protocol::decode_ready(encoded.data(), encoded.size());
  FUZZ_CHECK(again.has_value(), "a re-encoded READY does not decode: " + fuzz::hex(encoded));
  FUZZ_CHECK(again->name == info->name && again->pid == info->pid && again->credits == info->credits &&
             again->actors == info->actors && again->keys == info->keys &&
             again->retry.size() == info->retry.size());
  return 0;
}
