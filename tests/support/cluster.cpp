#include "cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace troupe::test {

msgpack::object_handle decode(const std::string& bytes) {
  return msgpack::unpack(bytes.data(), bytes.size());
}

namespace {

bool curve_from_environment() {
  const char* v = std::getenv("TROUPE_TEST_CURVE");
  return v && std::string(v) == "1";
}

}  // namespace

cluster::cluster(std::vector<std::string> broker_args, std::optional<bool> curve)
    : curve_(curve.value_or(curve_from_environment())),
      endpoint_(dir_.ipc("broker.sock")),
      broker_args_(std::move(broker_args)) {
  if (curve_) {
    make_key("broker", {});
    make_key("worker", {"workers"});
    make_key("client", {"clients"});
    make_key("admin", {"admins"});
    make_key("any", {"workers", "clients", "admins"});  // for raw sockets that speak for every role
    const auto d = dir_.path().string();
    broker_args_.insert(broker_args_.begin(),
                        {"--curve-secret", secret_key("broker"), "--workers-keys", d + "/workers",
                         "--clients-keys", d + "/clients", "--admins-keys", d + "/admins"});
  }
  start_broker();
  client_ = std::make_unique<troupe::client>(endpoint_, options_for("admin"));
}

std::string cluster::secret_key(const std::string& name) const {
  return (dir_.path() / "keys" / (name + ".key_secret")).string();
}

std::string cluster::public_key(const std::string& name) const {
  return (dir_.path() / "keys" / (name + ".key")).string();
}

void cluster::make_key(const std::string& name, const std::vector<std::string>& roles) {
  curve::write_key_pair((dir_.path() / "keys").string(), name);
  for (const auto& role : roles) {
    std::filesystem::create_directories(dir_.path() / role);
    std::filesystem::copy_file(public_key(name), dir_.path() / role / (name + ".key"));
  }
}

std::vector<std::string> cluster::key_flags(const std::string& name) const {
  if (!curve_) return {};
  return {"--curve-secret", secret_key(name), "--broker-key", public_key("broker")};
}

client_options cluster::options_for(const std::string& name) const {
  client_options options;
  options.timeout = std::chrono::milliseconds(10000);
  options.curve = {};
  if (curve_) options.curve = {secret_key(name), public_key("broker")};
  return options;
}

void cluster::secure(zmq::socket_t& socket, const std::string& name) const {
  if (curve_) curve::configure_client(socket, curve::load(options_for(name).curve));
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
  // A test that gives a worker its own key keeps it.
  if (std::find(args.begin(), args.end(), "--curve-secret") == args.end()) {
    const auto keys = key_flags("worker");
    argv.insert(argv.end(), keys.begin(), keys.end());
  }
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
    if (std::find(args.begin(), args.end(), "--curve-secret") == args.end()) {
      const auto keys = key_flags("admin");
      argv.insert(argv.end(), keys.begin(), keys.end());
    }
    argv.insert(argv.end(), args.begin() + 1, args.end());
  }
  return run(argv);
}

}  // namespace troupe::test
