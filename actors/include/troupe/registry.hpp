// The table of actor types a worker executable hosts, filled at static
// initialization by troupe::actor objects and read by the worker runtime.
//
// Thread-safety: add() is not thread-safe and runs before main() (static
// initialization, one thread); afterwards the registry is only read, and
// the const members may be called from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "troupe/actor.hpp"

namespace troupe {

class registry {
 public:
  // Adds a type. A duplicate or invalid actor name is kept out, and it and
  // invalid method names are recorded in errors(): the worker refuses to
  // start while errors() is not empty. Throws only std::bad_alloc.
  void add(detail::actor_type_info info);
  // The type registered under `name`, or nullptr. Does not throw.
  const detail::actor_type_info* find(std::string_view name) const;
  // The registered names, in registration order. Throws only std::bad_alloc.
  std::vector<std::string> names() const;
  // What add() refused, one sentence each, e.g. "actor name 'dup' is registered twice".
  const std::vector<std::string>& errors() const noexcept { return errors_; }
  // The registered types, in registration order.
  const std::vector<detail::actor_type_info>& types() const noexcept { return types_; }

  // The process-wide registry that troupe::actor objects register into;
  // built on first use, so registrations from any translation unit's static
  // initializers find it ready. Does not throw.
  static registry& global();

 private:
  std::vector<detail::actor_type_info> types_;
  std::vector<std::string> errors_;
};

}  // namespace troupe
