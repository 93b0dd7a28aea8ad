#include "troupe/registry.hpp"

#include "troupe/protocol.hpp"

namespace troupe {

void registry::add(detail::actor_type_info info) {
  for (auto& e : info.errors) errors_.push_back(std::move(e));
  info.errors.clear();
  if (!protocol::valid_actor_name(info.name)) {
    errors_.push_back("actor name '" + info.name + "' is invalid: use 1-64 characters from [A-Za-z0-9_.-]");
    return;
  }
  for (const auto& m : info.methods)
    if (!protocol::valid_method_name(m.name))
      errors_.push_back("actor '" + info.name + "' has an invalid method name '" + m.name + "'");
  if (find(info.name)) {
    errors_.push_back("actor name '" + info.name + "' is registered twice");
    return;
  }
  types_.push_back(std::move(info));
}

const detail::actor_type_info* registry::find(std::string_view name) const {
  for (const auto& t : types_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<std::string> registry::names() const {
  std::vector<std::string> out;
  out.reserve(types_.size());
  for (const auto& t : types_) out.push_back(t.name);
  return out;
}

registry& registry::global() {
  // A function-local static is built on first use, so registrations from
  // any translation unit's static initializers find it ready.
  static registry instance;
  return instance;
}

namespace detail {
void register_actor_type(actor_type_info info) { registry::global().add(std::move(info)); }
}  // namespace detail

}  // namespace troupe
