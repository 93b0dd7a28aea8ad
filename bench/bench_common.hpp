// Shared by the benchmark programs: troupe's frame constants and a
// bounded-wait helper. The floor programs speak the same frames as troupe
// (docs/protocol.md) but deliberately do not use troupe's own code, so the
// floor measures ZeroMQ + msgpack-c and nothing of troupe.
#pragma once

#include <signal.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <zmq.hpp>

namespace bench {

inline constexpr std::size_t header_size = 5;
inline constexpr std::uint8_t cmd_request = 0x01;
inline constexpr std::uint8_t cmd_reply = 0x02;
inline constexpr std::uint8_t cmd_ready = 0x03;
inline constexpr std::uint8_t cmd_heartbeat = 0x04;
inline constexpr std::uint8_t cmd_disconnect = 0x05;

inline std::array<char, header_size> header(std::uint8_t cmd) {
  return {'T', 'R', 'P', 1, static_cast<char>(cmd)};
}

// The command byte of a header frame, or 0 when it is not a troupe v1 header.
inline std::uint8_t parse_header(const void* data, std::size_t size) {
  if (size != header_size) return 0;
  const auto* p = static_cast<const unsigned char*>(data);
  if (p[0] != 'T' || p[1] != 'R' || p[2] != 'P' || p[3] != 1) return 0;
  return p[4];
}

// ---- a minimal MessagePack reader and writer --------------------------------
//
// Only what the floor's frames need: unsigned and signed integers, str, and
// array headers. Written here, not taken from msgpack-c or troupe, so the
// floor decodes with the least code that still checks every byte it reads
// (a general unpacker into a zone cost the old floor worker 1.6 x the
// instructions of troupe's allocation-free reader).

struct mp_reader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  mp_reader(const void* data, std::size_t size) : p(static_cast<const unsigned char*>(data)), end(p + size) {}

  std::uint64_t be(int n) {
    if (end - p < n) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
    p += n;
    return v;
  }
  std::uint8_t byte() { return static_cast<std::uint8_t>(p < end ? *p++ : (ok = false, 0)); }

  // An array header; returns its size.
  std::uint32_t array() {
    const auto b = byte();
    if ((b & 0xf0) == 0x90) return b & 0x0f;
    if (b == 0xdc) return static_cast<std::uint32_t>(be(2));
    if (b == 0xdd) return static_cast<std::uint32_t>(be(4));
    ok = false;
    return 0;
  }
  // Any integer encoding (a uint 64 above INT64_MAX reads as negative).
  std::int64_t integer() {
    const auto b = byte();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return static_cast<std::int8_t>(b);
    switch (b) {
      case 0xcc:
        return static_cast<std::int64_t>(be(1));
      case 0xcd:
        return static_cast<std::int64_t>(be(2));
      case 0xce:
        return static_cast<std::int64_t>(be(4));
      case 0xcf:
        return static_cast<std::int64_t>(be(8));
      case 0xd0:
        return static_cast<std::int8_t>(be(1));
      case 0xd1:
        return static_cast<std::int16_t>(be(2));
      case 0xd2:
        return static_cast<std::int32_t>(be(4));
      case 0xd3:
        return static_cast<std::int64_t>(be(8));
      default:
        ok = false;
        return 0;
    }
  }
  // A str: its bytes (not copied).
  std::string_view str() {
    const auto b = byte();
    std::size_t n;
    if ((b & 0xe0) == 0xa0)
      n = b & 0x1f;
    else if (b == 0xd9)
      n = be(1);
    else if (b == 0xda)
      n = be(2);
    else if (b == 0xdb)
      n = be(4);
    else {
      ok = false;
      return {};
    }
    if (static_cast<std::size_t>(end - p) < n) {
      ok = false;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  bool done() const { return ok && p == end; }
};

// Writes into a fixed buffer (the floor's frames are small).
struct mp_writer {
  unsigned char buf[640];
  std::size_t n = 0;

  void be(std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) buf[n++] = static_cast<unsigned char>(v >> (8 * i));
  }
  void array(std::uint8_t size) { buf[n++] = static_cast<unsigned char>(0x90 | size); }
  void uint(std::uint64_t v) {
    if (v <= 0x7f)
      buf[n++] = static_cast<unsigned char>(v);
    else if (v <= 0xff)
      buf[n++] = 0xcc, be(v, 1);
    else if (v <= 0xffff)
      buf[n++] = 0xcd, be(v, 2);
    else if (v <= 0xffffffff)
      buf[n++] = 0xce, be(v, 4);
    else
      buf[n++] = 0xcf, be(v, 8);
  }
  void integer(std::int64_t v) {
    if (v >= 0) return uint(static_cast<std::uint64_t>(v));
    if (v >= -32)
      buf[n++] = static_cast<unsigned char>(v);
    else
      buf[n++] = 0xd3, be(static_cast<std::uint64_t>(v), 8);
  }
  // Strings up to 255 bytes, at most two per frame (all the floor writes).
  void str(std::string_view s) {
    if (s.size() < 32)
      buf[n++] = static_cast<unsigned char>(0xa0 | s.size());
    else
      buf[n++] = 0xd9, buf[n++] = static_cast<unsigned char>(s.size());
    std::memcpy(buf + n, s.data(), s.size());
    n += s.size();
  }
};

inline std::atomic<bool> g_stop{false};
inline void on_signal(int) { g_stop.store(true); }
inline void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// CURVE from the environment, so that the same programs measure encrypted
// runs (bench/curve_bench.py). Keys are Z85 text:
//   BENCH_CURVE_SERVER_SECRET  the forwarder is a CURVE server with this
//                              secret key (and no ZAP handler: any client key)
//   BENCH_CURVE_SERVER_KEY     a client or worker is a CURVE client of the
//                              server with this public key, with the key pair
//   BENCH_CURVE_PUBLIC, BENCH_CURVE_SECRET  (else a fresh one)
// Unset: plaintext. Call before bind() or connect().
inline void curve_server_from_env(zmq::socket_t& s) {
  const char* secret = std::getenv("BENCH_CURVE_SERVER_SECRET");
  if (!secret || !*secret) return;
  s.set(zmq::sockopt::curve_server, true);
  s.set(zmq::sockopt::curve_secretkey, std::string(secret));
}

inline void curve_client_from_env(zmq::socket_t& s) {
  const char* server = std::getenv("BENCH_CURVE_SERVER_KEY");
  if (!server || !*server) return;
  std::string pub, sec;
  if (const char* p = std::getenv("BENCH_CURVE_PUBLIC"), *q = std::getenv("BENCH_CURVE_SECRET"); p && q) {
    pub = p;
    sec = q;
  } else {
    char p41[41], s41[41];
    if (zmq_curve_keypair(p41, s41) != 0) throw zmq::error_t();
    pub.assign(p41, 40);
    sec.assign(s41, 40);
  }
  s.set(zmq::sockopt::curve_serverkey, std::string(server));
  s.set(zmq::sockopt::curve_publickey, pub);
  s.set(zmq::sockopt::curve_secretkey, sec);
}

}  // namespace bench
