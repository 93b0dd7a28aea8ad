// The worker's flags for its bounds (docs/operations.md, "Limits"): time
// limits, recycling, passivation. Kept out of worker_main so the list of
// flags there stays readable.
//
// Not thread-safe: used while parsing the command line.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "troupe/worker.hpp"

namespace troupe {

class limit_flags {
 public:
  // Adds the flags to `app`; they write into `opt` and into this object.
  limit_flags(CLI::App& app, worker_options& opt);
  // After parsing: completes `opt`. Returns what is wrong with the flags
  // (for an error and exit code 2), or an empty string.
  std::string apply(worker_options& opt) const;

 private:
  std::int64_t time_limit_ms_, deadline_grace_ms_, idle_timeout_ms_;
};

}  // namespace troupe
