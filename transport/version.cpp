#include "troupe/version.hpp"

namespace troupe {

// TROUPE_VERSION comes from CMake (project(... VERSION ...)), so the number
// is written in one place.
const char* version() noexcept { return TROUPE_VERSION; }

}  // namespace troupe
