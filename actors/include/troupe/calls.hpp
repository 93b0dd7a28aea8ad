// Calling other actors from inside a method (docs/concepts.md, "Calling
// other actors"): what context::ask returns, and the coroutine type of
// methods that await it.
//
//   troupe::task<int> forward(std::string address, std::string method, int x) {
//     co_return co_await ctx_.ask<int>(address, method, x);
//   }
//
// A method returning troupe::task<R> is a C++20 coroutine: while it awaits
// an ask, its worker process serves other instances; its own instance takes
// no other message until the method returns (it stays non-reentrant). A
// plain method may block on ask(...).get() instead, which holds its whole
// worker process until the reply comes.
//
// Thread-safety: a task belongs to the worker's thread that runs user code.
// A pending reply is completed from the worker's caller thread; get() and
// co_await may be used from the user-code thread only, once.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "troupe/client.hpp"

namespace troupe {

// One msgpack value of any type, kept as its encoded bytes: for a method
// that passes values on without knowing their types (a coroutine method
// cannot keep a msgpack::object, whose memory is reused by the next message).
// An empty one packs as nil. A plain value.
struct raw_value {
  std::string bytes;
  bool is_array() const noexcept {
    if (bytes.empty()) return false;
    const auto b = static_cast<unsigned char>(bytes[0]);
    return (b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd;
  }
};

}  // namespace troupe

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <>
  struct convert<troupe::raw_value> {
    const msgpack::object& operator()(const msgpack::object& o, troupe::raw_value& v) const {
      troupe::value_buffer buf;
      msgpack::packer<troupe::value_buffer> pk(buf);
      pk.pack(o);
      v.bytes.assign(buf.data(), buf.size());
      return o;
    }
  };
  template <>
  struct pack<troupe::raw_value> {
    template <class Stream>
    msgpack::packer<Stream>& operator()(msgpack::packer<Stream>& pk, const troupe::raw_value& v) const {
      if (v.bytes.empty()) return pk.pack_nil();
      const auto h = msgpack::unpack(v.bytes.data(), v.bytes.size());
      return pk.pack(h.get());
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack

namespace troupe {

namespace detail {

// How a worker sends the calls its methods make, and runs the coroutines
// waiting for them again. Implemented by the worker runtime.
class call_site {
 public:
  virtual ~call_site() = default;
  // One-way, carrying no chain (a tell waits for nothing, so it closes no cycle).
  virtual void tell(std::string_view address, std::string_view method, std::string args) = 0;
  // `done` runs once, on another thread, with the reply.
  virtual void ask(std::string_view address, std::string_view method, std::string args,
                   const call_options& opts, client::callback done) = 0;
  // Resumes `h` soon on the thread that runs user code. Thread-safe.
  virtual void resume_later(std::coroutine_handle<> h) = 0;
};

// The reply to one ask made from inside a method, shared by the caller
// thread (which completes it) and the user-code thread (which reads it).
struct reply_state {
  std::mutex mu;
  std::condition_variable arrived;
  bool done = false;
  raw_reply reply;
  std::coroutine_handle<> waiter;  // a coroutine suspended on it
  call_site* site = nullptr;

  void complete(raw_reply&& r) {
    std::coroutine_handle<> resume;
    {
      std::lock_guard lock(mu);
      if (done) return;
      reply = std::move(r);
      done = true;
      resume = waiter;
    }
    arrived.notify_all();
    if (resume && site) site->resume_later(resume);
  }
};

// An error reply as troupe::error; the value of an ok one as R.
template <class R>
R reply_value(const raw_reply& reply) {
  auto message_of = [&] {
    std::string text;
    try {
      msgpack::unpack(reply.value.data(), reply.value.size()).get().convert(text);
    } catch (const std::exception&) {
      text = "(no readable message)";
    }
    return text;
  };
  if (reply.code != protocol::status::ok) throw error(reply.code, message_of());
  if constexpr (std::is_void_v<R>) {
    return;
  } else {
    msgpack::object_handle h;
    try {
      h = msgpack::unpack(reply.value.data(), reply.value.size());
    } catch (const std::exception& e) {
      throw result_type_error(std::string("the result is not valid msgpack: ") + e.what());
    }
    return result_as<R>(h.get());
  }
}

// What every task's promise has, for the worker: the coroutine awaiting it
// (a task awaited by another task), the exception it ended with, and for a
// method's own task what to do when it ends.
struct task_promise_base {
  std::coroutine_handle<> continuation;
  std::exception_ptr error;
  std::function<void()> on_done;
  virtual ~task_promise_base() = default;
  // Packs the value it returned (nil for task<void>); only when no error.
  virtual void pack_result(msgpack::packer<value_buffer>& pk) = 0;

  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto& p = h.promise();
      if (p.continuation) return p.continuation;
      if (p.on_done) p.on_done();
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };
};

template <class R>
struct task_promise : task_promise_base {
  std::optional<R> value;
  template <class V>
  void return_value(V&& v) {
    value.emplace(std::forward<V>(v));
  }
  void pack_result(msgpack::packer<value_buffer>& pk) override { pk.pack(*value); }
};

template <>
struct task_promise<void> : task_promise_base {
  void return_void() noexcept {}
  void pack_result(msgpack::packer<value_buffer>& pk) override { pk.pack_nil(); }
};

}  // namespace detail

// The result of a method that is a coroutine. It starts when the worker
// runs it (or when another task awaits it), not when it is created. Move-only.
template <class R = void>
class [[nodiscard]] task {
 public:
  struct promise_type : detail::task_promise<R> {
    task get_return_object() noexcept {
      return task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    detail::task_promise_base::final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { this->error = std::current_exception(); }
  };

  task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  // co_await of a task from another task: runs it, and resumes the awaiting
  // one with its value (or its exception) when it ends.
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    return h_;
  }
  R await_resume() {
    auto& p = h_.promise();
    if (p.error) std::rethrow_exception(p.error);
    if constexpr (!std::is_void_v<R>) return std::move(*p.value);
  }

  // For the worker: the coroutine, which the caller now owns (and destroys).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

 private:
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

// The reply to an ask made from inside a method: co_await it in a
// troupe::task method (the worker serves other instances meanwhile), or
// get() it in a plain method (the worker process waits). Either gives R or
// throws troupe::error (an error reply; deadline_exceeded when the method's
// own deadline passes first) or troupe::result_type_error. Once only. Move-only.
template <class R>
class [[nodiscard]] pending {
 public:
  explicit pending(std::shared_ptr<detail::reply_state> state) noexcept : state_(std::move(state)) {}

  // Blocks the worker process until the reply comes.
  R get() {
    std::unique_lock lock(state_->mu);
    state_->arrived.wait(lock, [&] { return state_->done; });
    lock.unlock();
    return detail::reply_value<R>(state_->reply);
  }

  bool await_ready() const noexcept {
    std::lock_guard lock(state_->mu);
    return state_->done;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    std::lock_guard lock(state_->mu);
    if (state_->done) return false;  // it came meanwhile: go on at once
    state_->waiter = h;
    return true;
  }
  R await_resume() { return detail::reply_value<R>(state_->reply); }

 private:
  std::shared_ptr<detail::reply_state> state_;
};

}  // namespace troupe
