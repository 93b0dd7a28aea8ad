// Shared by the fuzz harnesses of tests/fuzz/: reading structured choices
// out of the fuzzer's bytes, checking invariants, and looking at msgpack.
//
// A harness defines LLVMFuzzerTestOneInput. It is linked either with
// libFuzzer (clang, TROUPE_FUZZ) or with replay_main.cpp, which runs the
// files it is given; both builds check the same invariants, so a reproducer
// fails `make test` as well as the fuzzer.
#pragma once

#include "troupe/value_buffer.hpp"  // first: its packer specializations precede any use

#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

// An invariant, checked in every build type (never compiled out like
// assert): on failure it says what broke and aborts, which libFuzzer
// reports as a crash and saves the input.
#define FUZZ_CHECK(cond, ...)                                                                        \
  do {                                                                                               \
    if (!(cond)) ::troupe::fuzz::fail(__FILE__, __LINE__, #cond, ::troupe::fuzz::what(__VA_ARGS__)); \
  } while (0)

namespace troupe::fuzz {

inline std::string what() { return {}; }
inline std::string what(std::string_view s) { return std::string(s); }

[[noreturn]] inline void fail(const char* file, int line, const char* cond, const std::string& message) {
  std::fprintf(stderr, "fuzz invariant failed at %s:%d: %s%s%s\n", file, line, cond,
               message.empty() ? "" : ": ", message.c_str());
  std::fflush(stderr);
  std::abort();
}

// Hex of at most the first 64 bytes, for messages.
inline std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < 64; ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

// Takes choices from the front of the input. When the input runs out every
// read returns zeros / empty, so any input is a complete program: the fuzzer
// never wastes executions on inputs that are "too short".
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}

  bool empty() const { return p_ == end_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }

  // Little-endian. Each read is its own statement: the order in which the
  // operands of | are evaluated is unspecified, and an input must mean the
  // same program whichever compiler built the harness.
  std::uint8_t u8() { return empty() ? 0 : *p_++; }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    return lo | (std::uint32_t{u16()} << 16);
  }
  std::uint64_t u64() {
    const std::uint64_t lo = u32();
    return lo | (std::uint64_t{u32()} << 32);
  }
  bool flag() { return (u8() & 1) != 0; }
  // One of n choices (n > 0).
  std::size_t pick(std::size_t n) { return u8() % n; }

  // The next n bytes, or what is left.
  std::string_view bytes(std::size_t n) {
    n = std::min(n, left());
    std::string_view out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return out;
  }
  // A length byte (at most max), then that many bytes.
  std::string_view short_bytes(std::size_t max = 255) { return bytes(u8() % (max + 1)); }
  // A 16-bit length (at most max), then that many bytes.
  std::string_view long_bytes(std::size_t max) { return bytes(u16() % (max + 1)); }
  std::string_view rest() { return bytes(left()); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Nesting depth as docs/protocol.md counts it: a scalar is 0, a container
// one more than the deepest thing it holds. Recursive; the callers only
// pass objects whose depth the unpacker already bounded.
inline std::size_t depth_of(const msgpack::object& o) {
  std::size_t deepest = 0;
  if (o.type == msgpack::type::ARRAY) {
    for (std::uint32_t i = 0; i < o.via.array.size; ++i)
      deepest = std::max(deepest, depth_of(o.via.array.ptr[i]));
    return deepest + 1;
  }
  if (o.type == msgpack::type::MAP) {
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      deepest = std::max(deepest, depth_of(o.via.map.ptr[i].key));
      deepest = std::max(deepest, depth_of(o.via.map.ptr[i].val));
    }
    return deepest + 1;
  }
  return 0;
}

// Whether `bytes` is exactly one well-formed msgpack value (nothing after
// it) no deeper than max_depth. Bounded like troupe's own decoding, so a
// hostile size field cannot make the check itself allocate.
inline bool one_value(std::string_view bytes, std::size_t max_depth = 64) {
  const auto bound = std::max<std::size_t>(bytes.size(), 1);
  const msgpack::unpack_limit limit(bound, bound, bound, bound, bound, max_depth);
  try {
    std::size_t offset = 0;
    msgpack::zone zone;
    (void)msgpack::unpack(zone, bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
    return offset == bytes.size();
  } catch (const std::exception&) {
    return false;
  }
}

// Packs a msgpack object the way troupe packs values (floats keep their
// family), for comparing two values by their bytes (NaN included).
inline std::string packed(const msgpack::object& o) {
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer>(buf).pack(o);
  return {buf.data(), buf.size()};
}

}  // namespace troupe::fuzz
