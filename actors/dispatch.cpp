#include "troupe/dispatch.hpp"

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

  if (!live) {
    const context ctx(address, parts->name, parts->key);
    try {
      live_instance fresh = type->construct(ctx);
      fresh->type = type;
      fresh->order = constructed_++;
      live = &instances_.insert(address, std::move(fresh));
    } catch (const std::exception& e) {
      return fail(out, status::actor_error, "constructing '" + type->name + "' failed: " + e.what());
    } catch (...) {
      return fail(out, status::actor_error, "constructing '" + type->name + "' failed");
    }
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
}

}  // namespace troupe
