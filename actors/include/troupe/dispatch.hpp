// The worker's message handler, independent of sockets: it owns the live
// instances of one worker process, builds each lazily on its first message,
// calls methods by name, and destroys every instance exactly once.
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
  explicit dispatcher(const registry& types, protocol::limits limits = {});
  ~dispatcher();  // destroys what is still live
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  // Handles one request; `out` receives the msgpack result, or a msgpack
  // string with the error message when the status is not ok.
  protocol::status handle(std::string_view address, std::string_view method, const void* args,
                          std::size_t args_size, troupe::value_buffer& out);

  // Destroys every live instance, newest first, each exactly once.
  void destroy_all();
  std::size_t live_instances() const { return instances_.size(); }

 private:
  using live_instance = std::unique_ptr<detail::instance_base>;

  const registry& types_;
  protocol::limits limits_;
  flat_string_map<live_instance> instances_;  // by address
  std::uint64_t constructed_ = 0;
  msgpack::zone zone_;  // reused for decoding arguments
};

}  // namespace troupe
