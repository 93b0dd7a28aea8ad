// The CLI's JSON conversion (tools/json_msgpack.hpp), both directions.
//
// msgpack_to_json (a reply value shown by `troupe call`): no crash; only
// msgpack::unpack_error escapes (the bytes are not one value within the
// depth limit); the JSON text is at most linear in the input's size
// (issue 16, finding 3: non-str map keys nested in keys used to double the
// text per level).
//
// json_args_to_msgpack (the ARGs of `troupe call`): no crash; only
// std::invalid_argument escapes, which the CLI turns into exit code 2
// (finding 5: a number JSON cannot represent, 1e400, escaped as another
// exception); the result is one msgpack array with one element per
// argument, and msgpack_to_json reads it back.
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "json_msgpack.hpp"

namespace {

// Output characters per input byte, and a constant for tiny inputs. The
// densest honest cases are near 6 (a control character in a str becomes
// "\u0001", nil in an array "null,"); 32 leaves room for any linear
// representation and still catches a blow-up at once.
constexpr std::size_t per_byte = 32, slack = 256;

void to_json(const std::string& bytes) {
  try {
    const auto j = troupe::cli::msgpack_to_json(bytes);
    // `troupe call` prints dump(); replacing bad UTF-8 measures its size
    // without depending on that (the CLI catches dump's type_error).
    const auto text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    FUZZ_CHECK(text.size() <= per_byte * bytes.size() + slack,
               std::to_string(bytes.size()) + " bytes of msgpack became " + std::to_string(text.size()) +
                   " bytes of JSON: " + troupe::fuzz::hex(bytes));
  } catch (const msgpack::unpack_error&) {
  }
}

void to_msgpack(const std::vector<std::string>& args) {
  std::string packed;
  try {
    packed = troupe::cli::json_args_to_msgpack(args);
  } catch (const std::invalid_argument&) {
    return;
  }
  std::size_t in_bytes = 0;
  for (const auto& a : args) in_bytes += a.size();
  // Each level of nesting costs the JSON at least one byte.
  FUZZ_CHECK(troupe::fuzz::one_value(packed, in_bytes + 2),
             "json_args_to_msgpack wrote bytes that are not one value");
  const auto h = msgpack::unpack(packed.data(), packed.size());
  FUZZ_CHECK(h.get().type == msgpack::type::ARRAY && h.get().via.array.size == args.size(),
             "not one array element per argument");
  // JSON's shortest tokens ("1", "[]") take one msgpack byte; a float takes 9.
  FUZZ_CHECK(packed.size() <= 16 * in_bytes + 16, "the msgpack is out of proportion to the JSON");
  to_json(packed);  // what `troupe call` sends, it can also show
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    to_json(rest);
  } else {
    // Arguments separated by NUL bytes (a shell argument cannot hold one).
    std::vector<std::string> args;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= rest.size() && args.size() < 16; ++i) {
      if (i == rest.size() || rest[i] == '\0') {
        args.push_back(rest.substr(start, i - start));
        start = i + 1;
      }
    }
    to_msgpack(args);
  }
  return 0;
}
