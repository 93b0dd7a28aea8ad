// Types that cross the process boundary, shared by the worker and the
// client. MSGPACK_DEFINE_MAP sends a struct as a MessagePack map keyed by
// field name, so clients in other languages can build and read it.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <string>

namespace shop {

struct order {
  std::string item;
  std::int64_t quantity = 0;
  std::int64_t unit_cents = 0;
  MSGPACK_DEFINE_MAP(item, quantity, unit_cents)
};

struct invoice {
  std::string item;
  std::int64_t total_cents = 0;
  bool discounted = false;
  MSGPACK_DEFINE_MAP(item, total_cents, discounted)
};

}  // namespace shop
