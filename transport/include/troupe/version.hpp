// The version of troupe a program was built with, for `--version` on every
// executable (the `troupe` command line, workers made with worker_main).
#pragma once

namespace troupe {

// "0.1.0": the CMake project's version. The wire protocol has its own
// version (protocol::version); this one names the release.
const char* version() noexcept;

}  // namespace troupe
