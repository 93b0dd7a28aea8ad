#include "cluster.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <stdexcept>

namespace troupe::test {

msgpack::object_handle decode(const std::string& bytes) {
  return msgpack::unpack(bytes.data(), bytes.size());
}

cluster::cluster(std::vector<std::string> broker_args)
    : endpoint_(dir_.ipc("broker.sock")), broker_args_(std::move(broker_args)) {
  start_broker();
  client_options options;
  options.timeout = std::chrono::milliseconds(10000);
  client_ = std::make_unique<troupe::client>(endpoint_, options);
}

cluster::~cluster() {
  client_.reset();
  if (!::testing::Test::HasFailure()) return;
  auto dump = [](const char* what, process& p) {
    p.stop();
    std::fprintf(stderr, "---- %s (pid %d) stderr ----\n%s", what, static_cast<int>(p.pid()),
                 p.err().c_str());
  };
  if (broker_) dump("broker", *broker_);
  for (auto& w : workers_) dump("worker", *w);
}

void cluster::start_broker() {
  std::vector<std::string> argv = {bin("troupe"), "broker", "--listen", endpoint_};
  argv.insert(argv.end(), broker_args_.begin(), broker_args_.end());
  broker_ = std::make_unique<process>(argv, dir_.path(), "broker-" + std::to_string(started_++));
  if (broker_->wait_for_line("troupe broker listening on ", std::chrono::seconds(10)).empty())
    throw std::runtime_error("broker did not start: " + broker_->err());
}

process& cluster::start_worker(std::vector<std::string> args, const std::string& exe) {
  std::vector<std::string> argv = {bin(exe), "--broker", endpoint_};
  argv.insert(argv.end(), args.begin(), args.end());
  workers_.push_back(
      std::make_unique<process>(argv, dir_.path(), "worker-" + std::to_string(workers_.size())));
  return *workers_.back();
}

msgpack::object_handle cluster::management(const std::string& method) {
  auto reply = std::make_shared<std::promise<raw_reply>>();
  auto future = reply->get_future();
  client_->ask_raw("$broker", method, client::pack_args(), std::chrono::milliseconds(2000),
                   [reply](raw_reply&& r) { reply->set_value(std::move(r)); });
  auto r = future.get();
  if (r.code != protocol::status::ok) throw std::runtime_error("$broker " + method + " failed");
  return decode(r.value);
}

std::uint64_t cluster::stat(const std::string& key) {
  auto h = management("stats");
  auto m = h.get().as<std::map<std::string, msgpack::object>>();
  return m.at(key).as<std::uint64_t>();
}

bool cluster::wait_for_workers(std::size_t n, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        try {
          return stat("workers") == n;
        } catch (const std::exception&) {
          return false;
        }
      },
      timeout);
}

command_result cluster::troupe_cli(std::vector<std::string> args) {
  std::vector<std::string> argv = {bin("troupe")};
  if (!args.empty()) {
    argv.push_back(args[0]);
    argv.push_back("--broker");
    argv.push_back(endpoint_);
    argv.insert(argv.end(), args.begin() + 1, args.end());
  }
  return run(argv);
}

}  // namespace troupe::test
