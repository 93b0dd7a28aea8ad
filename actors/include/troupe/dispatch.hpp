// The worker's message handler, independent of sockets: it owns the live
// instances of one worker process, builds each lazily on its first message,
// calls methods by name, and destroys every instance exactly once.
//
// Thread-safety: none. One dispatcher belongs to the one thread that runs
// user code (an instance handles one message at a time, by design).
#pragma once

#include "troupe/value_buffer.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/flat_string_map.hpp"
#include "troupe/protocol.hpp"
#include "troupe/registry.hpp"

namespace troupe {

// Told when user code starts and ends (a constructor and the method it
// serves, or a destructor run by passivation), so that a call running past
// its time limit can be seen from another thread or process. Called on the
// dispatcher's thread; implementations must not throw.
class call_watch {
 public:
  virtual ~call_watch() = default;
  // `limit`: the method's time limit, else its actor type's; 0 when neither
  // sets one (the worker's default applies).
  virtual void begin(std::chrono::milliseconds limit) noexcept = 0;
  virtual void end() noexcept = 0;
};

// When keyed instances are passivated (destroyed to free memory; the next
// message for the key builds a fresh one). Plain values.
struct passivation_settings {
  std::size_t max_instances = 0;  // live keyed instances at most, least recently used go first; 0: no cap
  std::chrono::milliseconds idle_timeout{0};  // for types that set none (troupe::idle_timeout); 0: none
};

// The message a method runs for, as its context's calls need it.
struct message_info {
  std::uint64_t request_id = 0;  // the broker's id
  std::string_view chain;        // the REQUEST's call chain, encoded; empty: none
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

class dispatcher {
 public:
  // `types` must outlive the dispatcher. Does not throw.
  explicit dispatcher(const registry& types, protocol::limits limits = {});
  ~dispatcher();  // destroys what is still live (destroy_all)
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Handles one request: `args` is the msgpack array of the REQUEST's args
  // frame; it must stay valid during the call (strings in it are not
  // copied). Returns ok and the msgpack result in `out`, or an error code
  // and a msgpack string saying why in `out`: bad_request, unknown_actor,
  // unknown_method, bad_args (the method is not called; args that are not
  // msgpack within limits build no instance either), actor_error (the
  // constructor or the method threw, or the result is over the size limit).
  // Exceptions from user code become actor_error; handle itself throws only
  // std::bad_alloc.
  //
  // `message` (optional) is what the instance's context passes on to the
  // calls it makes. A coroutine method (troupe::task) is, with `started`,
  // only started: handle returns ok with `started->handle` set, and the
  // caller resumes it and calls finish() once its promise's on_done ran;
  // its instance is `awaiting` until then. Without `started` it is run
  // here, and must not suspend (outside a worker its asks fail at once).
  // An exception from user code that is a troupe::error (a failed ask it
  // did not catch) is answered with that error's code and message.
  protocol::status handle(std::string_view address, std::string_view method, const void* args,
                          std::size_t args_size, troupe::value_buffer& out,
                          const message_info* message = nullptr, detail::started_task* started = nullptr);
  // The outcome of a started coroutine method that has ended: its value, or
  // the code of its exception, packed into `out`. Destroys the coroutine and
  // ends its instance's `awaiting`. Throws only std::bad_alloc.
  protocol::status finish(std::string_view address, detail::started_task& started, troupe::value_buffer& out);
  // Whether the instance of `address` is awaiting (non-reentrant: its next
  // message waits). Does not throw.
  bool awaiting(std::string_view address) const noexcept;
  // Where instances' calls go from now on (instances built later too).
  void set_call_site(detail::call_site* site) noexcept { site_ = site; }

  // Destroys every live instance, newest first, each exactly once; an
  // exception from a destructor is swallowed so the others still run.
  // Calling it again does nothing.
  void destroy_all();
  // The number of instances built and not yet destroyed. Does not throw.
  std::size_t live_instances() const noexcept { return instances_.size(); }

  // `watch` (or nullptr) hears of every run of user code from now on; it
  // must outlive the dispatcher or be replaced. Does not throw.
  void set_call_watch(call_watch* watch) noexcept { watch_ = watch; }
  // Turns passivation of keyed instances on (or changes it). Applies to
  // instances built before too. Throws only std::bad_alloc.
  void set_passivation(const passivation_settings& settings);
  // Destroys, each exactly once, the keyed instances idle longer than their
  // type's idle timeout (troupe::idle_timeout, else the settings'); their
  // addresses join released(). Returns how many. A throwing destructor is
  // swallowed. O(instances destroyed).
  std::size_t passivate_idle(std::chrono::steady_clock::time_point now);
  // The addresses of keyed instances passivated (by passivate_idle or the
  // cap) since the caller last cleared it: for the broker (RELEASE).
  std::vector<std::string>& released() noexcept;
  // Live keyed instances. Does not throw.
  std::size_t live_keyed() const noexcept;

  // One activation per key (docs/protocol.md, "One activation per key"):
  // whether an instance of `address` is live; the addresses of the live
  // keyed instances (for READY `keys`; O(instances)); and destroying the
  // instance of `address` exactly once because another worker holds the
  // key (RELEASE from the broker). drop returns false when none was live;
  // a throwing destructor is swallowed. Throw only std::bad_alloc.
  bool has_instance(std::string_view address) const noexcept;
  std::vector<std::string> keyed_addresses() const;
  bool drop(std::string_view address);

 private:
  using live_instance = std::unique_ptr<detail::instance_base>;
  struct passivation;  // actors/passivation.cpp
  friend struct passivation;

  live_instance* activate(const detail::actor_type_info& type, std::string_view address,
                          const protocol::address_parts& parts, troupe::value_buffer& out,
                          protocol::status& code);

  const registry& types_;
  protocol::limits limits_;
  flat_string_map<live_instance> instances_;  // by address
  std::uint64_t constructed_ = 0;
  msgpack::zone zone_;  // reused for decoding arguments
  call_watch* watch_ = nullptr;
  detail::call_site* site_ = nullptr;
  std::unique_ptr<passivation> passivation_;  // null: off
};

}  // namespace troupe
