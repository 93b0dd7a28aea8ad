// The worker's message handler, independent of sockets: it owns the live
// instances of one worker process, builds each lazily on its first message,
// calls methods by name, and destroys every instance exactly once.
//
// Thread-safety: none. One dispatcher belongs to the one thread that runs
// user code (an instance handles one message at a time, by design).
#pragma once

#include "troupe/value_buffer.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "troupe/flat_string_map.hpp"
#include "troupe/protocol.hpp"
#include "troupe/registry.hpp"

namespace troupe {

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
  protocol::status handle(std::string_view address, std::string_view method, const void* args,
                          std::size_t args_size, troupe::value_buffer& out);

  // Destroys every live instance, newest first, each exactly once; an
  // exception from a destructor is swallowed so the others still run.
  // Calling it again does nothing.
  void destroy_all();
  // The number of instances built and not yet destroyed. Does not throw.
  std::size_t live_instances() const noexcept { return instances_.size(); }

 private:
  using live_instance = std::unique_ptr<detail::instance_base>;

  const registry& types_;
  protocol::limits limits_;
  flat_string_map<live_instance> instances_;  // by address
  std::uint64_t constructed_ = 0;
  msgpack::zone zone_;  // reused for decoding arguments
};

}  // namespace troupe
