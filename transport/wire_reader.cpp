#include "wire_reader.hpp"

namespace troupe::protocol {

bool wire_reader::take(std::size_t n, const unsigned char*& out) {
  if (static_cast<std::size_t>(end_ - pos_) < n) return false;
  out = pos_;
  pos_ += n;
  return true;
}

// Reads an n-byte big-endian unsigned integer.
std::optional<std::uint64_t> wire_reader::be(std::size_t n) {
  const unsigned char* p = nullptr;
  if (!take(n, p)) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

std::optional<std::uint32_t> wire_reader::array_header() {
  if (pos_ == end_) return std::nullopt;
  const unsigned char b = *pos_;
  if ((b & 0xf0) == 0x90) {
    ++pos_;
    return b & 0x0f;
  }
  if (b == 0xdc || b == 0xdd) {
    ++pos_;
    auto n = be(b == 0xdc ? 2 : 4);
    if (!n) return std::nullopt;
    return static_cast<std::uint32_t>(*n);
  }
  return std::nullopt;
}

std::optional<std::uint32_t> wire_reader::map_header() {
  if (pos_ == end_) return std::nullopt;
  const unsigned char b = *pos_;
  if ((b & 0xf0) == 0x80) {
    ++pos_;
    return b & 0x0f;
  }
  if (b == 0xde || b == 0xdf) {
    ++pos_;
    auto n = be(b == 0xde ? 2 : 4);
    if (!n) return std::nullopt;
    return static_cast<std::uint32_t>(*n);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> wire_reader::uint() {
  if (pos_ == end_) return std::nullopt;
  const unsigned char b = *pos_;
  if (b <= 0x7f) {
    ++pos_;
    return b;
  }
  // Any integer encoding of a value in range is accepted, not only the
  // shortest: several MessagePack libraries write typed 64-bit integers as
  // int64, or a small value as int8. Only the value decides, so a signed
  // encoding is fine as long as the value is not negative.
  std::size_t n = 0;
  bool is_signed = false;
  switch (b) {
    case 0xcc:  // uint 8..64
    case 0xcd:
    case 0xce:
    case 0xcf:
      n = std::size_t{1} << (b - 0xcc);
      break;
    case 0xd0:  // int 8..64
    case 0xd1:
    case 0xd2:
    case 0xd3:
      n = std::size_t{1} << (b - 0xd0);
      is_signed = true;
      break;
    default:
      return std::nullopt;  // negative fixint, or not an integer
  }
  ++pos_;
  auto v = be(n);
  if (v && is_signed && (*v >> (8 * n - 1)) != 0) return std::nullopt;  // sign bit set: negative
  return v;
}

std::optional<std::string_view> wire_reader::str() {
  if (pos_ == end_) return std::nullopt;
  const unsigned char b = *pos_;
  std::uint64_t len = 0;
  if ((b & 0xe0) == 0xa0) {
    ++pos_;
    len = b & 0x1f;
  } else if (b == 0xd9 || b == 0xda || b == 0xdb) {
    ++pos_;
    auto n = be(b == 0xd9 ? 1 : b == 0xda ? 2 : 4);
    if (!n) return std::nullopt;
    len = *n;
  } else {
    return std::nullopt;
  }
  const unsigned char* p = nullptr;
  if (!take(len, p)) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(p), len);
}

bool wire_reader::skip(int depth) {
  if (pos_ == end_ || depth < 0) return false;
  const unsigned char b = *pos_;
  const unsigned char* p = nullptr;
  // Fixed-size scalars.
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return take(1, p);
  if ((b & 0xe0) == 0xa0) return take(1 + (b & 0x1f), p);
  if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
    auto n = array_header();
    if (!n) return false;
    for (std::uint32_t i = 0; i < *n; ++i)
      if (!skip(depth - 1)) return false;
    return true;
  }
  if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
    auto n = map_header();
    if (!n) return false;
    for (std::uint32_t i = 0; i < *n; ++i)
      if (!skip(depth - 1) || !skip(depth - 1)) return false;
    return true;
  }
  ++pos_;
  switch (b) {
    case 0xcc:
    case 0xd0:
      return take(1, p);
    case 0xcd:
    case 0xd1:
      return take(2, p);
    case 0xce:
    case 0xd2:
    case 0xca:
      return take(4, p);
    case 0xcf:
    case 0xd3:
    case 0xcb:
      return take(8, p);
    case 0xd4:
      return take(2, p);  // fixext 1
    case 0xd5:
      return take(3, p);  // fixext 2
    case 0xd6:
      return take(5, p);  // fixext 4
    case 0xd7:
      return take(9, p);  // fixext 8
    case 0xd8:
      return take(17, p);  // fixext 16
    case 0xc4:
    case 0xd9: {
      auto n = be(1);
      return n && take(*n, p);
    }
    case 0xc5:
    case 0xda: {
      auto n = be(2);
      return n && take(*n, p);
    }
    case 0xc6:
    case 0xdb: {
      auto n = be(4);
      return n && take(*n, p);
    }
    case 0xc7: {
      auto n = be(1);
      return n && take(*n + 1, p);
    }
    case 0xc8: {
      auto n = be(2);
      return n && take(*n + 1, p);
    }
    case 0xc9: {
      auto n = be(4);
      return n && take(*n + 1, p);
    }
    default:
      return false;  // 0xc1 is never used
  }
}

}  // namespace troupe::protocol
