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

// What an exception from user code is answered: a troupe::error (an ask
// that failed and was not caught) keeps its code, so a caller sees the
// callee's error; bad_args_error is bad_args; anything else actor_error.
protocol::status outcome_of(std::exception_ptr e, troupe::value_buffer& out) {
  using protocol::status;
  try {
    std::rethrow_exception(e);
  } catch (const bad_args_error& err) {
    return fail(out, status::bad_args, err.what());
  } catch (const error& err) {
    return fail(out, err.code(), err.message());
  } catch (const std::exception& err) {
    return fail(out, status::actor_error, err.what());
  } catch (...) {
    return fail(out, status::actor_error, "the method threw a non-standard exception");
  }
}

}  // namespace

dispatcher::dispatcher(const registry& types, protocol::limits limits) : types_(types), limits_(limits) {}

dispatcher::~dispatcher() { destroy_all(); }

protocol::status dispatcher::handle(std::string_view address, std::string_view method, const void* args,
                                    std::size_t args_size, troupe::value_buffer& out,
                                    const message_info* message, detail::started_task* started) {
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
  auto& ctx = (*live)->context->ctx;
  if (message) {
    ctx.begin_message(message->request_id, message->chain, message->deadline);
  } else {
    ctx.begin_message(0, {}, std::chrono::steady_clock::time_point::max());
  }

  if (m->start) {
    detail::started_task task;
    try {
      task = m->start(**live, decoded);
    } catch (...) {
      return outcome_of(std::current_exception(), out);  // its arguments did not convert: it never ran
    }
    (*live)->awaiting = true;
    if (started) {
      *started = task;
      return status::ok;
    }
    // Not in a worker: run it here. Its asks fail at once, so it ends
    // without suspending, unless it awaits something else.
    task.handle.resume();
    if (!task.handle.done()) {
      (*live)->awaiting = false;
      task.handle.destroy();
      return fail(out, status::actor_error, "a troupe::task method suspended outside a worker");
    }
    return finish(address, task, out);
  }
  try {
    m->call(**live, decoded, out);
    if (out.size() > limits_.max_message_bytes)
      return fail(out, status::actor_error,
                  "the result is over the size limit (" + std::to_string(out.size()) + " bytes)");
    return status::ok;
  } catch (...) {
    return outcome_of(std::current_exception(), out);
  }
}

protocol::status dispatcher::finish(std::string_view address, detail::started_task& started,
                                    troupe::value_buffer& out) {
  out.clear();
  if (auto* live = instances_.find(address)) (*live)->awaiting = false;
  auto code = protocol::status::ok;
  if (started.promise->error) {
    code = outcome_of(started.promise->error, out);
  } else {
    try {
      msgpack::packer<troupe::value_buffer> pk(out);
      started.promise->pack_result(pk);
      if (out.size() > limits_.max_message_bytes)
        code = fail(out, protocol::status::actor_error,
                    "the result is over the size limit (" + std::to_string(out.size()) + " bytes)");
    } catch (const std::exception& e) {
      code = fail(out, protocol::status::actor_error, e.what());
    }
  }
  started.handle.destroy();
  started = {};
  return code;
}

bool dispatcher::awaiting(std::string_view address) const noexcept {
  auto* live = const_cast<flat_string_map<live_instance>&>(instances_).find(address);
  return live && (*live)->awaiting;
}

// Builds the instance for `address` (making room under the cap first).
// Returns it, or nullptr with `code` and `out` saying why the constructor failed.
dispatcher::live_instance* dispatcher::activate(const detail::actor_type_info& type, std::string_view address,
                                                const protocol::address_parts& parts,
                                                troupe::value_buffer& out, protocol::status& code) {
  const bool passivated = passivation_ && !parts.key.empty();
  if (passivated) passivation_->make_room(*this);
  // The context lives as long as the instance, so the instance may keep it
  // to make calls; its views point into its own copy of the address.
  auto holder = std::make_unique<detail::instance_context>();
  holder->address.assign(address);
  const std::string_view own = holder->address;
  holder->ctx = context(own, own.substr(0, parts.name.size()),
                        parts.key.empty() ? std::string_view() : own.substr(parts.name.size() + 1));
  holder->ctx.attach(site_);
  try {
    live_instance fresh = type.construct(holder->ctx);
    fresh->context = std::move(holder);
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
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first->order < b.first->order; });
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
  if (!live || (*live)->awaiting) return false;  // never under a suspended coroutine
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

// ---- calls from inside methods (troupe/calls.hpp) ----

void context::send_tell(std::string_view address, std::string_view method, std::string args) const {
  if (site_) site_->tell(address, method, std::move(args));
}

std::shared_ptr<detail::reply_state> context::send_ask(std::string_view address, std::string_view method,
                                                       std::string args) const {
  auto state = std::make_shared<detail::reply_state>();
  state->site = site_;
  auto refuse = [&](protocol::status code, std::string_view message) {
    raw_reply r;
    r.code = code;
    std::string text;
    protocol::encode_str(text, message);
    r.value = std::move(text);
    state->complete(std::move(r));
    return state;
  };
  if (!site_)
    return refuse(protocol::status::bad_request, "calls from a method need a worker process to send them");
  // At most the time the message being handled has left: a call made for
  // a caller that has given up is not worth making.
  call_options opts;
  if (deadline_ != std::chrono::steady_clock::time_point::max()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return refuse(protocol::status::deadline_exceeded,
                    "the message " + std::string(address_) + " is handling has no time left for a call");
    opts.timeout = left;
  }
  // The chain: the instances waiting up it, then this one.
  auto links = protocol::decode_chain(chain_);
  if (links.size() >= protocol::max_chain_length)
    return refuse(protocol::status::bad_request, "the call chain would be longer than " +
                                                     std::to_string(protocol::max_chain_length) + " calls");
  links.push_back({address_, request_});
  protocol::encode_chain(opts.chain, links);
  site_->ask(address, method, std::move(args), opts,
             [state](raw_reply&& reply) { state->complete(std::move(reply)); });
  return state;
}

}  // namespace troupe
