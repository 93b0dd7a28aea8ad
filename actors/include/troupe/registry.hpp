// The table of actor types a worker executable hosts, filled at static
// initialization by troupe::actor objects and read by the worker runtime.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "troupe/actor.hpp"

namespace troupe {

class registry {
 public:
  // Adds a type. A duplicate name is kept out and recorded as an error: the
  // worker refuses to start while errors() is not empty.
  void add(detail::actor_type_info info);
  const detail::actor_type_info* find(std::string_view name) const;
  std::vector<std::string> names() const;
  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<detail::actor_type_info>& types() const { return types_; }

  // The process-wide registry that troupe::actor objects register into.
  static registry& global();

 private:
  std::vector<detail::actor_type_info> types_;
  std::vector<std::string> errors_;
};

}  // namespace troupe
