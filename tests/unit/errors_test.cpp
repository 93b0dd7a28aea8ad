// The exceptions of troupe/errors.hpp, and how the client turns a reply's
// value into R: the decode path of ask<R> and map<R>, without sockets.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "troupe/client.hpp"

namespace troupe {
namespace {

struct point {
  int x = 0;
  int y = 0;
  MSGPACK_DEFINE_MAP(x, y)
};

struct text_point {
  int x = 0;
  std::string y;
  MSGPACK_DEFINE_MAP(x, y)
};

// A reply's value as the client receives it: msgpack bytes, unpacked.
template <class T>
msgpack::object_handle reply_value(const T& value) {
  troupe::value_buffer buf;
  msgpack::pack(buf, value);
  return msgpack::unpack(buf.data(), buf.size());
}

template <class R, class T>
std::string result_error_of(const T& value) {
  const auto oh = reply_value(value);
  try {
    (void)detail::result_as<R>(oh.get());
  } catch (const result_type_error& e) {
    return e.what();
  }
  return "(converted)";
}

TEST(Errors, AllDeriveFromOneBase) {
  const error e(protocol::status::unknown_method, "actor 'squares' has no method 'cube'");
  const exception& base = e;
  EXPECT_STREQ(base.what(), "unknown_method: actor 'squares' has no method 'cube'");
  EXPECT_EQ(e.code(), protocol::status::unknown_method);
  EXPECT_EQ(e.code_name(), "unknown_method");
  EXPECT_EQ(e.message(), "actor 'squares' has no method 'cube'");
  EXPECT_TRUE((std::is_base_of_v<exception, result_type_error>));
  EXPECT_TRUE((std::is_base_of_v<exception, bad_args_error>));
  EXPECT_TRUE((std::is_base_of_v<std::runtime_error, exception>));
}

TEST(Errors, ResultTypeErrorSaysWhatArrivedAndWhatWasAskedFor) {
  EXPECT_EQ(result_error_of<int>(std::string("seven")), "the result is str, expected int");
  EXPECT_EQ(result_error_of<std::string>(7), "the result is int, expected str");
  EXPECT_EQ(result_error_of<std::uint8_t>(300), "the result is 300, expected int in [0, 255]");
  EXPECT_EQ(result_error_of<std::vector<double>>(std::vector<std::string>{"a"}),
            "the result element 1 is str, expected float");
  EXPECT_EQ(result_error_of<point>(text_point{1, "two"}), "the result field 'y' is str, expected int");
  using text_points = std::map<std::string, text_point>;
  EXPECT_EQ((result_error_of<std::map<std::string, point>>(text_points{{"a", {1, "b"}}})),
            "the result entry 'a' field 'y' is str, expected int");
  EXPECT_EQ(result_error_of<std::optional<int>>(2.5), "the result is float, expected int or nil");
  EXPECT_EQ(result_error_of<point>(7), "the result is int, expected troupe::point");
}

TEST(Errors, ResultThatConvertsIsReturned) {
  const auto oh = reply_value(point{1, 2});
  const auto p = detail::result_as<point>(oh.get());
  EXPECT_EQ(p.y, 2);
  const auto whole = reply_value(2);
  EXPECT_DOUBLE_EQ(detail::result_as<double>(whole.get()), 2.0);  // an int is fine where a float is wanted
}

}  // namespace
}  // namespace troupe
