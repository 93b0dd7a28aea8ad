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
// Only the name travels: the worker executable that links this definition
// builds a `squares` object lazily, in its own process, on the first message
// for it. Arguments and results are anything msgpack-c can convert; a type
// it cannot convert fails to compile here, not at run time.
#pragma once

#include "troupe/value_buffer.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace troupe {

// What an instance may know about itself. A class whose constructor takes a
// `const troupe::context&` receives it; otherwise it is default-constructed.
class context {
 public:
  context(std::string_view address, std::string_view name, std::string_view key)
      : address_(address), name_(name), key_(key) {}
  std::string_view address() const { return address_; }  // "counter/alice"
  std::string_view name() const { return name_; }        // "counter"
  std::string_view key() const { return key_; }          // "alice", empty if unkeyed

 private:
  std::string_view address_, name_, key_;
};

// Thrown while decoding arguments; the worker answers `bad_args`.
class bad_args_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

struct actor_type_info;

// Type-erased instance; the worker owns one per live address. What the
// worker keeps about an instance lives here rather than in its table, so the
// table's slots stay small (see flat_string_map.hpp).
struct instance_base {
  virtual ~instance_base() = default;
  const actor_type_info* type = nullptr;
  std::uint64_t order = 0;  // construction order, for destruction newest first
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

struct method_entry {
  std::string name;
  invoker call;
};

struct actor_type_info {
  std::string name;
  std::vector<method_entry> methods;
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

// Type names for bad_args messages, in the wire's vocabulary ("int", "str",
// "array") so that a caller in any language can read them.
std::string wire_type_name(const msgpack::object& o);
std::string demangled_type_name(const std::type_info& type);

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_byte_container : std::false_type {};
template <class T>
requires requires { typename T::value_type; }
struct is_byte_container<T> : std::bool_constant<std::is_same_v<typename T::value_type, char> ||
                                                 std::is_same_v<typename T::value_type, signed char> ||
                                                 std::is_same_v<typename T::value_type, unsigned char> ||
                                                 std::is_same_v<typename T::value_type, std::byte>> {};

template <class T>
std::string expected_type_name() {
  if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
    return "int";
  } else if constexpr (std::is_floating_point_v<T>) {
    return "float";
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    return "str";
  } else if constexpr (is_byte_container<T>::value) {
    return "bin or str";  // msgpack-c reads these from raw bytes, not arrays
  } else if constexpr (is_optional<T>::value) {
    return expected_type_name<typename T::value_type>() + " or nil";
  } else if constexpr (requires {
                         typename T::key_type;
                         typename T::mapped_type;
                       }) {
    return "map of " + expected_type_name<typename T::key_type>() + " to " +
           expected_type_name<typename T::mapped_type>();
  } else if constexpr (
      requires { typename T::value_type; } && requires(const T& t) { t.begin(); }) {
    return "array of " + expected_type_name<typename T::value_type>();
  } else {
    return demangled_type_name(typeid(T));  // a user struct, e.g. "geo::point"
  }
}

// "argument 2 must be int, got str": the same words as the Python worker's.
template <class T>
[[noreturn]] void throw_conversion_error(const msgpack::object& o, std::size_t index) {
  std::string what = "argument " + std::to_string(index + 1) + " must be " + expected_type_name<T>();
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // msgpack-c refuses an integer that does not fit; say which bounds.
    if (o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER) {
      what +=
          " in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
          std::to_string(std::numeric_limits<T>::max()) + "], got " +
          (o.type == msgpack::type::POSITIVE_INTEGER ? std::to_string(o.via.u64) : std::to_string(o.via.i64));
      throw bad_args_error(what);
    }
  }
  throw bad_args_error(what + ", got " + wire_type_name(o));
}

template <class A>
arg_t<A> convert_arg(const msgpack::object& o, std::size_t index) {
  try {
    return o.as<arg_t<A>>();
  } catch (const msgpack::type_error&) {
    throw_conversion_error<arg_t<A>>(o, index);
  } catch (const std::bad_cast&) {
    throw_conversion_error<arg_t<A>>(o, index);
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

template <class T, class R, class... A, class Fn>
invoker make_invoker(Fn fn) {
  return [fn](instance_base& base, const msgpack::object& args, troupe::value_buffer& out) {
    auto& obj = static_cast<instance<T>&>(base).object;
    invoke_with<T, R, A...>(obj, fn, args, out, std::index_sequence_for<A...>{});
  };
}

void register_actor_type(actor_type_info info);

}  // namespace detail

// One named method of actor class T; made by troupe::method.
template <class T>
struct method_def {
  std::string name;
  detail::invoker call;
};

template <class T, class R, class... A>
method_def<T> method(std::string_view name, R (T::*fn)(A...)) {
  return {std::string(name), detail::make_invoker<T, R, A...>(fn)};
}

template <class T, class R, class... A>
method_def<T> method(std::string_view name, R (T::*fn)(A...) const) {
  return {std::string(name), detail::make_invoker<T, R, A...>(fn)};
}

// The description of actor class T under `name`: what troupe::actor
// registers. Tests build registries from these directly.
template <class T>
detail::actor_type_info describe_actor(std::string_view name, std::vector<method_def<T>> methods) {
  static_assert(std::is_default_constructible_v<T> || std::is_constructible_v<T, const context&>,
                "an actor class needs a default constructor or one taking const troupe::context&");
  detail::actor_type_info info;
  info.name = std::string(name);
  for (auto& m : methods) {
    if (info.find_method(m.name))
      info.errors.push_back("actor '" + info.name + "' registers method '" + m.name + "' twice");
    info.methods.push_back({std::move(m.name), std::move(m.call)});
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

// Registers actor class T under `name` in the process-wide registry. Define
// one at namespace scope in a source file compiled into the worker
// executable (see troupe_add_worker in CMake and docs/concepts.md on why
// not through a static library).
template <class T>
class actor {
 public:
  template <class... M>
  explicit actor(std::string_view name, method_def<T> first, M... rest) {
    detail::register_actor_type(describe_actor<T>(name, {std::move(first), std::move(rest)...}));
  }
};

}  // namespace troupe
