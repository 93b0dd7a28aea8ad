// Calling actors from C++.
//
//   troupe::client c("tcp://127.0.0.1:5555");
//   int y = c.ask<int>("squares", "square", 7).get();        // 49
//   c.tell("counter/alice", "add", 5);                         // one-way
//   auto ys = c.map<int>("squares", "square", std::vector{1, 2, 3});
//   auto zs = c.map<int>(troupe::map_options{.window = 8}, "squares", "square", std::vector{4, 5});
//
// Options come first, for ask and map alike. Errors are the exceptions of
// troupe/errors.hpp, all derived from troupe::exception.
//
// Thread-safety: every member function may be called from any number of
// threads at once, except where a comment says otherwise. One background
// thread owns the ZeroMQ socket; it also runs the callbacks given to
// ask_raw(), which therefore must neither block nor throw, and it completes
// the futures of ask().
//
// What fails to compile: a pointer as R or as an argument (except a C
// string, sent as str), and a type msgpack-c cannot convert; a static_assert
// says what to do instead.
#pragma once

#include "troupe/value_buffer.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "troupe/conversion.hpp"
#include "troupe/curve.hpp"
#include "troupe/endpoint.hpp"  // default_broker_endpoint()
#include "troupe/errors.hpp"
#include "troupe/protocol.hpp"

namespace troupe {

// Options of a client; plain values.
struct client_options {
  std::chrono::milliseconds timeout{30000};  // default per-call timeout
  protocol::limits limits;                   // bounds for decoding reply values
  // CURVE: this client's secret certificate and the broker's public one
  // (docs/security.md). By default $TROUPE_CURVE_SECRET and
  // $TROUPE_BROKER_KEY; both empty: plaintext.
  curve::client_keys curve = curve::client_keys::from_environment();
};

// Options of one ask; plain values.
struct call_options {
  std::chrono::milliseconds timeout{0};  // 0: the client's default
  // Durable (docs/durability.md): the broker stores the ask before running
  // it, runs it at least once, and records its result under `id`; the
  // client re-sends it under the same id after a reconnect.
  bool durable = false;
  std::string id{};  // durable: the message id (1..128 bytes of UTF-8); empty: a fresh random one
  // The call chain, encoded (protocol::encode_chain): set by a worker for
  // an ask made from inside a method (docs/protocol.md, "Call chains").
  std::string chain{};
};

// Options of one durable tell; plain values.
struct tell_options {
  std::chrono::milliseconds timeout{0};  // how long to wait for the confirmation; 0: the client's default
  std::string id{};                      // the message id (1..128 bytes of UTF-8); empty: a fresh random one
  std::chrono::milliseconds delay{0};    // not delivered before this long after the broker stored it
};

// Options of one map; plain values.
struct map_options {
  std::chrono::milliseconds timeout{0};  // per call; 0: the client's default
  std::size_t window = 64;               // calls in flight at most; 0 counts as 1
};

// A raw reply: `value` is the msgpack result, or a msgpack string with the
// error message when code != ok. A plain value.
struct raw_reply {
  protocol::status code = protocol::status::ok;
  std::string value;
};

namespace detail {

// A successful reply's value as R. Throws result_type_error saying what
// arrived and what was asked for: "the result is str, expected int".
template <class R>
R result_as(const msgpack::object& value) {
  try {
    return value.as<R>();
  } catch (const msgpack::type_error&) {
    throw result_type_error(result_mismatch_message<R>(value));
  } catch (const std::bad_cast&) {
    throw result_type_error(result_mismatch_message<R>(value));
  }
}

// Checks a call's types at compile time (see conversion.hpp): false after
// troupe's static_assert has said what cannot cross and why. The calls
// compile nothing else then, so msgpack-c's template errors do not follow.
template <class R, class... A>
constexpr bool call_types_cross() {
  bool result_crosses = true;
  if constexpr (!std::is_void_v<R>)
    result_crosses = check_crossing<std::remove_cvref_t<R>, crossing::call_result>::value;
  return (check_crossing<std::remove_cvref_t<A>, crossing::call_argument>::value && ... && result_crosses);
}

}  // namespace detail

class client {
 public:
  using callback = std::function<void(raw_reply&&)>;

  // Starts the client's I/O thread and connects to `endpoint` in the
  // background: no broker needs to be up yet. Throws zmq::error_t for an
  // endpoint ZeroMQ cannot parse, curve::key_error for CURVE key files that
  // cannot be used, std::runtime_error (or std::system_error) when the
  // thread or its wake-up descriptor cannot be created.
  //
  // When no broker answers, or the broker refuses this client's key, every
  // ask still ends within its timeout, with deadline_exceeded and a message
  // that says which: "no broker answering at ENDPOINT", or
  // "authentication failed: ..." (at once once the broker has refused).
  explicit client(std::string endpoint, client_options options = {});
  // Fails whatever is still pending with deadline_exceeded ("the client was
  // closed") and joins the I/O thread. Not from a callback or a future's
  // continuation running on that thread; not while another thread still
  // uses the client.
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Low level: `args` is an encoded msgpack array (see pack_args). `done`
  // runs exactly once, on the client's thread: with the reply, or
  // deadline_exceeded if no reply came within `timeout` (0: the client's
  // default), the broker being down included. `done` must not block or
  // throw. Returns at once; throws only std::bad_alloc.
  void ask_raw(std::string_view address, std::string_view method, std::string args,
               std::chrono::milliseconds timeout, callback done);
  // The same with every call option (durable asks: opts.durable).
  void ask_raw(std::string_view address, std::string_view method, std::string args, const call_options& opts,
               callback done);
  // A durable tell: `done` runs once, on the client's thread, with `ok`
  // once the broker has stored it on disk (fsync'd), or with the error
  // (`store_unavailable`: the broker has no writable store), or with
  // deadline_exceeded when no confirmation came within the timeout.
  // Unconfirmed, it is re-sent under its id after a reconnect, and the
  // broker stores it once. Returns at once; throws only std::bad_alloc.
  void tell_durable_raw(std::string_view address, std::string_view method, std::string args,
                        const tell_options& opts, callback done);
  // One-way: no reply, no confirmation of delivery. Returns at once; throws
  // only std::bad_alloc.
  void tell_raw(std::string_view address, std::string_view method, std::string args);

  // Calls `method` of the actor at `address` with `args`. Returns at once a
  // future whose get() returns the result as R (nothing for R = void) or
  // throws troupe::error (an error reply, or deadline_exceeded: every ask
  // ends) or troupe::result_type_error (the result does not convert to R).
  // ask itself throws only std::bad_alloc.
  template <class R, class... A>
  std::future<R> ask(std::string_view address, std::string_view method, const A&... args) {
    return ask<R>(call_options{}, address, method, args...);
  }

  // The same with options first: ask<R>(call_options{500ms}, address, method, args...).
  template <class R, class... A>
  std::future<R> ask(call_options opts, std::string_view address, std::string_view method, const A&... args) {
    if constexpr (!detail::call_types_cross<R, A...>()) {
      return {};
    } else {
      auto promise = std::make_shared<std::promise<R>>();
      auto future = promise->get_future();
      ask_raw(address, method, pack_args(args...), opts, [promise, this](raw_reply&& reply) {
        try {
          if constexpr (std::is_void_v<R>) {
            check(reply);
            promise->set_value();
          } else {
            promise->set_value(decode<R>(reply));
          }
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      });
      return future;
    }
  }

  // One-way call: returns at once, throws only std::bad_alloc; nothing
  // says whether it ran.
  template <class... A>
  void tell(std::string_view address, std::string_view method, const A&... args) {
    if constexpr (detail::call_types_cross<void, A...>()) tell_raw(address, method, pack_args(args...));
  }

  // A durable tell (docs/durability.md). Returns at once a future whose
  // get() returns once the broker has stored the message on disk, or throws
  // troupe::error (`store_unavailable`, `deadline_exceeded`: no
  // confirmation within the timeout, ...). From the confirmation on, the
  // message runs at least once, whatever happens to the broker or its
  // worker. Throws only std::bad_alloc itself.
  template <class... A>
  std::future<void> tell(tell_options opts, std::string_view address, std::string_view method,
                         const A&... args) {
    if constexpr (!detail::call_types_cross<void, A...>()) {
      return {};
    } else {
      auto promise = std::make_shared<std::promise<void>>();
      auto future = promise->get_future();
      tell_durable_raw(address, method, pack_args(args...), opts, [promise, this](raw_reply&& reply) {
        try {
          check(reply);
          promise->set_value();
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      });
      return future;
    }
  }

  // Applies `method` to every element of `inputs` (one argument, or a
  // std::tuple of arguments), at most `window` calls in flight, and returns
  // the results in input order. Blocks until every call it started has
  // ended; its cost is linear in the number of inputs. On the first error
  // reply no new call is started, and once the calls in flight have ended
  // the error of the lowest failing index is thrown as troupe::error; a
  // result that does not convert to R throws troupe::result_type_error.
  // Not from a callback (it would wait for the thread it blocks).
  template <class R, class In>
  std::vector<R> map(map_options opts, std::string_view address, std::string_view method,
                     const std::vector<In>& inputs);
  // The same with map_options{} (window 64, the client's timeout).
  template <class R, class In>
  std::vector<R> map(std::string_view address, std::string_view method, const std::vector<In>& inputs) {
    return map<R>(map_options{}, address, method, inputs);
  }

  // Encodes arguments as the msgpack array a REQUEST carries. Static and
  // thread-safe; throws only std::bad_alloc.
  template <class... A>
  static std::string pack_args(const A&... args) {
    troupe::value_buffer buf;
    msgpack::packer<troupe::value_buffer> pk(buf);
    pk.pack_array(sizeof...(A));
    (pk.pack(args), ...);
    return std::string(buf.data(), buf.size());
  }

  // The endpoint given to the constructor.
  const std::string& endpoint() const noexcept { return endpoint_; }

  // What the client knows of its connection to the broker.
  enum class link_state {
    connecting,  // no connection yet, and no attempt has failed
    refused,     // attempts to connect failed: nothing listens at the endpoint
    connected,   // connected, handshake done
    rejected,    // connected, but the broker refused the handshake (a security mismatch)
  };
  // Waits until the connection is up, at most `timeout`, and returns the
  // state then: `connected`, or why not yet. Requests need not wait for
  // this (they are queued until the connection is up); it lets a program
  // such as the CLI say "no broker at EP" at once instead of waiting for a
  // timeout. Thread-safe; not from the client's own thread (a callback).
  link_state wait_connected(std::chrono::milliseconds timeout) const;

 private:
  template <class T>
  static std::string pack_input(const T& input) {
    if constexpr (is_tuple<T>::value) {
      return std::apply([](const auto&... a) { return pack_args(a...); }, input);
    } else {
      return pack_args(input);
    }
  }
  template <class T>
  struct is_tuple : std::false_type {};
  template <class... T>
  struct is_tuple<std::tuple<T...>> : std::true_type {};

  template <class R, class In>
  std::vector<R> map_checked(const map_options& opts, std::string_view address, std::string_view method,
                             const std::vector<In>& inputs);
  // Throws troupe::error for an error reply.
  void check(const raw_reply& reply) const;
  template <class R>
  R decode(const raw_reply& reply) const {
    check(reply);
    msgpack::object_handle oh = unpack(reply.value);
    return detail::result_as<R>(oh.get());
  }
  // Throws result_type_error for bytes that are not msgpack within limits.
  msgpack::object_handle unpack(const std::string& bytes) const;

  struct impl;
  std::string endpoint_;
  client_options options_;
  std::unique_ptr<impl> impl_;
};

template <class R, class In>
std::vector<R> client::map(map_options opts, std::string_view address, std::string_view method,
                           const std::vector<In>& inputs) {
  if constexpr (!detail::call_types_cross<R, In>()) {
    return {};
  } else {
    return map_checked<R>(opts, address, method, inputs);
  }
}

template <class R, class In>
std::vector<R> client::map_checked(const map_options& opts, std::string_view address, std::string_view method,
                                   const std::vector<In>& inputs) {
  struct shared_state {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t in_flight = 0;
    // Kept up to date by the callbacks, so that deciding whether to go on
    // costs O(1) per call rather than a scan of every reply so far.
    std::size_t first_failure = std::numeric_limits<std::size_t>::max();  // none yet
    std::vector<std::optional<raw_reply>> replies;
  };
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  auto st = std::make_shared<shared_state>();
  st->replies.resize(inputs.size());
  const std::size_t window = std::max<std::size_t>(opts.window, 1);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    {
      std::unique_lock lock(st->mu);
      st->cv.wait(lock, [&] { return st->in_flight < window || st->first_failure != none; });
      if (st->first_failure != none) break;
      ++st->in_flight;
    }
    ask_raw(address, method, pack_input(inputs[i]), opts.timeout, [st, i](raw_reply&& reply) {
      std::lock_guard lock(st->mu);
      if (reply.code != protocol::status::ok && i < st->first_failure) st->first_failure = i;
      st->replies[i] = std::move(reply);
      --st->in_flight;
      st->cv.notify_one();  // the one waiter is the thread in map
    });
  }
  std::unique_lock lock(st->mu);
  st->cv.wait(lock, [&] { return st->in_flight == 0; });
  lock.unlock();  // every callback has run: the replies are ours alone now
  if (st->first_failure != none) check(*st->replies[st->first_failure]);  // throws
  std::vector<R> out;
  out.reserve(inputs.size());
  for (auto& r : st->replies) out.push_back(decode<R>(*r));
  return out;
}

}  // namespace troupe
