// The protocol's own reader (transport/wire_reader.hpp) against msgpack-c:
// where both accept an input, they agree on the value.
//
// msgpack-c unpacks the whole input as one value; the wire reader then
// walks the same bytes, asked for exactly the type msgpack-c saw at each
// step: array and map headers must give the same sizes, integers the same
// value (a negative one is no uint), strings the same bytes, and a value of
// any other type must be refused by every typed read and skipped. skip()
// over the whole input must succeed exactly when msgpack-c accepts it
// (within skip's depth), and end where msgpack-c ended.
#include <string>

#include "fuzz_support.hpp"
#include "wire_reader.hpp"

namespace {

using troupe::protocol::wire_reader;

constexpr int skip_depth = 16;

// Whether two readers stand at the same place (a reader is two pointers).
bool same_place(const wire_reader& a, const wire_reader& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void walk(wire_reader& r, const msgpack::object& o) {
  // skip() over this value must land where the typed reads below land.
  wire_reader skipped = r;
  FUZZ_CHECK(skipped.skip(64), "skip refused a value msgpack-c accepted");
  switch (o.type) {
    case msgpack::type::ARRAY: {
      const auto n = r.array_header();
      FUZZ_CHECK(n && *n == o.via.array.size, "array sizes differ");
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) walk(r, o.via.array.ptr[i]);
      break;
    }
    case msgpack::type::MAP: {
      const auto n = r.map_header();
      FUZZ_CHECK(n && *n == o.via.map.size, "map sizes differ");
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        walk(r, o.via.map.ptr[i].key);
        walk(r, o.via.map.ptr[i].val);
      }
      break;
    }
    case msgpack::type::POSITIVE_INTEGER: {
      const auto v = r.uint();
      FUZZ_CHECK(v && *v == o.via.u64, "integers differ");
      break;
    }
    case msgpack::type::STR: {
      const auto s = r.str();
      FUZZ_CHECK(s && *s == std::string_view(o.via.str.ptr, o.via.str.size), "strings differ");
      break;
    }
    default: {
      // nil, bool, a negative integer, float, bin, ext: no typed read takes it.
      wire_reader a = r, b = r, c = r, d = r;
      FUZZ_CHECK(!a.uint() && !b.str() && !c.array_header() && !d.map_header(),
                 "a typed read took a value of another type");
      FUZZ_CHECK(r.skip(0));
      break;
    }
  }
  FUZZ_CHECK(same_place(r, skipped), "skip() and the typed reads end at different places");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  // msgpack-c, bounded by the input's size (no allocation beyond it) and
  // with room for every depth that skip_depth allows.
  msgpack::object_handle handle;
  bool accepted = false;
  std::size_t depth = 0;
  try {
    const auto bound = std::max<std::size_t>(size, 1);
    std::size_t offset = 0;
    handle = msgpack::unpack(bytes.data(), size, offset, nullptr, nullptr,
                             msgpack::unpack_limit(bound, bound, bound, bound, bound, 256));
    accepted = offset == size;
    if (accepted) depth = troupe::fuzz::depth_of(handle.get());
  } catch (const std::exception&) {
    accepted = false;
  }

  // skip(d) takes containers nested up to d levels (an empty one at d + 1).
  wire_reader whole(data, size);
  const bool skipped = whole.skip(skip_depth) && whole.at_end();
  if (accepted && depth <= skip_depth)
    FUZZ_CHECK(skipped, "msgpack-c accepts what skip() refuses: " + troupe::fuzz::hex(bytes));
  if (skipped) FUZZ_CHECK(accepted, "skip() accepts what msgpack-c refuses: " + troupe::fuzz::hex(bytes));

  if (accepted && depth <= 64) {  // walk() skips with a depth of 64
    wire_reader r(data, size);
    walk(r, handle.get());
    FUZZ_CHECK(r.at_end(), "the typed reads stop before the end");
  }
  return 0;
}
