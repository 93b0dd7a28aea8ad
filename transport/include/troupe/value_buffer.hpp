// The buffer troupe packs user values into.
//
// msgpack-c 4.x packs a double or float whose value is whole (2.0, -0.0) as
// an integer. On the wire that changes a value's type: a client in another
// language sends 2.0 and gets 2 back, and -0.0 loses its sign. troupe keeps
// the float family: every packer writing into a value_buffer encodes
// `double` as float 64 and `float` as float 32, always.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <cstring>

namespace troupe {

struct value_buffer : msgpack::sbuffer {
  using msgpack::sbuffer::sbuffer;
};

}  // namespace troupe

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(v1) {
  template <>
  inline packer<troupe::value_buffer>& packer<troupe::value_buffer>::pack_double(double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[9];
    buf[0] = static_cast<char>(0xcbu);
    _msgpack_store64(&buf[1], bits);
    append_buffer(buf, 9);
    return *this;
  }

  template <>
  inline packer<troupe::value_buffer>& packer<troupe::value_buffer>::pack_float(float d) {
    std::uint32_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[5];
    buf[0] = static_cast<char>(0xcau);
    _msgpack_store32(&buf[1], bits);
    append_buffer(buf, 5);
    return *this;
  }

}  // MSGPACK_API_VERSION_NAMESPACE(v1)
}  // namespace msgpack
