// A page of a `$broker` listing (`actors`, `workers`): at most `limit`
// entries from `cursor` on, so that one call costs a bounded time however
// many names or workers the broker holds (docs/protocol.md, "Management
// actor").
//
// args: []                  the first default_limit entries, answered in the
//                           listing's plain form (a map or an array);
//       [limit]             the first `limit` entries, in the paged form;
//       [limit, cursor]     `limit` entries from `cursor` on, paged form:
//                           {"items": <plain form>, "next": cursor | nil}.
// limit is 1..max_limit; cursor is 0 (the start) or a `next` from an
// earlier page. Plain values; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace troupe {

struct listing_page {
  static constexpr std::size_t default_limit = 1000;
  static constexpr std::size_t max_limit = 10000;

  std::size_t limit = default_limit;
  std::size_t cursor = 0;
  bool paged = false;  // args had a limit: answer {"items", "next"}

  // Reads the args frame of a listing. Returns nullopt, with the reason in
  // `why`, for anything but the forms above.
  static std::optional<listing_page> parse(const void* args, std::size_t size, std::string* why);
};

}  // namespace troupe
