// The broker's event log: workers joining, leaving and lost, and READYs
// refused (docs/operations.md, "Logs"). One line per event, never one per
// request: the hot path logs nothing.
#include "broker/core.hpp"
#include "troupe/log.hpp"

namespace troupe {
namespace {

// Deduced, as broker_core's entries are private to it.
template <class Actors>
std::string names_of(const Actors& actors) {
  std::string names;
  for (const auto* a : actors) {
    if (!names.empty()) names += ',';
    names += a->name;
  }
  return names;
}

}  // namespace

void broker_core::log_joined(std::uint32_t wi, bool fresh) const {
  if (!log::enabled(log::level::info)) return;
  const auto& w = workers_[wi];
  const auto names = names_of(w.actors);
  const auto id = log::printable_id(w.identity);
  log::write(
      log::level::info, fresh ? "worker_joined" : "worker_registered_again",
      "worker '" + w.name + "' (pid " + std::to_string(w.pid) + ") " +
          (fresh ? "joined" : "registered again") + ": hosts " + (names.empty() ? "nothing" : names) +
          " with " + std::to_string(w.credits) + " credits",
      {{"worker", w.name}, {"worker_pid", w.pid}, {"id", id}, {"actors", names}, {"credits", w.credits}});
}

void broker_core::log_leaving(std::uint32_t wi) const {
  if (!log::enabled(log::level::info)) return;
  const auto& w = workers_[wi];
  log::write(log::level::info, "worker_leaving",
             "worker '" + w.name + "' (pid " + std::to_string(w.pid) + ") is leaving; it holds " +
                 std::to_string(w.in_flight) + " request(s)",
             {{"worker", w.name},
              {"worker_pid", w.pid},
              {"id", log::printable_id(w.identity)},
              {"held", w.in_flight}});
}

// Left: it said DISCONNECT and finished what it held. Lost: anything else
// (silent, its process gone, or the broker could not send to it).
void broker_core::log_removed(std::uint32_t wi, std::size_t asks_lost) const {
  const auto& w = workers_[wi];
  const bool left = w.draining && removal_why_.empty();
  const auto l = left ? log::level::info : log::level::warn;
  if (!log::enabled(l)) return;
  const auto names = names_of(w.actors);
  const auto id = log::printable_id(w.identity);
  if (left) {
    log::write(l, "worker_left", "worker '" + w.name + "' (pid " + std::to_string(w.pid) + ") left",
               {{"worker", w.name}, {"worker_pid", w.pid}, {"id", id}, {"actors", names}});
    return;
  }
  const auto why = removal_why_.empty() ? std::string("it left before finishing") : removal_why_;
  log::write(l, "worker_lost",
             "worker '" + w.name + "' (pid " + std::to_string(w.pid) + ") was lost: " + why + "; " +
                 std::to_string(asks_lost) + " ask(s) answered worker_lost",
             {{"worker", w.name},
              {"worker_pid", w.pid},
              {"id", id},
              {"actors", names},
              {"reason", why},
              {"asks_lost", static_cast<std::uint64_t>(asks_lost)}});
}

void broker_core::log_refused_ready(std::string_view identity, std::string_view why) const {
  if (!log::enabled(log::level::warn)) return;
  log::write(log::level::warn, "worker_refused", "refused a READY: " + std::string(why),
             {{"id", log::printable_id(identity)}, {"reason", why}});
}

}  // namespace troupe
