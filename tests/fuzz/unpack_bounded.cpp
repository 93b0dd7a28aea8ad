// wire::unpack_bounded (troupe/wire.hpp), both forms: on any input it
// returns one value or throws msgpack::unpack_error, nothing else; the
// value is no deeper than limits.max_depth, and every value msgpack-c
// accepts within that depth is accepted (docs/protocol.md: 32 levels pass,
// 33 do not); no container or string claims more than the frame holds; the
// zone form points into the frame instead of copying; both forms agree.
// Allocation is bounded by the frame: the fuzz runs set -malloc_limit_mb
// and -rss_limit_mb (scripts/fuzz.sh), which turn any larger allocation
// into a finding.
#include <string>

#include "fuzz_support.hpp"
#include "troupe/wire.hpp"

namespace {

bool inside(const char* p, std::size_t n, const std::uint8_t* data, std::size_t size) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(p);
  return n == 0 || (b >= data && b + n <= data + size);
}

void check_bounds(const msgpack::object& o, const std::uint8_t* data, std::size_t size, bool referenced) {
  switch (o.type) {
    case msgpack::type::ARRAY:
      FUZZ_CHECK(o.via.array.size <= size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        check_bounds(o.via.array.ptr[i], data, size, referenced);
      break;
    case msgpack::type::MAP:
      FUZZ_CHECK(o.via.map.size <= size);
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        check_bounds(o.via.map.ptr[i].key, data, size, referenced);
        check_bounds(o.via.map.ptr[i].val, data, size, referenced);
      }
      break;
    case msgpack::type::STR:
      FUZZ_CHECK(o.via.str.size <= size);
      if (referenced) FUZZ_CHECK(inside(o.via.str.ptr, o.via.str.size, data, size), "a str was copied");
      break;
    case msgpack::type::BIN:
      FUZZ_CHECK(o.via.bin.size <= size);
      if (referenced) FUZZ_CHECK(inside(o.via.bin.ptr, o.via.bin.size, data, size), "a bin was copied");
      break;
    case msgpack::type::EXT:
      FUZZ_CHECK(o.via.ext.size <= size);
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe;
  if (size == 0) return 0;
  // The first byte chooses the depth limit, 0..40, around the default 32.
  protocol::limits limits;
  limits.max_depth = data[0] % 41;
  ++data;
  --size;

  std::string via_handle, via_zone;
  bool handle_ok = false, zone_ok = false;
  try {
    auto handle = wire::unpack_bounded(data, size, limits);
    FUZZ_CHECK(fuzz::depth_of(handle.get()) <= limits.max_depth, "a value deeper than the limit");
    check_bounds(handle.get(), data, size, false);
    via_handle = fuzz::packed(handle.get());
    handle_ok = true;
  } catch (const msgpack::unpack_error&) {
    // documented: malformed, over a limit, or trailing bytes
  }
  try {
    msgpack::zone zone;
    const auto object = wire::unpack_bounded(zone, data, size, limits);
    FUZZ_CHECK(fuzz::depth_of(object) <= limits.max_depth, "a value deeper than the limit");
    check_bounds(object, data, size, true);
    via_zone = fuzz::packed(object);
    zone_ok = true;
  } catch (const msgpack::unpack_error&) {
  }
  FUZZ_CHECK(handle_ok == zone_ok && via_handle == via_zone, "the two forms of unpack_bounded disagree");

  // The reference: msgpack-c bounded by size only, depth up to 256.
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  bool reference_ok = false;
  std::size_t depth = 0;
  try {
    const auto bound = std::max<std::size_t>(size, 1);
    std::size_t offset = 0;
    auto h = msgpack::unpack(bytes.data(), size, offset, nullptr, nullptr,
                             msgpack::unpack_limit(bound, bound, bound, bound, bound, 256));
    reference_ok = offset == size;
    if (reference_ok) depth = fuzz::depth_of(h.get());
  } catch (const std::exception&) {
  }
  if (handle_ok) FUZZ_CHECK(reference_ok, "accepted what msgpack-c refuses: " + fuzz::hex(bytes));
  if (reference_ok && depth <= limits.max_depth)
    FUZZ_CHECK(handle_ok, "refused a value " + std::to_string(depth) + " levels deep under a limit of " +
                              std::to_string(limits.max_depth) + ": " + fuzz::hex(bytes));
  if (reference_ok && depth > limits.max_depth)
    FUZZ_CHECK(!handle_ok, "accepted a value over the depth limit");
  return 0;
}
