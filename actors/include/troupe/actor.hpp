// Defining actors: a C++ class registered at namespace scope under a name,
// with its methods registered under names.
//
//   class squares {
//    public:
//     int square(int x) { return x * x; }
//   };
//   const troupe::actor<squares> squares_actor{"squares",
//                                              troupe::method("square", &squares::square)};
//
// Options may come among the methods, in any order (docs/concepts.md,
// "Time limits" and "Passivation"):
//
//   const troupe::actor<session> session_actor{
//       "session", troupe::idle_timeout(std::chrono::minutes(5)),
//       troupe::method("add", &session::add),
//       troupe::method("report", &session::report).time_limit(std::chrono::seconds(30))};
//
// Only the name travels: the worker executable that links this definition
// builds a `squares` object lazily, in its own process, on the first message
// for it. Parameters and results are values msgpack-c can convert. A pointer
// parameter or result, or a type msgpack-c cannot convert, fails to compile
// at the troupe::method line with a static_assert saying why and what to do.
//
// Thread-safety: everything here runs during static initialization (actor
// objects) or on a worker's one thread that runs user code; none of it is
// meant to be called from several threads at once.
#pragma once

#include "troupe/value_buffer.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "troupe/calls.hpp"
#include "troupe/conversion.hpp"
#include "troupe/errors.hpp"

namespace troupe {

// What an instance may know about itself, and how it calls other actors. A
// class whose constructor takes a `const troupe::context&` receives it;
// otherwise it is default-constructed. The context lives as long as the
// instance: keep a reference to call from methods.
//
//   explicit relay(const troupe::context& ctx) : ctx_(ctx) {}
//   troupe::task<int> forward(...) { co_return co_await ctx_.ask<int>(...); }
//
// Calls go through the worker process's one caller socket; an ask carries
// the instance's call chain (so the broker refuses a call cycle at once,
// `call_cycle`) and at most the time the message being handled has left.
// address(), name(), key() and the call functions throw only std::bad_alloc.
class context {
 public:
  context() noexcept = default;
  context(std::string_view address, std::string_view name, std::string_view key) noexcept
      : address_(address), name_(name), key_(key) {}
  std::string_view address() const noexcept { return address_; }  // "counter/alice"
  std::string_view name() const noexcept { return name_; }        // "counter"
  std::string_view key() const noexcept { return key_; }          // "alice", empty if unkeyed

  // One-way call to `address`.`method`(args...): returns at once; nothing
  // says whether it ran. Outside a worker process it does nothing.
  template <class... A>
  void tell(std::string_view address, std::string_view method, const A&... args) const {
    if constexpr (detail::call_types_cross<void, A...>())
      send_tell(address, method, client::pack_args(args...));
  }

  // Calls `address`.`method`(args...) and returns its pending reply at once:
  // co_await it in a troupe::task method, or get() it. The call gets at most
  // the time the message being handled has left (deadline_exceeded when
  // none is left). Outside a worker process the reply is an error
  // (bad_request).
  template <class R, class... A>
  pending<R> ask(std::string_view address, std::string_view method, const A&... args) const {
    if constexpr (!detail::call_types_cross<R, A...>()) {
      return pending<R>(nullptr);
    } else {
      return pending<R>(send_ask(address, method, client::pack_args(args...)));
    }
  }

  // The same with the arguments already packed as one msgpack array (e.g.
  // a raw_value a caller sent): for forwarding calls whose arguments it
  // does not know. An `args` that is not an array is answered bad_args by
  // the callee.
  template <class R>
  pending<R> ask_packed(std::string_view address, std::string_view method, std::string args) const {
    return pending<R>(send_ask(address, method, std::move(args)));
  }

  // ---- for the worker runtime ----
  // Where its calls go (null: nowhere).
  void attach(detail::call_site* site) noexcept { site_ = site; }
  // A message starts: the broker's id of it, its call chain (encoded, or
  // empty) and its deadline, which the calls made while handling it carry.
  void begin_message(std::uint64_t request_id, std::string_view chain,
                     std::chrono::steady_clock::time_point deadline) {
    request_ = request_id;
    chain_.assign(chain);
    deadline_ = deadline;
  }

 private:
  void send_tell(std::string_view address, std::string_view method, std::string args) const;
  std::shared_ptr<detail::reply_state> send_ask(std::string_view address, std::string_view method,
                                                std::string args) const;

  std::string_view address_, name_, key_;
  detail::call_site* site_ = nullptr;
  std::uint64_t request_ = 0;
  std::string chain_;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

// A method's retry policy for durable messages (method(...).retry(...);
// docs/durability.md): at most `attempts` runs; before run n + 1,
// min(backoff × 2^(n - 1), max_backoff); only outcomes listed in `on` are
// retried. A plain value.
struct retry_policy {
  std::uint32_t attempts = 3;  // 1..1000
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  std::vector<protocol::status> on{protocol::status::actor_error, protocol::status::worker_lost};
};

namespace detail {

struct actor_type_info;

// An instance's context and the address its views point into: allocated
// once per instance, before its constructor runs, and never moved.
struct instance_context {
  std::string address;
  troupe::context ctx;
};

// Type-erased instance; the worker owns one per live address. What the
// worker keeps about an instance lives here rather than in its table, so the
// table's slots stay small (see flat_string_map.hpp).
struct instance_base {
  virtual ~instance_base() = default;
  const actor_type_info* type = nullptr;
  std::uint64_t order = 0;  // construction order, for destruction newest first
  // Passivation of keyed instances (actors/passivation.cpp): its address,
  // its places in the worker's two lists of live keyed instances, least
  // recently used first (all types; its own type), and when it last ran.
  std::string address;
  instance_base* lru_prev = nullptr;
  instance_base* lru_next = nullptr;
  instance_base* type_prev = nullptr;
  instance_base* type_next = nullptr;
  std::int64_t last_used_ns = 0;
  std::unique_ptr<instance_context> context;  // set by the dispatcher
  bool awaiting = false;  // a coroutine method of it is suspended: not passivated or dropped meanwhile
};

template <class T>
struct instance final : instance_base {
  template <class... A>
  explicit instance(A&&... a) : object(std::forward<A>(a)...) {}
  T object;
};

// Calls a method: decodes `args` (a msgpack array), invokes, packs the
// result into `out`.
using invoker = std::function<void(instance_base&, const msgpack::object& args, troupe::value_buffer& out)>;

// A coroutine method (returning troupe::task<R>) called but not yet run:
// the worker resumes `handle`, and when `promise` says it ended, packs its
// result and destroys the coroutine.
struct started_task {
  std::coroutine_handle<> handle;
  task_promise_base* promise = nullptr;
};
// Starts a coroutine method: decodes `args` (a msgpack array) into the
// coroutine's own parameters and returns it unrun.
using starter = std::function<started_task(instance_base&, const msgpack::object& args)>;

template <class R>
struct is_task : std::false_type {};
template <class R>
struct is_task<task<R>> : std::true_type {
  using value_type = R;
};

struct method_entry {
  std::string name;
  invoker call;
  starter start;                            // set instead of `call` for a coroutine method
  std::chrono::milliseconds time_limit{0};  // 0: the actor type's, else the worker's (--time-limit-ms)
  std::optional<retry_policy> retry;        // for durable messages; none: one run
};

struct actor_type_info {
  std::string name;
  std::vector<method_entry> methods;
  std::chrono::milliseconds time_limit{0};  // for its methods without their own; 0: the worker's
  // Keyed instances idle this long are passivated; 0: the worker's.
  std::chrono::milliseconds idle_timeout{0};
  std::function<std::unique_ptr<instance_base>(const context&)> construct;
  std::vector<std::string> errors;  // e.g. duplicate method names, reported at startup

  const method_entry* find_method(std::string_view method) const {
    for (const auto& m : methods)
      if (m.name == method) return &m;
    return nullptr;
  }
};

template <class A>
using arg_t = std::remove_cvref_t<A>;

template <class A>
arg_t<A> convert_arg(const msgpack::object& o, std::size_t index) {
  try {
    return o.as<arg_t<A>>();
  } catch (const msgpack::type_error&) {
    throw bad_args_error(argument_mismatch_message<arg_t<A>>(o, index));
  } catch (const std::bad_cast&) {
    throw bad_args_error(argument_mismatch_message<arg_t<A>>(o, index));
  }
}

template <class T, class R, class... A, class Fn, std::size_t... I>
void invoke_with(T& obj, Fn fn, const msgpack::object& args, troupe::value_buffer& out,
                 std::index_sequence<I...>) {
  if (args.type != msgpack::type::ARRAY) throw bad_args_error("args must be an array");
  if (args.via.array.size != sizeof...(A))
    throw bad_args_error("expected " + std::to_string(sizeof...(A)) + " argument(s), got " +
                         std::to_string(args.via.array.size));
  // Convert every argument before calling, so a bad one never half-runs the method.
  [[maybe_unused]] std::tuple<arg_t<A>...> converted{convert_arg<A>(args.via.array.ptr[I], I)...};
  msgpack::packer<troupe::value_buffer> pk(out);
  if constexpr (std::is_void_v<R>) {
    (obj.*fn)(std::move(std::get<I>(converted))...);
    pk.pack_nil();
  } else {
    pk.pack((obj.*fn)(std::move(std::get<I>(converted))...));
  }
}

template <class T, class R, class... A, class Fn, std::size_t... I>
started_task start_with(T& obj, Fn fn, const msgpack::object& args, std::index_sequence<I...>) {
  if (args.type != msgpack::type::ARRAY) throw bad_args_error("args must be an array");
  if (args.via.array.size != sizeof...(A))
    throw bad_args_error("expected " + std::to_string(sizeof...(A)) + " argument(s), got " +
                         std::to_string(args.via.array.size));
  [[maybe_unused]] std::tuple<arg_t<A>...> converted{convert_arg<A>(args.via.array.ptr[I], I)...};
  // The coroutine's parameters are values, moved into its frame: nothing
  // it reads after a suspension points into this function's locals.
  auto h = (obj.*fn)(std::move(std::get<I>(converted))...).release();
  return {h, &h.promise()};
}

template <class T, class R, class... A, class Fn>
starter make_starter(Fn fn) {
  return [fn](instance_base& base, const msgpack::object& args) {
    auto& obj = static_cast<instance<T>&>(base).object;
    return start_with<T, R, A...>(obj, fn, args, std::index_sequence_for<A...>{});
  };
}

template <class T, class R, class... A, class Fn>
invoker make_invoker(Fn fn) {
  return [fn](instance_base& base, const msgpack::object& args, troupe::value_buffer& out) {
    auto& obj = static_cast<instance<T>&>(base).object;
    invoke_with<T, R, A...>(obj, fn, args, out, std::index_sequence_for<A...>{});
  };
}

// Checks every parameter and the result at compile time (see
// conversion.hpp); only a method whose types all cross gets an invoker, so
// a failed check is reported by troupe's static_assert alone, not followed
// by msgpack-c's template errors.
template <class T, class R, class... A, class Fn>
invoker make_checked_invoker(Fn fn) {
  constexpr bool params_cross = (check_crossing<arg_t<A>, crossing::parameter>::value && ...);
  constexpr bool result_crosses = [] {
    if constexpr (std::is_void_v<R>) {
      return true;
    } else {
      return check_crossing<std::remove_cvref_t<R>, crossing::result>::value;
    }
  }();
  if constexpr (params_cross && result_crosses) {
    return make_invoker<T, R, A...>(fn);
  } else {
    return {};
  }
}

void register_actor_type(actor_type_info info);

}  // namespace detail

// One named method of actor class T; made by troupe::method.
template <class T>
struct method_def {
  std::string name;
  detail::invoker call;
  std::chrono::milliseconds limit{0};
  std::optional<retry_policy> retry_with{};
  detail::starter start{};  // a coroutine method's, instead of `call`

  // How a durable message whose run of this method fails is run again
  // (docs/durability.md, "Retries"): the worker declares it to the broker,
  // which keeps the schedule in its store. Returns the definition. Does not
  // throw beyond std::bad_alloc.
  method_def retry(retry_policy policy) && {
    retry_with = std::move(policy);
    return std::move(*this);
  }

  // This method's hard time limit: a call that runs longer gets its worker
  // process killed and replaced by the pool supervisor, and the caller gets
  // `time_limit_exceeded` (docs/concepts.md, "Time limits"). It overrides
  // the actor's and the worker's (--time-limit-ms). Returns the definition.
  // Does not throw.
  method_def time_limit(std::chrono::milliseconds d) && {
    limit = d;
    return std::move(*this);
  }
};

// Options of an actor type, given to troupe::actor among its methods.
struct actor_settings {
  std::chrono::milliseconds time_limit{0};    // default hard time limit of its methods; 0: the worker's
  std::chrono::milliseconds idle_timeout{0};  // passivate keyed instances idle this long; 0: the worker's
};

// A keyed instance of this type that has handled no message for `d` is
// destroyed (passivated) in its worker, and the broker forgets where its key
// lives; its next message builds a fresh instance. Its in-memory state is
// lost (docs/concepts.md, "Passivation"). Returns the option. Does not throw.
inline actor_settings idle_timeout(std::chrono::milliseconds d) noexcept { return {{}, d}; }
// The hard time limit of the actor's methods that set none themselves.
// Returns the option. Does not throw.
inline actor_settings time_limit(std::chrono::milliseconds d) noexcept { return {d, {}}; }

// Registers member function `fn` under `name` (1-128 bytes of UTF-8; checked
// when the worker starts). Returns the definition troupe::actor takes.
// Does not compile when a parameter or the result is a pointer, or a type
// msgpack-c cannot convert (the static_assert says what to do instead).
// Throws only std::bad_alloc. At run time, arguments that do not convert
// are answered `bad_args` ("argument 1 field 'y' must be int, got str")
// and the method is not called; an exception from the method is answered
// `actor_error` with its what(), and troupe::bad_args_error with `bad_args`.
//
// A method returning troupe::task<R> is a coroutine (troupe/calls.hpp): it
// may co_await the asks it makes while its worker serves other instances.
// Its parameters must be values, not references: they must outlive its
// suspensions.
template <class T, class R, class... A>
method_def<T> method(std::string_view name, R (T::*fn)(A...)) {
  if constexpr (detail::is_task<R>::value) {
    static_assert(!(std::is_reference_v<A> || ...),
                  "a troupe::task method takes its parameters by value: a reference would dangle once it "
                  "suspends (take std::string, not const std::string&)");
    using V = typename detail::is_task<R>::value_type;
    constexpr bool params_cross =
        (detail::check_crossing<detail::arg_t<A>, detail::crossing::parameter>::value && ...);
    constexpr bool result_crosses = [] {
      if constexpr (std::is_void_v<V>) {
        return true;
      } else {
        return detail::check_crossing<std::remove_cvref_t<V>, detail::crossing::result>::value;
      }
    }();
    method_def<T> def{std::string(name), {}};
    if constexpr (params_cross && result_crosses) def.start = detail::make_starter<T, R, A...>(fn);
    return def;
  } else {
    return {std::string(name), detail::make_checked_invoker<T, R, A...>(fn)};
  }
}

template <class T, class R, class... A>
method_def<T> method(std::string_view name, R (T::*fn)(A...) const) {
  return {std::string(name), detail::make_checked_invoker<T, R, A...>(fn)};
}

// The description of actor class T under `name`: what troupe::actor
// registers. Tests build registries from these directly. A duplicate method
// name is recorded in the result's `errors`, not thrown. Throws only
// std::bad_alloc.
template <class T>
detail::actor_type_info describe_actor(std::string_view name, std::vector<method_def<T>> methods,
                                       actor_settings settings = {}) {
  static_assert(std::is_default_constructible_v<T> || std::is_constructible_v<T, const context&>,
                "an actor class needs a default constructor or one taking const troupe::context&");
  detail::actor_type_info info;
  info.name = std::string(name);
  info.time_limit = settings.time_limit;
  info.idle_timeout = settings.idle_timeout;
  for (auto& m : methods) {
    if (info.find_method(m.name))
      info.errors.push_back("actor '" + info.name + "' registers method '" + m.name + "' twice");
    info.methods.push_back(
        {std::move(m.name), std::move(m.call), std::move(m.start), m.limit, std::move(m.retry_with)});
  }
  info.construct = [](const context& ctx) -> std::unique_ptr<detail::instance_base> {
    if constexpr (std::is_constructible_v<T, const context&>) {
      return std::make_unique<detail::instance<T>>(ctx);
    } else {
      return std::make_unique<detail::instance<T>>();
    }
  };
  return info;
}

// Registers actor class T under `name` in the process-wide registry
// (registry::global()). Define one at namespace scope in a source file
// compiled into the worker executable (see troupe_add_worker in CMake and
// docs/concepts.md on why not through a static library). An invalid or
// duplicate name is recorded, not thrown: the worker refuses to start and
// says why. Not thread-safe: meant for static initialization.
template <class T>
class actor {
 public:
  // `parts`: the methods (troupe::method) and options (troupe::idle_timeout,
  // troupe::time_limit), in any order; at least one method.
  template <class... P>
  explicit actor(std::string_view name, P... parts) {
    static_assert(((std::is_same_v<P, method_def<T>> || std::is_same_v<P, actor_settings>)&&...),
                  "troupe::actor takes troupe::method(...) of this class and options such as "
                  "troupe::idle_timeout(...)");
    static_assert((std::is_same_v<P, method_def<T>> || ...), "an actor needs at least one troupe::method");
    std::vector<method_def<T>> methods;
    actor_settings settings;
    (take(methods, settings, std::move(parts)), ...);
    detail::register_actor_type(describe_actor<T>(name, std::move(methods), settings));
  }

 private:
  static void take(std::vector<method_def<T>>& methods, actor_settings&, method_def<T> m) {
    methods.push_back(std::move(m));
  }
  static void take(std::vector<method_def<T>>&, actor_settings& settings, actor_settings s) {
    if (s.time_limit.count() != 0) settings.time_limit = s.time_limit;
    if (s.idle_timeout.count() != 0) settings.idle_timeout = s.idle_timeout;
  }
};

}  // namespace troupe
