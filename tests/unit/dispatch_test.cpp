// Registry, argument conversion and its errors, method errors, and the
// lifecycle of instances (lazy, one per address, destroyed exactly once).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>

#include "troupe/dispatch.hpp"
#include "troupe/registry.hpp"

namespace troupe {
namespace {

using protocol::status;

struct lifecycle_log {
  int constructed = 0;
  int destroyed = 0;
  std::vector<std::string> order;
};
lifecycle_log lifelog;

struct point {
  int x = 0;
  int y = 0;
  std::string label;
  MSGPACK_DEFINE_MAP(x, y, label)
};

struct segment {
  point from;
  point to;
  MSGPACK_DEFINE_MAP(from, to)
};

// MSGPACK_DEFINE: an array on the wire.
struct sample {
  int count = 0;
  std::string unit;
  MSGPACK_DEFINE(count, unit)
};

// Packs a msgpack map of any keys and values, in order:
// wire_map("x", 1, "y", "two") is {"x": 1, "y": "two"}.
template <class... KV>
struct wire_map_t {
  std::tuple<KV...> entries;
  template <class Packer>
  void msgpack_pack(Packer& pk) const {
    pk.pack_map(sizeof...(KV) / 2);
    std::apply([&](const auto&... e) { (pk.pack(e), ...); }, entries);
  }
};
template <class... KV>
wire_map_t<std::decay_t<const KV>...> wire_map(const KV&... kv) {
  static_assert(sizeof...(KV) % 2 == 0, "keys and values alternate");
  return {{kv...}};
}

class tracked {
 public:
  explicit tracked(const context& ctx) : address_(ctx.address()), key_(ctx.key()) {
    ++lifelog.constructed;
    lifelog.order.push_back("+" + address_);
  }
  ~tracked() {
    ++lifelog.destroyed;
    lifelog.order.push_back("-" + address_);
  }
  int add(int a, int b) { return a + b + 0 * calls_++; }
  int calls() const { return calls_; }
  std::string key() const { return key_; }
  double scale(const std::vector<double>& xs, double f) const {
    double sum = 0;
    for (double x : xs) sum += x * f;
    return sum;
  }
  point move(point p, std::optional<int> dx) const {
    p.x += dx.value_or(1);
    return p;
  }
  std::map<std::string, int> count(const std::vector<std::string>& words) const {
    std::map<std::string, int> m;
    for (const auto& w : words) ++m[w];
    return m;
  }
  void nothing() {}
  int swallow(const msgpack::object&) { return 1; }
  std::size_t bytes(const std::vector<unsigned char>& b) const { return b.size(); }
  int span(const segment& s) const { return s.to.x - s.from.x; }
  std::size_t points(const std::vector<point>& ps) const { return ps.size(); }
  int weigh(const sample& s) const { return s.count; }
  std::size_t named(const std::map<std::string, point>& m) const { return m.size(); }
  int maybe(const std::optional<point>& p) const { return p ? p->y : -1; }
  std::string repeat(int n) const { return std::string(static_cast<std::size_t>(n), 'x'); }
  int fail(const std::string& why) { throw std::runtime_error(why); }
  int fail_oddly() { throw 42; }

 private:
  std::string address_, key_;
  int calls_ = 0;
};

class explodes_on_build {
 public:
  explodes_on_build() { throw std::runtime_error("no database"); }
  int ping() { return 1; }
};

registry make_registry() {
  registry r;
  r.add(describe_actor<tracked>(
      "tracked",
      {method("add", &tracked::add), method("calls", &tracked::calls), method("key", &tracked::key),
       method("scale", &tracked::scale), method("move", &tracked::move), method("count", &tracked::count),
       method("nothing", &tracked::nothing), method("swallow", &tracked::swallow),
       method("bytes", &tracked::bytes), method("repeat", &tracked::repeat), method("fail", &tracked::fail),
       method("fail_oddly", &tracked::fail_oddly), method("span", &tracked::span),
       method("points", &tracked::points), method("weigh", &tracked::weigh), method("named", &tracked::named),
       method("maybe", &tracked::maybe)}));
  r.add(describe_actor<explodes_on_build>("explodes", {method("ping", &explodes_on_build::ping)}));
  return r;
}

template <class... A>
std::string args(const A&... a) {
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer> pk(buf);
  pk.pack_array(sizeof...(A));
  (pk.pack(a), ...);
  return std::string(buf.data(), buf.size());
}

struct call_result {
  status code;
  msgpack::object_handle value;
};

class Dispatch : public ::testing::Test {
 protected:
  void SetUp() override { lifelog = {}; }

  call_result call(std::string_view address, std::string_view method, const std::string& a) {
    troupe::value_buffer out;
    const auto code = d.handle(address, method, a.data(), a.size(), out);
    return {code, msgpack::unpack(out.data(), out.size())};
  }
  std::string message(const call_result& r) { return r.value.get().as<std::string>(); }

  registry types = make_registry();
  dispatcher d{types};
};

TEST_F(Dispatch, CallsByNameWithConvertedArguments) {
  auto r = call("tracked", "add", args(2, 3));
  ASSERT_EQ(r.code, status::ok);
  EXPECT_EQ(r.value.get().as<int>(), 5);
  r = call("tracked", "scale", args(std::vector<double>{1, 2.5}, 2));  // int 2 converts to double
  ASSERT_EQ(r.code, status::ok);
  EXPECT_DOUBLE_EQ(r.value.get().as<double>(), 7.0);
  EXPECT_EQ(r.value.get().type, msgpack::type::FLOAT64) << "a whole double must stay a float on the wire";
  r = call("tracked", "count", args(std::vector<std::string>{"a", "b", "a"}));
  ASSERT_EQ(r.code, status::ok);
  EXPECT_EQ((r.value.get().as<std::map<std::string, int>>()),
            (std::map<std::string, int>{{"a", 2}, {"b", 1}}));
  r = call("tracked", "nothing", args());
  ASSERT_EQ(r.code, status::ok);
  EXPECT_TRUE(r.value.get().is_nil());
}

TEST_F(Dispatch, UserStructsAndOptionals) {
  auto r = call("tracked", "move", args(point{1, 2, "p"}, std::optional<int>{}));
  ASSERT_EQ(r.code, status::ok);
  auto p = r.value.get().as<point>();
  EXPECT_EQ(p.x, 2);
  EXPECT_EQ(p.label, "p");
  r = call("tracked", "move", args(point{1, 2, "p"}, std::optional<int>{10}));
  EXPECT_EQ(r.value.get().as<point>().x, 11);
}

TEST_F(Dispatch, BadArgumentsAreReportedNotCalled) {
  auto r = call("tracked", "add", args(1));
  EXPECT_EQ(r.code, status::bad_args);
  EXPECT_EQ(message(r), "expected 2 argument(s), got 1");
  r = call("tracked", "add", args(1, "two"));
  EXPECT_EQ(r.code, status::bad_args);
  EXPECT_EQ(message(r), "argument 2 must be int, got str");
  r = call("tracked", "add", args(1, std::int64_t{1} << 40));
  EXPECT_EQ(r.code, status::bad_args);
  EXPECT_EQ(message(r), "argument 2 must be int in [-2147483648, 2147483647], got 1099511627776");
  r = call("tracked", "scale", args(std::vector<std::string>{"a"}, 2.0));
  EXPECT_EQ(message(r), "argument 1 element 1 must be float, got str");
  r = call("tracked", "scale", args(std::map<std::string, int>{{"a", 1}}, 2.0));
  EXPECT_EQ(message(r), "argument 1 must be array of float, got map");
  r = call("tracked", "move", args(7, std::optional<int>{}));
  EXPECT_EQ(message(r), "argument 1 must be troupe::point, got int");
  r = call("tracked", "move", args(point{}, "far"));
  EXPECT_EQ(message(r), "argument 2 must be int or nil, got str");
  r = call("tracked", "bytes", args(std::vector<int>{1, 2}));
  EXPECT_EQ(message(r), "argument 1 must be bin or str, got array");
  r = call("tracked", "add", std::string("\x07", 1));  // not an array
  EXPECT_EQ(r.code, status::bad_args);
  r = call("tracked", "add", std::string("\x92\x01", 2));  // truncated
  EXPECT_EQ(r.code, status::bad_args);
  r = call("tracked", "add", std::string("\x92\x01\x02\x03", 4));  // trailing byte
  EXPECT_EQ(r.code, status::bad_args);
  EXPECT_EQ(call("tracked", "calls", args()).value.get().as<int>(), 0);
}

// Structs are maps on the wire (MSGPACK_DEFINE_MAP) or arrays
// (MSGPACK_DEFINE): bad_args names the field or element that did not
// convert, however deep, in the same words as a top-level argument.
TEST_F(Dispatch, BadArgumentsNameTheFieldOrElement) {
  auto r = call("tracked", "move", args(wire_map("x", 1, "y", "two", "label", "p"), std::optional<int>{}));
  EXPECT_EQ(r.code, status::bad_args);
  EXPECT_EQ(message(r), "argument 1 field 'y' must be int, got str");
  r = call("tracked", "move", args(wire_map("x", 1, "y", std::int64_t{1} << 40), std::optional<int>{}));
  EXPECT_EQ(message(r), "argument 1 field 'y' must be int in [-2147483648, 2147483647], got 1099511627776");
  r = call("tracked", "move", args(wire_map("x", 1, "label", 7), std::optional<int>{}));
  EXPECT_EQ(message(r), "argument 1 field 'label' must be str, got int");
  r = call("tracked", "span", args(wire_map("from", point{}, "to", wire_map("x", "far"))));
  EXPECT_EQ(message(r), "argument 1 field 'to' field 'x' must be int, got str");
  r = call("tracked", "points", args(std::make_tuple(point{}, wire_map("y", 2.5))));
  EXPECT_EQ(message(r), "argument 1 element 2 field 'y' must be int, got float");
  r = call("tracked", "weigh", args(std::make_tuple(3, 4)));
  EXPECT_EQ(message(r), "argument 1 element 2 must be str, got int");
  r = call("tracked", "named", args(wire_map("a", point{}, "b", wire_map("x", msgpack::type::nil_t{}))));
  EXPECT_EQ(message(r), "argument 1 entry 'b' field 'x' must be int, got nil");
  // A key from the caller is echoed cut short and as valid UTF-8.
  r = call("tracked", "named", args(wire_map(std::string(100, 'k') + "\xff", wire_map("x", "q"))));
  EXPECT_EQ(message(r), "argument 1 entry '" + std::string(64, 'k') + "...' field 'x' must be int, got str");
  r = call("tracked", "named", args(wire_map(std::string("k\xff"), 1)));
  EXPECT_EQ(message(r), "argument 1 entry 'k\xef\xbf\xbd' must be troupe::point, got int");
  r = call("tracked", "maybe", args(wire_map("y", "up")));
  EXPECT_EQ(message(r), "argument 1 field 'y' must be int, got str");
  r = call("tracked", "maybe", args("up"));
  EXPECT_EQ(message(r), "argument 1 must be troupe::point or nil, got str");
  r = call("tracked", "move", args(wire_map(1, 2), std::optional<int>{}));
  EXPECT_EQ(message(r), "argument 1 must be troupe::point, got map with an int key");
  r = call("tracked", "weigh", args(wire_map("count", 1)));
  EXPECT_EQ(message(r), "argument 1 must be troupe::sample, got map");

  // What converts still does: missing fields keep their defaults, extra
  // ones are ignored, and nil is an empty optional.
  r = call("tracked", "move", args(wire_map("x", 1, "extra", "ignored"), std::optional<int>{}));
  ASSERT_EQ(r.code, status::ok);
  EXPECT_EQ(r.value.get().as<point>().x, 2);
  EXPECT_EQ(call("tracked", "maybe", args(msgpack::type::nil_t{})).value.get().as<int>(), -1);
  EXPECT_EQ(call("tracked", "span", args(segment{{1, 0, ""}, {5, 0, ""}})).value.get().as<int>(), 4);
  EXPECT_EQ(lifelog.constructed, 1);
}

// The result side of the same walk, as the client reports it.
TEST(Conversion, ResultMismatchSaysWhatArrivedAndWhatWasAskedFor) {
  const auto value = [](const auto& v) {
    const auto packed = args(v);  // a one-element array; take the element
    return msgpack::unpack(packed.data(), packed.size());
  };
  auto v = value("text");
  EXPECT_EQ(detail::result_mismatch_message<int>(v.get().via.array.ptr[0]),
            "the result is str, expected int");
  v = value(wire_map("x", 1, "y", "two"));
  EXPECT_EQ(detail::result_mismatch_message<point>(v.get().via.array.ptr[0]),
            "the result field 'y' is str, expected int");
  v = value(std::vector<std::int64_t>{1, 300});
  EXPECT_EQ(detail::result_mismatch_message<std::vector<std::uint8_t>>(v.get().via.array.ptr[0]),
            "the result is array, expected bin or str");
  v = value(std::vector<std::int64_t>{1, -3});
  EXPECT_EQ(detail::result_mismatch_message<std::vector<unsigned>>(v.get().via.array.ptr[0]),
            "the result element 2 is -3, expected int in [0, 4294967295]");
}

enum class color { red, green };
enum class shade { dark, light };

}  // namespace
}  // namespace troupe

MSGPACK_ADD_ENUM(troupe::shade);

namespace troupe {
namespace {

// What may cross a process boundary, decided at compile time. A failing
// case is a build error with troupe's own message: tests/compile_fail/.
struct opaque {
  int* pointer = nullptr;
};
struct own_adaptor {};

}  // namespace
}  // namespace troupe

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <>
  struct convert<troupe::own_adaptor> {
    const msgpack::object& operator()(const msgpack::object& o, troupe::own_adaptor&) const { return o; }
  };
  }  // namespace adaptor
}
}  // namespace msgpack

namespace troupe {
namespace {

using detail::crossing;
template <class T>
constexpr bool parameter_ok = detail::crosses<T, crossing::parameter>::value;

static_assert(parameter_ok<int> && parameter_ok<bool> && parameter_ok<double> && parameter_ok<std::string>);
static_assert(parameter_ok<point> && parameter_ok<sample> && parameter_ok<std::vector<point>>);
static_assert(parameter_ok<std::map<std::string, std::optional<point>>> &&
              parameter_ok<std::tuple<int, point>>);
static_assert(parameter_ok<msgpack::object> && parameter_ok<std::string_view> && parameter_ok<std::byte>);
static_assert(parameter_ok<shade> && parameter_ok<own_adaptor>);
static_assert(!parameter_ok<int*> && !parameter_ok<const char*> && !parameter_ok<int point::*>);
static_assert(!parameter_ok<opaque> && !parameter_ok<std::vector<opaque>> &&
              !parameter_ok<std::map<int, opaque>>);
static_assert(!parameter_ok<std::optional<int*>> && !parameter_ok<color> &&
              !parameter_ok<std::function<int()>>);
static_assert(detail::crosses<const char*, crossing::call_argument>::value);  // sent as str
static_assert(!detail::crosses<const char*, crossing::result>::value);
static_assert(!detail::crosses<own_adaptor, crossing::result>::value);  // convert only, no pack

TEST_F(Dispatch, HostileArgsAreRejectedWithinLimits) {
  // An array header claiming 4 billion elements in a 5-byte frame.
  EXPECT_EQ(call("tracked", "add", std::string("\xdd\xff\xff\xff\xff", 5)).code, status::bad_args);
  // A str header claiming 4 GiB.
  EXPECT_EQ(call("tracked", "add", std::string("\x91\xdb\xff\xff\xff\xff", 6)).code, status::bad_args);
  // Nesting 1000 deep.
  EXPECT_EQ(call("tracked", "add", std::string(1000, '\x91')).code, status::bad_args);
}

TEST_F(Dispatch, ArgsOverTheSizeLimitAreABadRequest) {
  protocol::limits small;
  small.max_message_bytes = 16;
  dispatcher limited(types, small);
  troupe::value_buffer out;
  const auto big = args(std::string(32, 'x'));
  EXPECT_EQ(limited.handle("tracked", "key", big.data(), big.size(), out), status::bad_request);
  EXPECT_EQ(limited.live_instances(), 0u);
}

TEST_F(Dispatch, NestingUpToTheDepthLimitIsAccepted) {
  // The args array is level 1: 32 levels in all is fine, 33 is not.
  EXPECT_EQ(call("tracked", "swallow", std::string(32, '\x91') + "\x01").code, status::ok);
  EXPECT_EQ(call("tracked", "swallow", std::string(33, '\x91') + "\x01").code, status::bad_args);
}

TEST_F(Dispatch, ResultsOverTheSizeLimitAreAnActorError) {
  protocol::limits small;
  small.max_message_bytes = 64;
  dispatcher limited(types, small);
  troupe::value_buffer out;
  const auto ok = args(10), big = args(100);
  EXPECT_EQ(limited.handle("tracked", "repeat", ok.data(), ok.size(), out), status::ok);
  EXPECT_EQ(limited.handle("tracked", "repeat", big.data(), big.size(), out), status::actor_error);
}

TEST_F(Dispatch, UnknownNamesAndMethods) {
  auto r = call("nope", "add", args());
  EXPECT_EQ(r.code, status::unknown_actor);
  r = call("tracked", "nope", args());
  EXPECT_EQ(r.code, status::unknown_method);
  EXPECT_EQ(message(r), "actor 'tracked' has no method 'nope'");
  EXPECT_EQ(call("bad name", "add", args()).code, status::bad_request);
  // Straight from a peer that is not the broker: a method name that is not
  // UTF-8 is malformed, and is not echoed back.
  r = call("tracked", "ad\xff", args());
  EXPECT_EQ(r.code, status::bad_request);
  EXPECT_EQ(message(r), "malformed method name");
  EXPECT_EQ(lifelog.constructed, 0);  // nothing is built for a request that cannot run
}

TEST_F(Dispatch, ThrowingMethodsGiveActorErrorAndKeepTheInstance) {
  auto r = call("tracked", "fail", args(std::string("disk full")));
  EXPECT_EQ(r.code, status::actor_error);
  EXPECT_EQ(message(r), "disk full");
  EXPECT_EQ(call("tracked", "fail_oddly", args()).code, status::actor_error);
  // An error message travels as a protocol str: bytes that are not UTF-8 are replaced.
  r = call("tracked", "fail", args(std::string("disk \xff full")));
  EXPECT_EQ(message(r), "disk \xef\xbf\xbd full");
  EXPECT_EQ(call("tracked", "add", args(1, 1)).code, status::ok);
  EXPECT_EQ(lifelog.constructed, 1);
}

TEST_F(Dispatch, FailingConstructorGivesActorErrorAndIsRetried) {
  auto r = call("explodes", "ping", args());
  EXPECT_EQ(r.code, status::actor_error);
  EXPECT_NE(message(r).find("no database"), std::string::npos);
  EXPECT_EQ(d.live_instances(), 0u);
  EXPECT_EQ(call("explodes", "ping", args()).code, status::actor_error);
}

TEST_F(Dispatch, InstancesAreLazyOnePerAddressAndDestroyedOnceNewestFirst) {
  EXPECT_EQ(lifelog.constructed, 0);
  call("tracked", "add", args(1, 2));
  call("tracked", "add", args(1, 2));
  EXPECT_EQ(lifelog.constructed, 1);
  EXPECT_EQ(call("tracked/alice", "key", args()).value.get().as<std::string>(), "alice");
  call("tracked/bob", "add", args(1, 2));
  EXPECT_EQ(lifelog.constructed, 3);
  EXPECT_EQ(call("tracked", "calls", args()).value.get().as<int>(), 2);
  d.destroy_all();
  EXPECT_EQ(lifelog.destroyed, 3);
  EXPECT_EQ((std::vector<std::string>(lifelog.order.end() - 3, lifelog.order.end())),
            (std::vector<std::string>{"-tracked/bob", "-tracked/alice", "-tracked"}));
  d.destroy_all();
  EXPECT_EQ(lifelog.destroyed, 3);  // exactly once
}

TEST_F(Dispatch, DestructorDestroysWhatIsLive) {
  {
    dispatcher local(types);
    troupe::value_buffer out;
    const auto a = args(1, 2);
    local.handle("tracked/x", "add", a.data(), a.size(), out);
    EXPECT_EQ(lifelog.constructed, 1);
  }
  EXPECT_EQ(lifelog.destroyed, 1);
}

class plain {
 public:
  int one() { return 1; }
};

TEST(Registry, RejectsDuplicatesAndBadNames) {
  registry r;
  r.add(describe_actor<plain>("plain", {method("one", &plain::one)}));
  r.add(describe_actor<plain>("plain", {method("one", &plain::one)}));
  r.add(describe_actor<plain>("twice", {method("one", &plain::one), method("one", &plain::one)}));
  r.add(describe_actor<plain>("bad name!", {method("one", &plain::one)}));
  ASSERT_EQ(r.errors().size(), 3u);
  EXPECT_EQ(r.errors()[0], "actor name 'plain' is registered twice");
  EXPECT_EQ(r.errors()[1], "actor 'twice' registers method 'one' twice");
  EXPECT_NE(r.errors()[2].find("'bad name!' is invalid"), std::string::npos);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"plain", "twice"}));
}

// ---- calls from methods and coroutine methods (troupe/calls.hpp) ----

// A fake call site: records the calls and answers asks when told to.
class fake_site final : public detail::call_site {
 public:
  void tell(std::string_view address, std::string_view method, std::string) override {
    told.push_back(std::string(address) + "." + std::string(method));
  }
  void ask(std::string_view address, std::string_view, std::string, const call_options& opts,
           client::callback done) override {
    asked.push_back(std::string(address));
    chains.push_back(protocol::decode_chain(opts.chain).size());
    timeouts.push_back(opts.timeout);
    waiting.push_back(std::move(done));
  }
  void resume_later(std::coroutine_handle<> h) override { ready.push_back(h); }

  std::vector<std::string> told, asked;
  std::vector<std::size_t> chains;
  std::vector<std::chrono::milliseconds> timeouts;
  std::vector<client::callback> waiting;
  std::vector<std::coroutine_handle<>> ready;
};

class caller_actor {
 public:
  explicit caller_actor(const context& ctx) : ctx_(ctx) {}
  task<long long> twice(long long x) {
    const auto y = co_await ctx_.ask<long long>("squares", "square", x);
    co_return 2 * y + co_await plus_one(0);  // a task may await another task
  }
  task<long long> at_once(long long x) { co_return x + 1; }
  task<void> fail() {
    throw std::runtime_error("no");
    co_return;
  }
  int blocking_error() { return ctx_.ask<int>("squares", "square", 1).get(); }
  void poke() const { ctx_.tell("counter/a", "add", 1); }

 private:
  task<long long> plus_one(long long x) { co_return x + 1; }
  const context& ctx_;
};

registry caller_registry() {
  registry r;
  r.add(describe_actor<caller_actor>(
      "caller", {method("twice", &caller_actor::twice), method("at_once", &caller_actor::at_once),
                 method("fail", &caller_actor::fail), method("blocking_error", &caller_actor::blocking_error),
                 method("poke", &caller_actor::poke)}));
  return r;
}

raw_reply ok_reply(long long v) {
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer> pk(buf);
  pk.pack(v);
  return {status::ok, std::string(buf.data(), buf.size())};
}

TEST(Calls, ACoroutineMethodAwaitsItsAskAndItsInstanceWaitsMeanwhile) {
  const auto types = caller_registry();
  dispatcher d(types);
  fake_site site;
  d.set_call_site(&site);
  const auto a = args(7LL);
  troupe::value_buffer out;
  std::string chain;
  protocol::encode_chain(chain, {{"relay/x", 3}});
  const message_info info{42, chain, std::chrono::steady_clock::now() + std::chrono::seconds(5)};
  detail::started_task started;
  ASSERT_EQ(d.handle("caller/k", "twice", a.data(), a.size(), out, &info, &started), status::ok);
  ASSERT_TRUE(started.handle);
  EXPECT_TRUE(d.awaiting("caller/k"));
  EXPECT_FALSE(d.drop("caller/k"));  // never under its coroutine
  bool done = false;
  started.promise->on_done = [&] { done = true; };
  started.handle.resume();
  ASSERT_EQ(site.asked, std::vector<std::string>{"squares"});
  EXPECT_EQ(site.chains[0], 2u);  // the chain it came with, and itself
  EXPECT_GT(site.timeouts[0].count(), 4000);
  EXPECT_LE(site.timeouts[0].count(), 5000);
  EXPECT_FALSE(done);
  site.waiting[0](ok_reply(49));  // the reply comes: the coroutine is queued to go on
  ASSERT_EQ(site.ready.size(), 1u);
  site.ready[0].resume();
  ASSERT_TRUE(done);
  EXPECT_EQ(d.finish("caller/k", started, out), status::ok);
  EXPECT_EQ(msgpack::unpack(out.data(), out.size()).get().as<long long>(), 99);
  EXPECT_FALSE(d.awaiting("caller/k"));
}

TEST(Calls, OutsideAWorkerTasksRunToTheirEndAndAsksFail) {
  const auto types = caller_registry();
  dispatcher d(types);
  troupe::value_buffer out;
  const auto a = args(7LL);
  EXPECT_EQ(d.handle("caller", "at_once", a.data(), a.size(), out), status::ok);
  EXPECT_EQ(msgpack::unpack(out.data(), out.size()).get().as<long long>(), 8);
  // The ask fails at once; its troupe::error keeps its code.
  EXPECT_EQ(d.handle("caller", "twice", a.data(), a.size(), out), status::bad_request);
  EXPECT_NE(msgpack::unpack(out.data(), out.size()).get().as<std::string>().find("need a worker"),
            std::string::npos);
  const auto none = args();
  EXPECT_EQ(d.handle("caller", "blocking_error", none.data(), none.size(), out), status::bad_request);
  EXPECT_EQ(d.handle("caller", "fail", none.data(), none.size(), out), status::actor_error);
  EXPECT_EQ(msgpack::unpack(out.data(), out.size()).get().as<std::string>(), "no");
  EXPECT_FALSE(d.awaiting("caller"));
  const auto bad = args(std::string("seven"));
  EXPECT_EQ(d.handle("caller", "twice", bad.data(), bad.size(), out), status::bad_args);
  EXPECT_FALSE(d.awaiting("caller"));
}

TEST(Calls, AnAskWithNoTimeLeftOrTooLongAChainFailsAtOnceAndATellGoesOut) {
  const auto types = caller_registry();
  dispatcher d(types);
  fake_site site;
  d.set_call_site(&site);
  troupe::value_buffer out;
  const auto a = args(7LL);
  const message_info late{1, {}, std::chrono::steady_clock::now() - std::chrono::milliseconds(1)};
  detail::started_task started;
  ASSERT_EQ(d.handle("caller/a", "twice", a.data(), a.size(), out, &late, &started), status::ok);
  started.handle.resume();  // the ask is refused before it is sent: no suspension
  ASSERT_TRUE(started.handle.done());
  EXPECT_EQ(d.finish("caller/a", started, out), status::deadline_exceeded);
  EXPECT_TRUE(site.asked.empty());

  std::string chain;
  protocol::encode_chain(chain, std::vector<protocol::chain_link>(protocol::max_chain_length, {"relay", 1}));
  const message_info deep{2, chain, std::chrono::steady_clock::time_point::max()};
  ASSERT_EQ(d.handle("caller/b", "twice", a.data(), a.size(), out, &deep, &started), status::ok);
  started.handle.resume();
  EXPECT_EQ(d.finish("caller/b", started, out), status::bad_request);
  EXPECT_TRUE(site.asked.empty());

  const auto none = args();
  EXPECT_EQ(d.handle("caller/c", "poke", none.data(), none.size(), out), status::ok);
  EXPECT_EQ(site.told, std::vector<std::string>{"counter/a.add"});
}

TEST(Calls, RawValueKeepsAnyValue) {
  const auto packed = args(1, std::string("x"), std::vector<int>{2, 3});
  const auto h = msgpack::unpack(packed.data(), packed.size());
  const auto raw = h.get().as<raw_value>();
  EXPECT_EQ(raw.bytes, packed);
  EXPECT_TRUE(raw.is_array());
  troupe::value_buffer buf;
  msgpack::packer<troupe::value_buffer> pk(buf);
  pk.pack(raw);
  EXPECT_EQ(std::string(buf.data(), buf.size()), packed);
  EXPECT_FALSE(raw_value{}.is_array());
}

}  // namespace
}  // namespace troupe
