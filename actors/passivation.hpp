// Passivation of keyed instances inside a dispatcher (docs/concepts.md,
// "Passivation"): an instance idle longer than its type's idle timeout, or
// the least recently used one when a new instance would go past the cap on
// live keyed instances, is destroyed exactly once, and its address is
// remembered so the worker can tell the broker (RELEASE). Its next message
// builds a fresh instance: in-memory state is lost.
//
// Two intrusive lists through detail::instance_base, least recently used
// first: every live keyed instance (for the cap), and those of each actor
// type (for idle timeouts, which differ per type). Every operation is O(1)
// but expiry, which is O(instances expired).
//
// Not thread-safe: it belongs to its dispatcher's thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "troupe/dispatch.hpp"

namespace troupe {

// A list of instances through their passivation links.
struct instance_list {
  detail::instance_base* head = nullptr;  // least recently used
  detail::instance_base* tail = nullptr;  // most recently used
};

struct dispatcher::passivation {
  using list = instance_list;

  passivation(const registry& types, const passivation_settings& settings);

  // A keyed instance was built for `address`; it becomes the most recently used.
  void admit(detail::instance_base& inst, std::string_view address);
  // A keyed instance handles a message.
  void touch(detail::instance_base& inst);
  // Before a keyed instance is built: the cap makes room by destroying the
  // least recently used one (inside the caller's watched call).
  void make_room(dispatcher& d);
  // Destroys the instances idle past their type's timeout. Returns how many.
  std::size_t expire(dispatcher& d, std::chrono::steady_clock::time_point now);
  // destroy_all destroyed everything: the lists are empty.
  void forget_all();
  // Destroys one keyed instance exactly once because the broker asked
  // (dispatcher::drop); it is not reported in `released`.
  void drop(dispatcher& d, detail::instance_base& inst) {
    destroy(d, inst, true);
    released.pop_back();
  }

  passivation_settings settings;
  std::vector<std::chrono::milliseconds> timeouts;  // by type index: the idle timeout, 0 for none
  bool timed = false;                               // some type has one: instances keep last_used_ns
  list all;
  std::vector<list> by_type;  // by type index in the registry
  std::size_t live = 0;
  std::vector<std::string> released;

 private:
  std::size_t type_index(const detail::instance_base& inst) const;
  void unlink(detail::instance_base& inst);
  void destroy(dispatcher& d, detail::instance_base& inst, bool watched);

  const registry& types_;
};

}  // namespace troupe
