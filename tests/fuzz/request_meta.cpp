// decode_request_meta: never crashes; what it accepts is an array of exactly
// [uint, str, str, uint, uint], plus a durable map (6th) and a call chain
// (7th, with a 6th that is the map or nil), to msgpack-c too; views point
// into the frame; a decoded meta re-encodes (never longer: the encoder
// writes the shortest form) and decodes to the same fields.
#include <string>

#include "fuzz_support.hpp"
#include "troupe/protocol.hpp"

namespace {

bool inside(std::string_view part, const std::uint8_t* data, std::size_t size) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(part.data());
  return part.empty() || (p >= data && p + part.size() <= data + size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  const auto meta = protocol::decode_request_meta(data, size);
  if (!meta) return 0;
  FUZZ_CHECK(inside(meta->address, data, size) && inside(meta->method, data, size), "views leave the frame");

  // msgpack-c agrees on the shape and the values.
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(fuzz::one_value(bytes), "accepted bytes that are not one msgpack value: " + fuzz::hex(bytes));
  const auto handle = msgpack::unpack(bytes.data(), bytes.size());
  const auto& o = handle.get();
  // A durable message's meta has a 6th element, a map; a request made from
  // inside a method a 7th, its call chain, after the map or nil (docs/protocol.md).
  const bool chained = !meta->chain.empty();
  FUZZ_CHECK(o.type == msgpack::type::ARRAY && o.via.array.size == (chained             ? 7u
                                                                    : meta->has_durable ? 6u
                                                                                        : 5u));
  FUZZ_CHECK(!meta->has_durable || o.via.array.ptr[5].type == msgpack::type::MAP);
  FUZZ_CHECK(!chained || meta->has_durable || o.via.array.ptr[5].type == msgpack::type::NIL);
  FUZZ_CHECK(!chained || o.via.array.ptr[6].type == msgpack::type::ARRAY);
  FUZZ_CHECK(!meta->has_durable || inside(meta->message_id, data, size), "the message id leaves the frame");
  FUZZ_CHECK(inside(meta->chain, data, size), "the chain leaves the frame");
  const auto* e = o.via.array.ptr;
  FUZZ_CHECK(e[0].type == msgpack::type::POSITIVE_INTEGER && e[0].via.u64 == meta->id);
  FUZZ_CHECK(e[1].type == msgpack::type::STR && e[1].as<std::string_view>() == meta->address);
  FUZZ_CHECK(e[2].type == msgpack::type::STR && e[2].as<std::string_view>() == meta->method);
  FUZZ_CHECK(e[3].type == msgpack::type::POSITIVE_INTEGER && e[3].via.u64 == meta->flags);
  FUZZ_CHECK(e[4].type == msgpack::type::POSITIVE_INTEGER && e[4].via.u64 == meta->timeout_ms);

  std::string encoded;
  protocol::encode_request_meta(encoded, *meta);
  FUZZ_CHECK(encoded.size() <= size, "re-encoding is longer than the input");
  const auto again = protocol::decode_request_meta(encoded.data(), encoded.size());
  FUZZ_CHECK(again.has_value(), "a re-encoded meta does not decode: " + fuzz::hex(encoded));
  FUZZ_CHECK(again->id == meta->id && again->address == meta->address && again->method == meta->method &&
             again->flags == meta->flags && again->timeout_ms == meta->timeout_ms &&
             again->has_durable == meta->has_durable && again->message_id == meta->message_id &&
             again->delay_ms == meta->delay_ms && again->delivery == meta->delivery);
  const auto links = protocol::decode_chain(meta->chain), links_again = protocol::decode_chain(again->chain);
  FUZZ_CHECK(links.size() == links_again.size(), "a re-encoded chain has other links");
  for (std::size_t i = 0; i < links.size(); ++i)
    FUZZ_CHECK(links[i].address == links_again[i].address && links[i].id == links_again[i].id,
               "a re-encoded chain has other links");
  return 0;
}
