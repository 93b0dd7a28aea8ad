// The C++ client's handling of a REPLY, from frames to the caller's result:
// header, decode_reply_meta, status_from_string, wire::unpack_bounded and
// conversion to a few result types. Whatever the frames, the outcome is a
// value, a message ignored (as the client ignores what is not a REPLY it
// can read), or one of troupe's exceptions (troupe::error for an error
// reply, troupe::result_type_error for a value that does not convert):
// never a crash, never another exception type, never an error reply turned
// into a value.
//
// client::check and client::decode are private members of troupe::client;
// this harness follows them step for step with the same public functions
// (transport/client.cpp, on_reply, check, decode).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "troupe/client.hpp"
#include "troupe/wire.hpp"

namespace {

using namespace troupe;

msgpack::object_handle unpack(const std::string& bytes, const protocol::limits& limits) {
  try {
    return wire::unpack_bounded(bytes.data(), bytes.size(), limits);
  } catch (const std::exception& e) {
    throw result_type_error(std::string("the reply value is not valid msgpack: ") + e.what());
  }
}

void check(const raw_reply& reply, const protocol::limits& limits) {
  if (reply.code == protocol::status::ok) return;
  std::string message;
  try {
    unpack(reply.value, limits).get().convert(message);
  } catch (const std::exception&) {
    message = "(no readable message)";
  }
  throw error(reply.code, message);
}

template <class R>
R decode(const raw_reply& reply, const protocol::limits& limits) {
  check(reply, limits);
  auto handle = unpack(reply.value, limits);
  return detail::result_as<R>(handle.get());
}

template <class R>
void try_as(const raw_reply& reply, const protocol::limits& limits) {
  try {
    (void)decode<R>(reply, limits);
    FUZZ_CHECK(reply.code == protocol::status::ok, "an error reply became a value");
  } catch (const troupe::error& e) {
    FUZZ_CHECK(reply.code != protocol::status::ok && e.code() == reply.code, "error with the wrong code");
  } catch (const troupe::result_type_error&) {
    FUZZ_CHECK(reply.code == protocol::status::ok, "an error reply reported as a type mismatch");
  } catch (const troupe::exception& e) {
    FUZZ_CHECK(false, std::string("an unexpected troupe exception: ") + e.what());
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("a non-troupe exception escaped: ") + typeid(e).name() + ": " + e.what());
  }
}

struct point {
  int x = 0;
  double y = 0;
  MSGPACK_DEFINE_MAP(x, y)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  // Frames as the socket delivers them: a count, then length-prefixed frames.
  const auto count = in.pick(5);
  std::vector<std::string> frames;
  for (std::size_t i = 0; i < count; ++i) frames.emplace_back(in.long_bytes(4096));
  const auto as = in.u8();

  if (frames.size() != 3) return 0;  // ignored: not a REPLY's frame count
  if (protocol::parse_header(frames[0].data(), frames[0].size()) != protocol::command::reply) return 0;
  const auto meta = protocol::decode_reply_meta(frames[1].data(), frames[1].size());
  if (!meta) return 0;
  raw_reply reply;
  // A status this client does not know yet is still an error, never a value.
  reply.code = protocol::status_from_string(meta->status_text).value_or(protocol::status::bad_request);
  reply.value = frames[2];

  protocol::limits limits;
  switch (as % 9) {
    case 0:
      return try_as<std::int64_t>(reply, limits), 0;
    case 1:
      return try_as<std::uint8_t>(reply, limits), 0;
    case 2:
      return try_as<double>(reply, limits), 0;
    case 3:
      return try_as<std::string>(reply, limits), 0;
    case 4:
      return try_as<std::vector<int>>(reply, limits), 0;
    case 5:
      return try_as<std::map<std::string, double>>(reply, limits), 0;
    case 6:
      return try_as<std::optional<bool>>(reply, limits), 0;
    case 7:
      return try_as<point>(reply, limits), 0;
    default:
      try {
        check(reply, limits);  // ask<void>
        FUZZ_CHECK(reply.code == protocol::status::ok, "an error reply became a value");
      } catch (const troupe::error& e) {
        FUZZ_CHECK(e.code() == reply.code && e.code() != protocol::status::ok);
      }
      return 0;
  }
}
