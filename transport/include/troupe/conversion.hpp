// Converting between msgpack values and C++ types, for the worker and the
// client alike:
// - at compile time, which C++ types cannot cross a process boundary at all
//   (pointers, types msgpack-c has no adaptor for), so that a method or a
//   call using one fails with troupe's own static_assert naming the type
//   and the fix, instead of compiling into a crash or a deep template error;
// - at run time, where and why a value does not convert, in the wire's
//   vocabulary ("int", "str", "array") so that a caller in any language can
//   read it: "argument 1 field 'y' must be int, got str",
//   "the result is str, expected int".
//
// Internal: everything here is in troupe::detail and may change. The
// functions are pure and thread-safe; they are used on error paths only.
#pragma once

#include <cxxabi.h>

#include <msgpack.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <forward_list>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "troupe/protocol.hpp"

namespace troupe::detail {

// ---- names -----------------------------------------------------------------

inline std::string wire_type_name(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

inline std::string demangled_type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  std::string text = status == 0 && name ? std::string(name.get()) : std::string(type.name());
  // A caller cannot use "(anonymous namespace)::point"; "point" says as much.
  constexpr std::string_view anonymous = "(anonymous namespace)::";
  for (auto at = text.find(anonymous); at != std::string::npos; at = text.find(anonymous, at))
    text.erase(at, anonymous.size());
  return text;
}

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
concept map_like = requires {
  typename T::key_type;
  typename T::mapped_type;
};
template <class T>
concept sequence_like = requires(const T& t) {
  typename T::value_type;
  t.begin();
}
&&!map_like<T> && !is_byte_container<T>::value;

template <class T>
struct is_tuple_like : std::false_type {};
template <class... A>
struct is_tuple_like<std::tuple<A...>> : std::true_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};

// What a C++ type is called on the wire: "int", "array of float",
// "map of str to int", or the C++ name of a user struct ("geo::point").
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
  } else if constexpr (map_like<T>) {
    return "map of " + expected_type_name<typename T::key_type>() + " to " +
           expected_type_name<typename T::mapped_type>();
  } else if constexpr (sequence_like<T>) {
    return "array of " + expected_type_name<typename T::value_type>();
  } else {
    return demangled_type_name(typeid(T));
  }
}

// ---- where a value stops converting (run time) ---------------------------------

// The innermost part of a value that does not convert, e.g.
// {" field 'y'", "int", "str"} or {" element 3", "int in [0, 255]", "300"}.
struct mismatch {
  std::string path;      // empty: the value itself; else " field 'y'", " element 2", " entry 'k'", chained
  std::string expected;  // what the C++ type wants, in wire words
  std::string got;       // the wire type that arrived, or the integer for one out of range
};

template <class T>
bool converts_to(const msgpack::object& o) noexcept {
  try {
    if constexpr (std::is_default_constructible_v<T>) {
      T value{};  // also for C arrays, which as<T>() cannot return
      o.convert(value);
    } else {
      (void)o.as<T>();
    }
    return true;
  } catch (...) {
    return false;
  }
}

template <class T>
mismatch find_mismatch(const msgpack::object& o);

// A msgpack-c packer that writes nothing: the base of the field walkers
// below, so that a hand-written msgpack_pack using any packer call compiles.
struct null_stream {
  void write(const char*, std::size_t) {}
};
inline null_stream null_sink;

// Walks the fields of a MSGPACK_DEFINE_MAP / MSGPACK_DEFINE struct: its
// msgpack_pack() hands every key and field, typed, to this "packer", which
// compares each field with the wire value for it and keeps the first that
// does not convert.
class field_finder : public msgpack::packer<null_stream> {
 public:
  explicit field_finder(const msgpack::object& wire) : msgpack::packer<null_stream>(null_sink), wire_(wire) {}

  field_finder& pack_map(std::uint32_t) {
    shape_ = msgpack::type::MAP;
    return *this;
  }
  field_finder& pack_array(std::uint32_t) {
    shape_ = msgpack::type::ARRAY;
    return *this;
  }
  template <class U>
  field_finder& pack(const U& field) {
    if (shape_ == msgpack::type::MAP) {
      if (expecting_key_) {
        expecting_key_ = false;
        if constexpr (std::is_convertible_v<const U&, std::string_view>) {
          key_ = std::string_view(field);
        } else {
          key_.reset();
        }
        return *this;
      }
      expecting_key_ = true;
      if (found_ || wire_.type != msgpack::type::MAP || !key_) return *this;
      if (const msgpack::object* value = lookup(*key_); value && !converts_to<U>(*value))
        note(find_mismatch<U>(*value), " field '" + std::string(*key_) + "'");
    } else if (shape_ == msgpack::type::ARRAY) {
      const std::size_t index = next_index_++;
      if (found_ || wire_.type != msgpack::type::ARRAY || index >= wire_.via.array.size) return *this;
      const msgpack::object& value = wire_.via.array.ptr[index];
      if (!converts_to<U>(value)) note(find_mismatch<U>(value), " element " + std::to_string(index + 1));
    }
    return *this;
  }

  const std::optional<mismatch>& found() const { return found_; }
  // MAP for MSGPACK_DEFINE_MAP, ARRAY for MSGPACK_DEFINE; NIL if unknown.
  msgpack::type::object_type shape() const { return shape_; }

 private:
  const msgpack::object* lookup(std::string_view key) const {
    for (std::uint32_t i = 0; i < wire_.via.map.size; ++i) {
      const auto& k = wire_.via.map.ptr[i].key;
      if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key)
        return &wire_.via.map.ptr[i].val;
    }
    return nullptr;
  }
  void note(mismatch inner, const std::string& where) {
    inner.path = where + inner.path;
    found_ = std::move(inner);
  }

  const msgpack::object& wire_;
  msgpack::type::object_type shape_ = msgpack::type::NIL;
  bool expecting_key_ = true;
  std::optional<std::string_view> key_;
  std::size_t next_index_ = 0;
  std::optional<mismatch> found_;
};

template <class T>
concept msgpack_defined_struct = std::is_class_v<T> && std::is_default_constructible_v<T> &&
    requires(const T& t, field_finder& f) {
  t.msgpack_pack(f);
};

template <class T>
mismatch leaf_mismatch(const msgpack::object& o) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // msgpack-c refuses an integer that does not fit; say which bounds.
    if (o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER) {
      return {
          "",
          "int in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
              std::to_string(std::numeric_limits<T>::max()) + "]",
          o.type == msgpack::type::POSITIVE_INTEGER ? std::to_string(o.via.u64) : std::to_string(o.via.i64)};
    }
  }
  return {"", expected_type_name<T>(), wire_type_name(o)};
}

template <class Tuple, std::size_t... I>
std::optional<mismatch> tuple_mismatch(const msgpack::object& o, std::index_sequence<I...>) {
  std::optional<mismatch> found;
  auto check = [&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
    using E = std::tuple_element_t<K, Tuple>;
    if (found || K >= o.via.array.size || converts_to<E>(o.via.array.ptr[K])) return;
    found = find_mismatch<E>(o.via.array.ptr[K]);
    found->path = " element " + std::to_string(K + 1) + found->path;
  };
  (check(std::integral_constant<std::size_t, I>{}), ...);
  return found;
}

// "an int", "a str"
inline std::string with_article(const std::string& wire_name) {
  const bool vowel =
      !wire_name.empty() && std::string_view("aeiou").find(wire_name[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + wire_name;
}

// A map entry by its key when the key is a str, else by position. The key
// comes from the caller: it is cut to 64 bytes and repaired to UTF-8, since
// the message travels as a protocol str.
inline std::string entry_name(const msgpack::object& key, std::uint32_t index) {
  if (key.type != msgpack::type::STR) return std::to_string(index + 1);
  constexpr std::size_t shown = 64;
  const std::string_view text(key.via.str.ptr, std::min<std::size_t>(key.via.str.size, shown));
  return "'" + protocol::to_valid_utf8(text) + (key.via.str.size > shown ? "...'" : "'");
}

// Precondition: `o` does not convert to T. Returns the innermost part that
// does not: a struct's field, a container's element, a map's entry; or `o`
// itself.
template <class T>
mismatch find_mismatch(const msgpack::object& o) {
  if constexpr (is_optional<T>::value) {
    if (o.type != msgpack::type::NIL) {
      mismatch m = find_mismatch<typename T::value_type>(o);
      if (m.path.empty()) m.expected = expected_type_name<T>();  // "int or nil"
      return m;
    }
  } else if constexpr (msgpack_defined_struct<T>) {
    // msgpack_pack only reads the object; building one is the price of
    // learning the field names, paid on this error path alone.
    const T probe{};
    field_finder finder(o);
    probe.msgpack_pack(finder);
    if (finder.found()) return *finder.found();
    if (finder.shape() == msgpack::type::MAP && o.type == msgpack::type::MAP) {
      // msgpack-c refuses a struct's map with any key that is not a str.
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        if (o.via.map.ptr[i].key.type != msgpack::type::STR)
          return {"", expected_type_name<T>(),
                  "map with " + with_article(wire_type_name(o.via.map.ptr[i].key)) + " key"};
      }
    }
  } else if constexpr (map_like<T>) {
    if (o.type == msgpack::type::MAP) {
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (!converts_to<typename T::key_type>(kv.key)) {
          mismatch m = find_mismatch<typename T::key_type>(kv.key);
          m.path = " key " + std::to_string(i + 1) + m.path;
          return m;
        }
        if (!converts_to<typename T::mapped_type>(kv.val)) {
          mismatch m = find_mismatch<typename T::mapped_type>(kv.val);
          m.path = " entry " + entry_name(kv.key, i) + m.path;
          return m;
        }
      }
    }
  } else if constexpr (sequence_like<T>) {
    if (o.type == msgpack::type::ARRAY) {
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (converts_to<typename T::value_type>(o.via.array.ptr[i])) continue;
        mismatch m = find_mismatch<typename T::value_type>(o.via.array.ptr[i]);
        m.path = " element " + std::to_string(i + 1) + m.path;
        return m;
      }
    }
  } else if constexpr (is_tuple_like<T>::value) {
    if (o.type == msgpack::type::ARRAY) {
      if (auto m = tuple_mismatch<T>(o, std::make_index_sequence<std::tuple_size_v<T>>{})) return *m;
    }
  }
  return leaf_mismatch<T>(o);
}

// "argument 2 field 'y' must be int, got str": the same words as the Python
// worker's "argument 'y' must be int, got str".
template <class T>
std::string argument_mismatch_message(const msgpack::object& o, std::size_t index) {
  const mismatch m = find_mismatch<T>(o);
  return "argument " + std::to_string(index + 1) + m.path + " must be " + m.expected + ", got " + m.got;
}

// "the result field 'y' is str, expected int"
template <class T>
std::string result_mismatch_message(const msgpack::object& o) {
  const mismatch m = find_mismatch<T>(o);
  return "the result" + m.path + " is " + m.got + ", expected " + m.expected;
}

// ---- what cannot cross a process boundary (compile time) ------------------------

// Where a type crosses: decoded from msgpack (a method's parameter, the R of
// ask<R>/map<R>) or encoded to it (a method's result, a call's argument).
enum class crossing { parameter, result, call_result, call_argument };

constexpr bool decodes(crossing c) { return c == crossing::parameter || c == crossing::call_result; }

// A user type made convertible through an adaptor specialization
// (msgpack::adaptor::convert / pack, MSGPACK_ADD_ENUM). msgpack-c's own
// unspecialized adaptor of API v3 derives from v2's; a specialization does
// not. Under another API version this cannot be told, so it is assumed.
#if MSGPACK_DEFAULT_API_VERSION == 3
template <class T>
inline constexpr bool has_own_convert =
    !std::is_base_of_v<msgpack::v2::adaptor::convert<T>, msgpack::adaptor::convert<T>>;
template <class T>
inline constexpr bool has_own_pack =
    !std::is_base_of_v<msgpack::v2::adaptor::pack<T>, msgpack::adaptor::pack<T>>;
#else
template <class T>
inline constexpr bool has_own_convert = true;
template <class T>
inline constexpr bool has_own_pack = true;
#endif

// MSGPACK_DEFINE_MAP / MSGPACK_DEFINE, or hand-written members.
template <class T>
concept has_unpack_member = requires(T& t, const msgpack::object& o) {
  t.msgpack_unpack(o);
};
template <class T>
concept has_pack_member = requires(const T& t, msgpack::packer<null_stream>& pk) {
  t.msgpack_pack(pk);
};

template <class... T>
struct type_list {};

// Types msgpack-c converts itself, and the parts it converts one by one
// (a container's elements, a tuple's members).
template <class T>
struct library_type : std::false_type {};
template <class... P>
struct library_composite : std::true_type {
  using parts = type_list<P...>;  // empty for a leaf such as std::string
};

template <class C, class Tr, class A>
struct library_type<std::basic_string<C, Tr, A>> : library_composite<> {};
template <class C, class Tr>
struct library_type<std::basic_string_view<C, Tr>> : library_composite<> {};
template <class Clock, class D>
struct library_type<std::chrono::time_point<Clock, D>> : library_composite<> {};
// msgpack-c's own types, and timespec: plain classes it has adaptors for.
template <class T>
concept msgpack_plain_type = std::is_same_v<T, msgpack::object> ||
    std::is_same_v<T, msgpack::type::raw_ref> || std::is_same_v<T, msgpack::type::v4raw_ref> ||
    std::is_same_v<T, msgpack::type::nil_t> || std::is_same_v<T, msgpack::type::ext> ||
    std::is_same_v<T, msgpack::type::ext_ref> || std::is_same_v<T, timespec>;
template <msgpack_plain_type T>
struct library_type<T> : library_composite<> {};

template <class T, class A>
struct library_type<std::vector<T, A>> : library_composite<T> {};
template <class T, class A>
struct library_type<std::list<T, A>> : library_composite<T> {};
template <class T, class A>
struct library_type<std::deque<T, A>> : library_composite<T> {};
template <class T, class A>
struct library_type<std::forward_list<T, A>> : library_composite<T> {};
template <class T, class C, class A>
struct library_type<std::set<T, C, A>> : library_composite<T> {};
template <class T, class C, class A>
struct library_type<std::multiset<T, C, A>> : library_composite<T> {};
template <class T, class H, class E, class A>
struct library_type<std::unordered_set<T, H, E, A>> : library_composite<T> {};
template <class T, class H, class E, class A>
struct library_type<std::unordered_multiset<T, H, E, A>> : library_composite<T> {};
template <class K, class V, class C, class A>
struct library_type<std::map<K, V, C, A>> : library_composite<K, V> {};
template <class K, class V, class C, class A>
struct library_type<std::multimap<K, V, C, A>> : library_composite<K, V> {};
template <class K, class V, class H, class E, class A>
struct library_type<std::unordered_map<K, V, H, E, A>> : library_composite<K, V> {};
template <class K, class V, class H, class E, class A>
struct library_type<std::unordered_multimap<K, V, H, E, A>> : library_composite<K, V> {};
template <class T, std::size_t N>
struct library_type<std::array<T, N>> : library_composite<T> {};
template <class T, std::size_t N>
struct library_type<T[N]> : library_composite<T> {};
template <class T, std::size_t N>
struct library_type<std::span<T, N>> : library_composite<T> {};
template <class T>
struct library_type<std::optional<T>> : library_composite<T> {};
template <class T>
struct library_type<std::shared_ptr<T>> : library_composite<T> {};
template <class T>
struct library_type<std::unique_ptr<T>> : library_composite<T> {};
template <class T>
struct library_type<std::reference_wrapper<T>> : library_composite<T> {};
template <class T>
struct library_type<std::complex<T>> : library_composite<T> {};
template <class A, class B>
struct library_type<std::pair<A, B>> : library_composite<A, B> {};
template <class... A>
struct library_type<std::tuple<A...>> : library_composite<A...> {};
template <class... A>
struct library_type<msgpack::type::tuple<A...>> : library_composite<A...> {};

enum class verdict { ok, pointer, enum_without_adaptor, no_adaptor };

template <class T, crossing C>
constexpr verdict verdict_for() {
  if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T>) {
    // msgpack-c sends a C string as str; receiving one would point into a
    // buffer that is gone after the call.
    using pointee = std::remove_cv_t<std::remove_pointer_t<T>>;
    return C == crossing::call_argument && std::is_same_v<pointee, char> ? verdict::ok : verdict::pointer;
  } else if constexpr (std::is_same_v<T, bool> ||
                       (std::is_arithmetic_v<T> && !std::is_same_v<T, long double>)) {
    return verdict::ok;
  } else if constexpr (std::is_enum_v<T>) {
    if constexpr (std::is_same_v<T, std::byte>) return verdict::ok;
    return (decodes(C) ? has_own_convert<T> : has_own_pack<T>) ? verdict::ok : verdict::enum_without_adaptor;
  } else if constexpr (library_type<T>::value) {
    return verdict::ok;
  } else if constexpr (decodes(C) ? has_unpack_member<T> : has_pack_member<T>) {
    return verdict::ok;
  } else if constexpr (std::is_class_v<T> && (decodes(C) ? has_own_convert<T> : has_own_pack<T>)) {
    return verdict::ok;
  } else {
    return verdict::no_adaptor;
  }
}

template <class T, crossing C>
struct crosses;

template <class L, crossing C>
struct all_cross;
template <class... P, crossing C>
struct all_cross<type_list<P...>, C> : std::bool_constant<(crosses<std::remove_cv_t<P>, C>::value && ...)> {};

// Whether T and everything msgpack-c converts inside it can cross, without
// a static_assert (for tests; check_crossing below is what asserts).
template <class T, crossing C>
struct crosses : std::bool_constant<verdict_for<T, C>() == verdict::ok> {};
template <class T, crossing C>
requires(library_type<T>::value) struct crosses<T, C> : all_cross<typename library_type<T>::parts, C> {
};

template <class T, crossing C>
struct check_crossing;

// Instantiating check_fields checks the fields of a MSGPACK_DEFINE struct:
// its msgpack_pack hands every field, typed, to this packer.
template <crossing C>
struct field_checker : msgpack::packer<null_stream> {
  field_checker() : msgpack::packer<null_stream>(null_sink) {}
  field_checker& pack_map(std::uint32_t) { return *this; }
  field_checker& pack_array(std::uint32_t) { return *this; }
  template <class U>
  field_checker& pack(const U&) {
    (void)check_crossing<std::remove_cv_t<U>, C>::value;
    return *this;
  }
};
template <class T, crossing C>
void check_fields(const T& t) {
  field_checker<C> checker;
  t.msgpack_pack(checker);
}

template <class L, crossing C>
struct check_parts;
template <class... P, crossing C>
struct check_parts<type_list<P...>, C>
    : std::bool_constant<(check_crossing<std::remove_cv_t<P>, C>::value && ...)> {};

// Reading check_crossing<T, C>::value (troupe::method does, for every
// parameter and the result; the client for a call's types) checks T and
// everything inside it. A static_assert fires for the innermost type that
// cannot cross, so the compiler's "In instantiation of check_crossing<T,
// ...>" line names it, and the message says what to do. value is
// crosses<T, C>::value, reached through the same verdicts.
template <class T, crossing C>
struct check_crossing {
  static constexpr verdict v = verdict_for<T, C>();
  static_assert(C != crossing::parameter || v != verdict::pointer,
                "troupe: a method parameter is a pointer. Only values cross a process boundary: take T, "
                "const T&, std::string or std::vector<T> instead.");
  static_assert(C != crossing::result || v != verdict::pointer,
                "troupe: a method returns a pointer. Only values cross a process boundary: return T, "
                "std::string or std::vector<T> instead.");
  static_assert(C != crossing::call_result || v != verdict::pointer,
                "troupe: ask<R>/map<R> with a pointer R. Only values cross a process boundary: ask for T, "
                "std::string or std::vector<T> instead.");
  static_assert(
      C != crossing::call_argument || v != verdict::pointer,
      "troupe: an argument of ask/tell/map is a pointer. Only values cross a process boundary: pass "
      "the value (a const char* is sent as a string).");
  static_assert(
      v != verdict::enum_without_adaptor,
      "troupe: msgpack-c cannot convert this enum. Add MSGPACK_ADD_ENUM(the_enum) at global scope.");
  static_assert(v != verdict::no_adaptor,
                "troupe: msgpack-c cannot convert this type. Give the struct MSGPACK_DEFINE_MAP(field1, "
                "field2, ...) listing its fields (see docs/concepts.md), or specialize "
                "msgpack::adaptor::convert and msgpack::adaptor::pack for it.");

  static constexpr bool value = [] {
    if constexpr (v != verdict::ok) {
      return false;
    } else if constexpr (library_type<T>::value) {
      return check_parts<typename library_type<T>::parts, C>::value;
    } else if constexpr (has_pack_member<T>) {
      // The fields of a MSGPACK_DEFINE struct are checked too, once the
      // compiler instantiates check_fields. A field msgpack-c cannot convert
      // is already an error at the struct's MSGPACK_DEFINE line; troupe's
      // message follows it and names the field's type.
      [[maybe_unused]] constexpr auto walk = &check_fields<T, C>;
      return true;
    } else {
      return true;
    }
  }();
};

}  // namespace troupe::detail
