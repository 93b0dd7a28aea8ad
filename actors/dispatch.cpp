#include "troupe/dispatch.hpp"

#include "passivation.hpp"
#include "troupe/wire.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace troupe {
namespace {

// An error message is a protocol str, so it must be UTF-8 even when it
// echoes what a caller sent or what an exception said.
protocol::status fail(troupe::value_buffer& out, protocol::status code, std::string_view message) {
  out.clear();
  msgpack::packer<troupe::value_buffer> pk(out);
  if (protocol::valid_utf8(message)) {
    pk.pack(message);
  } else {
    pk.pack(protocol::to_valid_utf8(message));
  }
  return code;
}

// Tells the watch, if any, that user code runs for the scope's lifetime.
class watch_scope {
 public:
  watch_scope(call_watch* watch, std::chrono::milliseconds limit) noexcept : watch_(watch) {
    if (watch_) watch_->begin(limit);
  }
  ~watch_scope() {
    if (watch_) watch_->end();
  }
  watch_scope(const watch_scope&) = delete;
  watch_scope& operator=(const watch_scope&) = delete;

 private:
  call_watch* watch_;
};

}  // namespace

dispatcher::dispatcher(const registry& types, protocol::limits limits) : types_(types), limits_(limits) {}

dispatcher::~dispatcher() { destroy_all(); }

protocol::status dispatcher::handle(std::string_view address, std::string_view method, const void* args,
                                    std::size_t args_size, troupe::value_buffer& out) {
  using protocol::status;
  out.clear();
  const auto parts = protocol::split_address(address);
  if (!parts) return fail(out, status::bad_request, "malformed address");
  if (!protocol::valid_method_name(method)) return fail(out, status::bad_request, "malformed method name");

  live_instance* live = instances_.find(address);
  const detail::actor_type_info* type = live ? (*live)->type : types_.find(parts->name);
  if (!type)
    return fail(out, status::unknown_actor, "this worker hosts no actor '" + std::string(parts->name) + "'");
  const auto* m = type->find_method(method);
  if (!m) {
    return fail(out, status::unknown_method,
                "actor '" + type->name + "' has no method '" + std::string(method) + "'");
  }

  if (args_size > limits_.max_message_bytes)
    return fail(out, status::bad_request, "args frame is over the size limit");

  // Decode before constructing: arguments that are not msgpack within the
  // limits build nothing (wire::unpack_bounded bounds every container and
  // string by the frame's own length).
  msgpack::object decoded;
  zone_.clear();
  try {
    decoded = wire::unpack_bounded(zone_, args, args_size, limits_);
  } catch (const std::exception& e) {
    return fail(out, status::bad_args, std::string("args are not valid msgpack within limits: ") + e.what());
  }

  // User code from here on (a constructor, the method): watched for its time limit.
  const watch_scope scope(watch_, m->time_limit.count() != 0 ? m->time_limit : type->time_limit);
  if (!live) {
    auto code = status::ok;
    live = activate(*type, address, *parts, out, code);
    if (!live) return code;
  } else if (passivation_ && !parts->key.empty()) {
    passivation_->touch(**live);
  }

  try {
    m->call(**live, decoded, out);
    if (out.size() > limits_.max_message_bytes)
      return fail(out, status::actor_error,
                  "the result is over the size limit (" + std::to_string(out.size()) + " bytes)");
    return status::ok;
  } catch (const bad_args_error& e) {
    return fail(out, status::bad_args, e.what());
  } catch (const std::exception& e) {
    return fail(out, status::actor_error, e.what());
  } catch (...) {
    return fail(out, status::actor_error, "the method threw a non-standard exception");
  }
}

// Builds the instance for `address` (making room under the cap first).
// Returns it, or nullptr with `code` and `out` saying why the constructor failed.
dispatcher::live_instance* dispatcher::activate(const detail::actor_type_info& type, std::string_view address,
                                                const protocol::address_parts& parts, troupe::value_buffer& out,
                                                protocol::status& code) {
  const bool passivated = passivation_ && !parts.key.empty();
  if (passivated) passivation_->make_room(*this);
  const context ctx(address, parts.name, parts.key);
  try {
    live_instance fresh = type.construct(ctx);
    fresh->type = &type;
    fresh->order = constructed_++;
    auto* live = &instances_.insert(address, std::move(fresh));
    if (passivated) passivation_->admit(**live, address);
    return live;
  } catch (const std::exception& e) {
    code = fail(out, protocol::status::actor_error, "constructing '" + type.name + "' failed: " + e.what());
  } catch (...) {
    code = fail(out, protocol::status::actor_error, "constructing '" + type.name + "' failed");
  }
  return nullptr;
}

void dispatcher::set_passivation(const passivation_settings& settings) {
  passivation_ = std::make_unique<passivation>(types_, settings);
  // Keyed instances built before join, oldest first.
  std::vector<std::pair<detail::instance_base*, std::string>> keyed;
  instances_.for_each([&](std::string_view address, live_instance& inst) {
    const auto parts = protocol::split_address(address);
    if (parts && !parts->key.empty()) keyed.emplace_back(inst.get(), std::string(address));
  });
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first->order < b.first->order; });
  for (const auto& [inst, address] : keyed) passivation_->admit(*inst, address);
}

std::size_t dispatcher::passivate_idle(std::chrono::steady_clock::time_point now) {
  return passivation_ ? passivation_->expire(*this, now) : 0;
}

std::vector<std::string>& dispatcher::released() noexcept {
  static std::vector<std::string> none;
  return passivation_ ? passivation_->released : none;
}

std::size_t dispatcher::live_keyed() const noexcept { return passivation_ ? passivation_->live : 0; }

bool dispatcher::has_instance(std::string_view address) const noexcept {
  return const_cast<flat_string_map<live_instance>&>(instances_).find(address) != nullptr;
}

std::vector<std::string> dispatcher::keyed_addresses() const {
  std::vector<std::string> out;
  instances_.for_each([&](std::string_view address, const live_instance&) {
    if (address.find('/') != std::string_view::npos) out.emplace_back(address);
  });
  return out;
}

bool dispatcher::drop(std::string_view address) {
  auto* live = instances_.find(address);
  if (!live) return false;
  if (passivation_ && !(*live)->address.empty()) {
    passivation_->drop(*this, **live);  // unlinks it from the passivation lists too
    return true;
  }
  try {
    live->reset();
  } catch (...) {
    // destroyed all the same: the instance is gone
  }
  instances_.erase(address);
  return true;
}

void dispatcher::destroy_all() {
  std::vector<live_instance*> order;
  order.reserve(instances_.size());
  instances_.for_each([&](std::string_view, live_instance& inst) { order.push_back(&inst); });
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return (*a)->order > (*b)->order; });
  for (auto* inst : order) {
    try {
      inst->reset();
    } catch (...) {
      // A throwing destructor must not stop the others from running.
    }
  }
  instances_.clear();
  if (passivation_) passivation_->forget_all();
}

}  // namespace troupe
