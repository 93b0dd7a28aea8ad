// Calling actors from C++.
//
//   troupe::client c("tcp://127.0.0.1:5555");
//   int y = c.ask<int>("squares", "square", 7).get();        // 49
//   c.tell("counter/alice", "add", 5);                         // one-way
//   auto ys = c.map<int>("squares", "square", std::vector{1, 2, 3});
//
// Thread-safety: every member function may be called from any number of
// threads at once. One background thread owns the ZeroMQ socket; it also
// runs the callbacks given to ask_raw(), which therefore must not block.
// Futures are completed from that thread.
#pragma once

#include "troupe/value_buffer.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "troupe/protocol.hpp"

namespace troupe {

// An error reply: code() is the protocol's error code.
class error : public std::runtime_error {
 public:
  error(protocol::status code, const std::string& message)
      : std::runtime_error(std::string(protocol::to_string(code)) + ": " + message),
        code_(code),
        message_(message) {}
  protocol::status code() const { return code_; }
  std::string_view code_name() const { return protocol::to_string(code_); }
  const std::string& message() const { return message_; }

 private:
  protocol::status code_;
  std::string message_;
};

// The result arrived but cannot be converted to the type the caller asked for.
class result_type_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct client_options {
  std::chrono::milliseconds timeout{30000};  // default per-call timeout
  protocol::limits limits;
};

struct call_options {
  std::chrono::milliseconds timeout{0};  // 0: the client's default
};

// A raw reply: `value` is the msgpack result, or a msgpack string with the
// error message when code != ok.
struct raw_reply {
  protocol::status code = protocol::status::ok;
  std::string value;
};

class client {
 public:
  using callback = std::function<void(raw_reply&&)>;

  explicit client(std::string endpoint, client_options options = {});
  ~client();  // fails whatever is still pending with deadline_exceeded
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Low level: `args` is an encoded msgpack array. `done` runs exactly once,
  // on the client's thread: with the reply, or deadline_exceeded if no reply
  // came within the timeout (the broker being down included).
  void ask_raw(std::string_view address, std::string_view method, std::string args,
               std::chrono::milliseconds timeout, callback done);
  void tell_raw(std::string_view address, std::string_view method, std::string args);

  template <class R, class... A>
  std::future<R> ask(std::string_view address, std::string_view method, const A&... args) {
    return ask<R>(call_options{}, address, method, args...);
  }

  template <class R, class... A>
  std::future<R> ask(call_options opts, std::string_view address, std::string_view method, const A&... args) {
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    ask_raw(address, method, pack_args(args...), opts.timeout, [promise, this](raw_reply&& reply) {
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

  template <class... A>
  void tell(std::string_view address, std::string_view method, const A&... args) {
    tell_raw(address, method, pack_args(args...));
  }

  // Applies `method` to every element of `inputs`, at most `window` calls in
  // flight, and returns the results in input order. An element is one
  // argument, or a std::tuple of arguments. On the first error no new call
  // is started; the error of the lowest failing index is thrown once the
  // calls in flight have ended.
  template <class R, class In>
  std::vector<R> map(std::string_view address, std::string_view method, const std::vector<In>& inputs,
                     std::size_t window = 64, call_options opts = {});

  // Encodes arguments as the msgpack array a REQUEST carries.
  template <class... A>
  static std::string pack_args(const A&... args) {
    troupe::value_buffer buf;
    msgpack::packer<troupe::value_buffer> pk(buf);
    pk.pack_array(sizeof...(A));
    (pk.pack(args), ...);
    return std::string(buf.data(), buf.size());
  }

  const std::string& endpoint() const { return endpoint_; }

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

  void check(const raw_reply& reply) const;
  template <class R>
  R decode(const raw_reply& reply) const {
    check(reply);
    msgpack::object_handle oh = unpack(reply.value);
    try {
      return oh.get().as<R>();
    } catch (const std::exception& e) {
      throw result_type_error(std::string("the result cannot be converted to the requested type: ") +
                              e.what());
    }
  }
  msgpack::object_handle unpack(const std::string& bytes) const;

  struct impl;
  std::string endpoint_;
  client_options options_;
  std::unique_ptr<impl> impl_;
};

template <class R, class In>
std::vector<R> client::map(std::string_view address, std::string_view method, const std::vector<In>& inputs,
                           std::size_t window, call_options opts) {
  struct shared_state {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t in_flight = 0;
    std::vector<std::optional<raw_reply>> replies;
  };
  auto st = std::make_shared<shared_state>();
  st->replies.resize(inputs.size());
  window = std::max<std::size_t>(window, 1);
  bool failed = false;
  for (std::size_t i = 0; i < inputs.size() && !failed; ++i) {
    {
      std::unique_lock lock(st->mu);
      st->cv.wait(lock, [&] { return st->in_flight < window; });
      for (const auto& r : st->replies)
        if (r && r->code != protocol::status::ok) failed = true;
      if (failed) break;
      ++st->in_flight;
    }
    ask_raw(address, method, pack_input(inputs[i]), opts.timeout, [st, i](raw_reply&& reply) {
      std::lock_guard lock(st->mu);
      st->replies[i] = std::move(reply);
      --st->in_flight;
      st->cv.notify_all();
    });
  }
  std::unique_lock lock(st->mu);
  st->cv.wait(lock, [&] { return st->in_flight == 0; });
  std::vector<R> out;
  out.reserve(inputs.size());
  for (auto& r : st->replies) {
    if (!r) break;  // not started because an earlier call failed
    check(*r);
  }
  for (auto& r : st->replies) out.push_back(decode<R>(*r));
  return out;
}

}  // namespace troupe
