#include "limit_flags.hpp"

namespace troupe {

limit_flags::limit_flags(CLI::App& app, worker_options& opt)
    : time_limit_ms_(opt.time_limit.count()),
      deadline_grace_ms_(opt.deadline_grace.count()),
      idle_timeout_ms_(opt.idle_timeout.count()) {
  const auto day = std::int64_t{86'400'000};
  app.add_option("--time-limit-ms", time_limit_ms_,
                 "hard time limit of a call whose method and actor set none: past it the process is killed "
                 "and replaced, the caller gets time_limit_exceeded (0: none)")
      ->check(CLI::Range(std::int64_t{0}, day))
      ->capture_default_str();
  app.add_option(
         "--deadline-grace-ms", deadline_grace_ms_,
         "a call still running this long after its caller's deadline is killed the same way (0: never)")
      ->check(CLI::Range(std::int64_t{0}, day))
      ->capture_default_str();
  app.add_option("--max-requests", opt.max_requests,
                 "pool: a process that handled this many requests drains and is replaced (0: never)")
      ->capture_default_str();
  app.add_option(
         "--max-rss", opt.max_rss_mb,
         "pool: a process whose resident memory passes this many MB drains and is replaced (0: never)")
      ->capture_default_str();
  app.add_option(
         "--max-instances", opt.max_instances,
         "live keyed instances per process; past it the least recently used is passivated (0: no cap)")
      ->capture_default_str();
  app.add_option(
         "--idle-timeout-ms", idle_timeout_ms_,
         "passivate keyed instances idle this long, for actor types that set no idle timeout (0: never)")
      ->check(CLI::Range(std::int64_t{0}, day * 365))
      ->capture_default_str();
}

std::string limit_flags::apply(worker_options& opt) const {
  opt.time_limit = std::chrono::milliseconds(time_limit_ms_);
  opt.deadline_grace = std::chrono::milliseconds(deadline_grace_ms_);
  opt.idle_timeout = std::chrono::milliseconds(idle_timeout_ms_);
  // Only a supervisor can replace a process; one on its own would just stop.
  if (opt.processes < 1 && (opt.max_requests != 0 || opt.max_rss_mb != 0))
    return "--max-requests and --max-rss recycle the processes of a pool: give --processes N too";
  return {};
}

}  // namespace troupe
