// CURVE with real processes (docs/security.md): who may connect, what each
// key's role lets it do, heartbeats only from the registering key, the
// name policy, clear errors for wrong keys, key rotation, and the secure
// defaults of a plaintext broker.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <zmq.hpp>

#include "../support/cluster.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using protocol::command;

std::string hdr(command c) {
  const auto h = protocol::header(c);
  return std::string(h.begin(), h.end());
}

std::string ready_info(const std::vector<std::string>& actors, std::uint64_t credits) {
  protocol::ready_info info;
  info.name = "impostor";
  info.pid = 1;
  info.credits = credits;
  info.actors = actors;
  std::string body;
  protocol::encode_ready(body, info);
  return body;
}

// A DEALER speaking the protocol by hand, with key `key` of cluster `c`
// (empty: no key at all), and optionally its own routing id.
class raw_peer {
 public:
  raw_peer(const cluster& c, const std::string& key, const std::string& routing_id = "") {
    socket_.set(zmq::sockopt::linger, 0);
    if (!routing_id.empty()) socket_.set(zmq::sockopt::routing_id, routing_id);
    if (!key.empty()) c.secure(socket_, key);
    socket_.connect(c.endpoint());
  }
  void send(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i)
      (void)socket_.send(zmq::buffer(frames[i]),
                         (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                             zmq::send_flags::dontwait);
  }
  // The commands of the messages that arrive within `wait`.
  std::vector<command> receive_for(std::chrono::milliseconds wait) {
    std::vector<command> got;
    const auto end = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < end) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, 20ms);
      zmq::message_t m;
      while (socket_.recv(m, zmq::recv_flags::dontwait)) {
        if (auto c = protocol::parse_header(m.data(), m.size())) got.push_back(*c);
        while (m.more()) (void)socket_.recv(m, zmq::recv_flags::none);
      }
    }
    return got;
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_{ctx_, zmq::socket_type::dealer};
};

// Asks `n` squares through the cluster's client; returns how many came back right.
int squares_answered(cluster& c, int n) {
  std::vector<std::future<long long>> replies;
  for (int i = 0; i < n; ++i) replies.push_back(c.client().ask<long long>("squares", "square", i));
  int right = 0;
  for (int i = 0; i < n; ++i) right += replies[static_cast<std::size_t>(i)].get() == 1LL * i * i;
  return right;
}

// The error message of one ask with `options`, or "ok".
std::string ask_error(const cluster& c, const client_options& options, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds* took = nullptr) {
  troupe::client cl(c.endpoint(), options);
  const auto start = std::chrono::steady_clock::now();
  try {
    cl.ask<long long>(call_options{timeout}, "squares", "square", 3).get();
    return "ok";
  } catch (const troupe::error& e) {
    if (took)
      *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return e.what();
  }
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Security, APeerWithNoKeyOrAnUnknownKeyGetsNotASingleRequest) {
  cluster c({}, true);
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  c.make_key("stranger", {});
  raw_peer plaintext(c, "");
  raw_peer stranger(c, "stranger");
  for (auto* p : {&plaintext, &stranger}) p->send({hdr(command::ready), ready_info({"squares"}, 100000)});
  EXPECT_EQ(squares_answered(c, 200), 200);
  EXPECT_TRUE(plaintext.receive_for(300ms).empty());
  EXPECT_TRUE(stranger.receive_for(10ms).empty());
  EXPECT_EQ(c.stat("workers"), 1u);
  EXPECT_GE(c.stat("refused_handshakes"), 1u);
}

TEST(Security, AClientKeyThatSendsReadyGetsNothingAndTheRealWorkersGetEveryRequest) {
  cluster c({}, true);
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  raw_peer impostor(c, "client");
  impostor.send({hdr(command::ready), ready_info({"squares", "payments"}, 100000)});
  ASSERT_TRUE(eventually([&] { return c.stat("refused") >= 1; }, 5s));
  EXPECT_EQ(squares_answered(c, 300), 300);
  EXPECT_TRUE(impostor.receive_for(200ms).empty()) << "no acknowledgement, no request, no DISCONNECT";
  EXPECT_EQ(c.stat("workers"), 1u);
  // Nor may it speak for the real worker.
  impostor.send({hdr(command::heartbeat)});
  impostor.send({hdr(command::disconnect)});
  EXPECT_TRUE(impostor.receive_for(200ms).empty());
  EXPECT_TRUE(eventually([&] { return c.stat("refused") >= 3; }, 5s));
  EXPECT_NE(c.broker().err().find("refused READY"), std::string::npos) << c.broker().err();
  EXPECT_NE(c.broker().err().find("from key 'client'"), std::string::npos) << c.broker().err();
}

TEST(Security, ASpoofedHeartbeatFromAnotherKeyDoesNotKeepADeadWorkerAlive) {
  cluster c({"--heartbeat-ms", "100", "--liveness", "3"}, true);
  c.make_key("other-pool", {"workers"});
  {
    // A worker with key `worker` registers, then its process dies.
    raw_peer victim(c, "worker", "victim-1");
    victim.send({hdr(command::ready), ready_info({"squares"}, 1)});
    const auto got = victim.receive_for(300ms);
    ASSERT_FALSE(got.empty());
    ASSERT_EQ(got.front(), command::ready) << "acknowledged";
  }
  // Another worker key beats on its behalf, well within the liveness window.
  raw_peer spoofer(c, "other-pool");
  std::vector<command> answers;
  for (int i = 0; i < 15; ++i) {
    spoofer.send({hdr(command::heartbeat), "victim-1"});
    const auto got = spoofer.receive_for(50ms);
    answers.insert(answers.end(), got.begin(), got.end());
  }
  EXPECT_EQ(c.stat("workers"), 0u) << "the spoofed heartbeats kept a dead worker registered";
  ASSERT_FALSE(answers.empty());
  for (const auto a : answers) EXPECT_EQ(a, command::disconnect) << "answered as for an unknown routing id";
  EXPECT_GE(c.stat("refused"), 1u);
}

TEST(Security, AWrongBrokerKeyAnUnknownKeyAndNoKeyAreClearErrors) {
  cluster c({}, true);
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  EXPECT_EQ(ask_error(c, c.options_for("client"), 2s), "ok");

  // The client holds the wrong broker key: the handshake fails.
  auto wrong_broker = c.options_for("client");
  wrong_broker.curve.broker_key_file = c.public_key("worker");
  std::chrono::milliseconds took{};
  auto e = ask_error(c, wrong_broker, 1500ms, &took);
  EXPECT_TRUE(contains(e, "authentication failed")) << e;
  EXPECT_LT(took, 3s);

  // A key the broker does not know: refused at once.
  c.make_key("stranger", {});
  e = ask_error(c, c.options_for("stranger"), 5s, &took);
  EXPECT_TRUE(contains(e, "authentication failed")) << e;
  EXPECT_TRUE(contains(e, "does not accept this key")) << e;
  EXPECT_LT(took, 3s) << "refused at once, not at the timeout";

  // No key at all.
  client_options plain;
  plain.curve = {};
  e = ask_error(c, plain, 1500ms, &took);
  EXPECT_TRUE(contains(e, "authentication failed")) << e;
  EXPECT_LT(took, 3s);

  // The command line says so too, and fails.
  auto r = c.troupe_cli({"call", "--timeout-ms", "1500", "--curve-secret", c.secret_key("stranger"),
                         "--broker-key", c.public_key("broker"), "squares", "square", "3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.err, "authentication failed")) << r.err;

  // A worker whose key the broker does not know says why it cannot register.
  auto& w = c.start_worker({"--curve-secret", c.secret_key("stranger"), "--broker-key",
                            c.public_key("broker"), "--heartbeat-ms", "100"});
  EXPECT_TRUE(eventually([&] { return contains(w.err(), "authentication failed"); }, 10s)) << w.err();
  EXPECT_EQ(c.stat("workers"), 1u);
}

TEST(Security, AWorkerKeyOutsideItsNamePolicyCannotRegisterThatName) {
  temp_dir policy_dir;
  const auto policy = (policy_dir.path() / "policy").string();
  std::ofstream(policy) << "# the examples pool and a greeter pool\n"
                           "worker worker  squares counter echo vectorize session report relay\n"
                           "worker greeter squares\n"
                           "client client  squares\n"
                           "client admin   *\n";
  cluster c({"--name-policy", policy}, true);
  c.make_key("greeter", {"workers"});
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  // readme-greeter-worker hosts `greeter`, which key `greeter` may not register.
  auto& g =
      c.start_worker({"--curve-secret", c.secret_key("greeter"), "--broker-key", c.public_key("broker")},
                     "readme-greeter-worker");
  const int status = g.wait_exit(10s);
  ASSERT_TRUE(WIFEXITED(status)) << g.err();
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_TRUE(contains(g.err(), "key 'greeter' may not register actor 'greeter'")) << g.err();
  EXPECT_EQ(c.stat("workers"), 1u);

  // A client key calls only what its policy names.
  EXPECT_EQ(ask_error(c, c.options_for("client"), 2s), "ok");
  troupe::client cl(c.endpoint(), c.options_for("client"));
  EXPECT_THROW(cl.ask<std::int64_t>(call_options{500ms}, "counter/k", "add", 1).get(), troupe::error);
  EXPECT_GE(c.stat("refused"), 2u);
}

TEST(Security, ANewKeyCountsFromTheNextHandshakeAndARemovedOneFromSighup) {
  cluster c({}, true);
  c.start_worker();
  ASSERT_TRUE(c.wait_for_workers(1));
  c.make_key("late", {});
  troupe::client late(c.endpoint(), c.options_for("late"));
  EXPECT_THROW(late.ask<long long>(call_options{1s}, "squares", "square", 2).get(), troupe::error);
  // Its public key lands in the clients directory: no restart, no signal.
  std::filesystem::copy_file(c.public_key("late"), c.dir().path() / "clients" / "late.key");
  EXPECT_TRUE(eventually(
      [&] {
        try {
          return late.ask<long long>(call_options{1s}, "squares", "square", 2).get() == 4;
        } catch (const troupe::error&) {
          return false;
        }
      },
      15s));
  // Removed, and SIGHUP: its open connection is refused from then on.
  std::filesystem::remove(c.dir().path() / "clients" / "late.key");
  c.broker().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return contains(c.broker().err(), "keys reloaded"); }, 5s))
      << c.broker().err();
  EXPECT_THROW(late.ask<long long>(call_options{500ms}, "squares", "square", 2).get(), troupe::error);
  EXPECT_EQ(c.client().ask<long long>("squares", "square", 5).get(), 25) << "the others keep working";
}

TEST(Security, APlaintextBrokerRefusesAnEndpointBeyondThisHostAndItsIpcFileIsOwnerOnly) {
  temp_dir dir;
  const auto r = run({bin("troupe"), "broker", "--listen", "tcp://0.0.0.0:0"}, 10s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "refusing to listen on tcp://0.0.0.0:0 without CURVE")) << r.err;
  EXPECT_TRUE(contains(r.err, "--insecure")) << r.err;

  cluster c({}, false);
  struct stat st {};
  ASSERT_EQ(::stat((c.dir().path() / "broker.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace troupe::test
