// Test support: a real broker and real worker executables on an ipc://
// endpoint in a temp dir, plus a client, for integration tests.
#pragma once

#include <memory>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "process.hpp"
#include "troupe/client.hpp"

namespace troupe::test {

class cluster {
 public:
  // `broker_args` are extra flags for `troupe broker`. `curve`: whether the
  // cluster runs with CURVE (unset: when $TROUPE_TEST_CURVE is 1, so that
  // any suite can run both ways). With CURVE, keys `broker`, `worker`,
  // `client`, `admin` and `any` are made in dir()/keys, the public ones of
  // the others placed in dir()/workers, clients and admins (`any` in all
  // three); the broker, start_worker(), client() (with the admin key) and
  // troupe_cli() use them.
  explicit cluster(std::vector<std::string> broker_args = {}, std::optional<bool> curve = std::nullopt);
  // When the test has failed, prints the stderr of every process started,
  // so a CI log shows what the broker and workers said.
  ~cluster();

  const std::string& endpoint() const { return endpoint_; }
  const temp_dir& dir() const { return dir_; }
  troupe::client& client() { return *client_; }

  // Starts `troupe broker` (again, after stop_broker()) on the same endpoint.
  void start_broker();
  process& broker() { return *broker_; }
  void stop_broker() { broker_.reset(); }

  // Starts `troupe-examples-worker` (or `exe`) with `args` after --broker.
  process& start_worker(std::vector<std::string> args = {},
                        const std::string& exe = "troupe-examples-worker");

  // Waits (bounded) until the broker counts `n` live workers.
  bool wait_for_workers(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The broker's `$broker` `stats` (or another method) as a msgpack object.
  msgpack::object_handle management(const std::string& method);
  std::uint64_t stat(const std::string& key);

  // Runs `troupe ARGS...` with --broker inserted after the subcommand (and
  // the admin key's flags, with CURVE).
  command_result troupe_cli(std::vector<std::string> args);

  // ---- CURVE ----
  bool curve() const { return curve_; }
  // The key files of key `name`: dir()/keys/NAME.key_secret and NAME.key.
  std::string secret_key(const std::string& name) const;
  std::string public_key(const std::string& name) const;
  // Makes key `name` and puts its public key in the role directories
  // `roles` ("workers", "clients", "admins"; none: a key the broker does
  // not know). Throws curve::key_error.
  void make_key(const std::string& name, const std::vector<std::string>& roles);
  // The flags that give a worker or the CLI key `name` (none without CURVE).
  std::vector<std::string> key_flags(const std::string& name) const;
  // Options of a client holding key `name` (plaintext without CURVE).
  client_options options_for(const std::string& name) const;
  // Makes a raw socket a CURVE client with key `name` (nothing without CURVE).
  void secure(zmq::socket_t& socket, const std::string& name) const;

 private:
  temp_dir dir_;
  bool curve_ = false;
  std::string endpoint_;
  std::vector<std::string> broker_args_;
  std::unique_ptr<process> broker_;
  std::vector<std::unique_ptr<process>> workers_;
  std::unique_ptr<troupe::client> client_;
  int started_ = 0;
};

// Decodes a raw msgpack value, e.g. a reply's value.
msgpack::object_handle decode(const std::string& bytes);

}  // namespace troupe::test
