#include "passivation.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;
using detail::instance_base;

std::int64_t ns_of(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// The two lists share one node type but different links.
template <instance_base* instance_base::*Prev, instance_base* instance_base::*Next>
struct links {
  static void push_back(instance_list& l, instance_base& n) {
    n.*Prev = l.tail;
    n.*Next = nullptr;
    if (l.tail) {
      l.tail->*Next = &n;
    } else {
      l.head = &n;
    }
    l.tail = &n;
  }
  static void remove(instance_list& l, instance_base& n) {
    if (n.*Prev) {
      n.*Prev->*Next = n.*Next;
    } else {
      l.head = n.*Next;
    }
    if (n.*Next) {
      n.*Next->*Prev = n.*Prev;
    } else {
      l.tail = n.*Prev;
    }
    n.*Prev = n.*Next = nullptr;
  }
};
using all_links = links<&instance_base::lru_prev, &instance_base::lru_next>;
using type_links = links<&instance_base::type_prev, &instance_base::type_next>;

}  // namespace

dispatcher::passivation::passivation(const registry& types, const passivation_settings& s)
    : settings(s), by_type(types.types().size()), types_(types) {
  for (const auto& t : types.types()) {
    const auto timeout = t.idle_timeout.count() != 0 ? t.idle_timeout : s.idle_timeout;
    timeouts.push_back(timeout);
    if (timeout.count() > 0) timed = true;
  }
}

std::size_t dispatcher::passivation::type_index(const instance_base& inst) const {
  return static_cast<std::size_t>(inst.type - types_.types().data());
}

void dispatcher::passivation::admit(instance_base& inst, std::string_view address) {
  inst.address.assign(address);
  if (timed) inst.last_used_ns = ns_of(clock::now());
  all_links::push_back(all, inst);
  type_links::push_back(by_type[type_index(inst)], inst);
  ++live;
}

void dispatcher::passivation::touch(instance_base& inst) {
  if (timed) inst.last_used_ns = ns_of(clock::now());
  if (all.tail != &inst) {
    all_links::remove(all, inst);
    all_links::push_back(all, inst);
  }
  auto& own = by_type[type_index(inst)];
  if (own.tail != &inst) {
    type_links::remove(own, inst);
    type_links::push_back(own, inst);
  }
}

void dispatcher::passivation::unlink(instance_base& inst) {
  all_links::remove(all, inst);
  type_links::remove(by_type[type_index(inst)], inst);
  --live;
}

void dispatcher::passivation::make_room(dispatcher& d) {
  if (settings.max_instances == 0) return;
  // One awaiting an ask (a troupe::task method) is not destroyed under its
  // coroutine; the cap waits for it.
  while (live >= settings.max_instances && all.head && !all.head->awaiting) destroy(d, *all.head, false);
}

std::size_t dispatcher::passivation::expire(dispatcher& d, clock::time_point now) {
  if (!timed) return 0;
  const auto now_ns = ns_of(now);
  std::size_t n = 0;
  for (std::size_t t = 0; t < by_type.size(); ++t) {
    const auto timeout_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeouts[t]).count();
    if (timeout_ns <= 0) continue;
    while (by_type[t].head && !by_type[t].head->awaiting &&
           now_ns - by_type[t].head->last_used_ns >= timeout_ns) {
      destroy(d, *by_type[t].head, true);
      ++n;
    }
  }
  return n;
}

void dispatcher::passivation::forget_all() {
  all = {};
  for (auto& l : by_type) l = {};
  live = 0;
}

// Destroys one keyed instance exactly once and remembers its address. Its
// destructor is user code: watched (unless the caller's call already is),
// and an exception from it is swallowed.
void dispatcher::passivation::destroy(dispatcher& d, instance_base& inst, bool watched) {
  unlink(inst);
  std::string address = std::move(inst.address);
  auto* slot = d.instances_.find(address);
  if (watched && d.watch_) d.watch_->begin(std::chrono::milliseconds(0));
  try {
    slot->reset();
  } catch (...) {
  }
  if (watched && d.watch_) d.watch_->end();
  d.instances_.erase(address);
  released.push_back(std::move(address));
}

}  // namespace troupe
