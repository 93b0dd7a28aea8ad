// A minimal, allocation-free MessagePack reader for the protocol's own small
// frames (meta, info). It reads exactly the types the spec allows and fails
// on anything else, so a hostile frame can neither allocate nor recurse.
// Arguments and results are user data and go through msgpack-c instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace troupe::protocol {

class wire_reader {
 public:
  wire_reader(const void* data, std::size_t size)
      : pos_(static_cast<const unsigned char*>(data)), end_(pos_ + size) {}

  std::optional<std::uint32_t> array_header();
  std::optional<std::uint32_t> map_header();
  // A non-negative integer in any of MessagePack's integer encodings
  // (fixint, uint 8..64, int 8..64); a negative value is not a uint.
  std::optional<std::uint64_t> uint();
  // The bytes of a str; whether they are UTF-8 is the caller's check.
  std::optional<std::string_view> str();
  // Skips one value of any type, nested at most `depth` levels.
  bool skip(int depth = 8);
  bool at_end() const { return pos_ == end_; }
  // Consumes a nil if one is next; false (consuming nothing) otherwise.
  bool nil() {
    if (pos_ == end_ || *pos_ != 0xc0) return false;
    ++pos_;
    return true;
  }
  const unsigned char* position() const { return pos_; }

 private:
  bool take(std::size_t n, const unsigned char*& out);
  std::optional<std::uint64_t> be(std::size_t n);

  const unsigned char* pos_;
  const unsigned char* end_;
};

}  // namespace troupe::protocol
