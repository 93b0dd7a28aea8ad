// Shared by the benchmark programs: troupe's frame constants and a
// bounded-wait helper. The floor programs speak the same frames as troupe
// (docs/protocol.md) but deliberately do not use troupe's own code, so the
// floor measures ZeroMQ + msgpack-c and nothing of troupe.
#pragma once

#include <signal.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>

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

inline std::atomic<bool> g_stop{false};
inline void on_signal(int) { g_stop.store(true); }
inline void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace bench
