// Test support: a real broker and real worker executables on an ipc://
// endpoint in a temp dir, plus a client, for integration tests.
#pragma once

#include <memory>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "process.hpp"
#include "troupe/client.hpp"

namespace troupe::test {

class cluster {
 public:
  // `broker_args` are extra flags for `troupe broker`.
  explicit cluster(std::vector<std::string> broker_args = {});
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

  // Runs `troupe ARGS...` with --broker inserted after the subcommand.
  command_result troupe_cli(std::vector<std::string> args);

 private:
  temp_dir dir_;
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
