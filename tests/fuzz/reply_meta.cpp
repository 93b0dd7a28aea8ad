// decode_reply_meta: never crashes; what it accepts is [uint, str] to
// msgpack-c too, with a UTF-8 status; a status it names is the code's own
// spelling; a decoded meta re-encodes (never longer) and decodes to the
// same fields.
#include <string>

#include "fuzz_support.hpp"
#include "troupe/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  const auto meta = protocol::decode_reply_meta(data, size);
  if (!meta) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(fuzz::one_value(bytes), "accepted bytes that are not one msgpack value: " + fuzz::hex(bytes));
  const auto handle = msgpack::unpack(bytes.data(), bytes.size());
  const auto& o = handle.get();
  FUZZ_CHECK(o.type == msgpack::type::ARRAY && o.via.array.size == 2);
  FUZZ_CHECK(o.via.array.ptr[0].type == msgpack::type::POSITIVE_INTEGER &&
             o.via.array.ptr[0].via.u64 == meta->id);
  FUZZ_CHECK(o.via.array.ptr[1].type == msgpack::type::STR &&
             o.via.array.ptr[1].as<std::string_view>() == meta->status_text);
  FUZZ_CHECK(protocol::valid_utf8(meta->status_text), "a status that is not UTF-8 was accepted");

  if (const auto code = protocol::status_from_string(meta->status_text))
    FUZZ_CHECK(protocol::to_string(*code) == meta->status_text, "status_from_string and to_string disagree");

  std::string encoded;
  protocol::encode_reply_meta(encoded, meta->id, meta->status_text);
  FUZZ_CHECK(encoded.size() <= size, "re-encoding is longer than the input");
  const auto again = protocol::decode_reply_meta(encoded.data(), encoded.size());
  FUZZ_CHECK(again.has_value(), "a re-encoded meta does not decode: " + fuzz::hex(encoded));
  FUZZ_CHECK(again->id == meta->id && again->status_text == meta->status_text);
  return 0;
}
