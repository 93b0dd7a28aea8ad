// The `troupe` command line: run a broker, call actors, read stats, measure.
#include <signal.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "durable_cli.hpp"
#include "json_msgpack.hpp"
#include "troupe/broker.hpp"
#include "troupe/client.hpp"
#include "troupe/curve.hpp"
#include "troupe/log.hpp"
#include "troupe/process_limits.hpp"
#include "troupe/version.hpp"

namespace {

using namespace troupe;
using clock_type = std::chrono::steady_clock;

std::atomic<bool> stop_requested{false};
extern "C" void on_stop_signal(int) { stop_requested = true; }
// SIGHUP: the serving broker reads its key directories and name policy again.
std::atomic<broker*> reload_target{nullptr};
extern "C" void on_reload_signal(int) {
  if (auto* b = reload_target.load()) b->request_reload();
}

// Open files: as many as the service manager allows (docs/operations.md,
// "Open files"), and running out never crashes or spins the broker.
void prepare_open_files() {
  const auto files = raise_open_file_limit();
  auto text = [](std::uint64_t v) { return v == UINT64_MAX ? std::string("unlimited") : std::to_string(v); };
  if (files.soft != files.soft_before)
    log::write(log::level::info, "broker",
               "open files: soft limit " + text(files.soft_before) + " raised to the hard limit " +
                   text(files.hard));
  else
    log::write(log::level::info, "broker",
               "open files: soft limit " + text(files.soft) + ", hard limit " + text(files.hard));
  guard_accept();
}

int run_broker(const broker_options& opt) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_reload_signal;
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, nullptr);
  prepare_open_files();
  try {
    broker b(opt);
    reload_target = &b;
    struct reset_target {
      ~reset_target() { reload_target = nullptr; }
    } reset;
    // Tests and scripts read this line to learn the port of a `:*` endpoint.
    std::printf("troupe broker listening on %s\n", b.endpoint().c_str());
    std::fflush(stdout);
    log::write(log::level::info, "broker_listening", "listening on " + b.endpoint(),
               {{"endpoint", b.endpoint()}});
    b.run(stop_requested);
  } catch (const zmq::error_t& e) {
    // Binding is what fails here (the port is taken, the ipc directory is
    // missing): name the endpoint, which ZeroMQ's message does not.
    log::write(
        log::level::error, "broker_error",
        "cannot listen on " + opt.listen + ": " + e.what() +
            (e.num() == EADDRINUSE ? " (another broker or program is there; choose another --listen)" : ""),
        {{"endpoint", opt.listen}});
    return 1;
  } catch (const std::exception& e) {
    log::write(log::level::error, "broker_error", e.what());
    return 1;
  }
  log::write(log::level::info, "broker_stopped", "stopped");
  return 0;
}

// The client side of call, stats and bench: CURVE keys from the flags or
// the environment. Set by main() before any client is made.
client_options cli_client_options;
// `troupe call --durable [--id ID]` (durable_cli.cpp).
cli::durable_flags call_durable;

// Prints `error: CODE: message` and returns the CLI's exit code for it.
int report(const raw_reply& reply) {
  std::string message;
  try {
    message = cli::msgpack_to_json(reply.value).get<std::string>();
  } catch (const std::exception&) {
    message = "(unreadable error message)";
  }
  std::fprintf(stderr, "error: %s: %s\n", std::string(protocol::to_string(reply.code)).c_str(),
               message.c_str());
  return 1;
}

// How long a command waits to learn that no broker is there, rather than
// waiting out its whole timeout.
constexpr auto connect_patience = std::chrono::milliseconds(1500);

// Says why the broker cannot be reached, when the client's connection is
// known to have failed; returns false then. A connection still being made
// is left to the request's own timeout.
bool broker_reachable(const client& c, std::chrono::milliseconds timeout) {
  switch (c.wait_connected(std::min(timeout, std::chrono::milliseconds(connect_patience)))) {
    case client::link_state::refused:
      std::fprintf(stderr, "error: no broker at %s (is 'troupe broker' running?)\n", c.endpoint().c_str());
      return false;
    case client::link_state::rejected:
      std::fprintf(stderr, "error: the broker at %s refused the connection (authentication failed)\n",
                   c.endpoint().c_str());
      return false;
    default:
      return true;
  }
}

raw_reply ask_blocking(client& c, const std::string& address, const std::string& method, std::string args,
                       std::chrono::milliseconds timeout) {
  std::promise<raw_reply> done;
  auto result = done.get_future();
  c.ask_raw(address, method, std::move(args), cli::call_options_for(timeout, call_durable),
            [&done](raw_reply&& r) { done.set_value(std::move(r)); });
  return result.get();
}

int call(const std::string& endpoint, int timeout_ms, const std::string& address, const std::string& method,
         const std::vector<std::string>& json_args) {
  std::string args;
  try {
    args = cli::json_args_to_msgpack(json_args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  client c(endpoint, cli_client_options);
  if (!broker_reachable(c, std::chrono::milliseconds(timeout_ms))) return 1;
  const auto reply = ask_blocking(c, address, method, std::move(args), std::chrono::milliseconds(timeout_ms));
  if (reply.code == protocol::status::deadline_exceeded && address == protocol::management_actor &&
      method != "ping" && cli_client_options.curve.enabled())
    std::fprintf(stderr, "note: with CURVE, `$broker %s` answers admin keys only (--admins-keys)\n",
                 method.c_str());
  if (reply.code != protocol::status::ok) return report(reply);
  try {
    std::printf("%s\n", cli::msgpack_to_json(reply.value).dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: the result is not valid msgpack: %s\n", e.what());
    return 1;
  }
  return 0;
}

int keygen(const std::string& dir, const std::string& name) {
  try {
    const auto [public_path, secret_path] = curve::write_key_pair(dir, name);
    const auto cert = curve::read_certificate(public_path, false);
    std::printf("public key %s\nsecret key %s (keep it; give the public one to the broker)\n%s\n",
                public_path.c_str(), secret_path.c_str(), cert.public_key.c_str());
  } catch (const curve::key_error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

struct bench_settings {
  std::string endpoint, address, method;
  std::vector<std::string> args;
  std::size_t requests = 10000, window = 100, warmup = 1000;
  int timeout_ms = 30000;
  bool json = false;
};

int bench(const bench_settings& s) {
  std::string args;
  try {
    args = cli::json_args_to_msgpack(s.args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  client c(s.endpoint, cli_client_options);
  const auto timeout = std::chrono::milliseconds(s.timeout_ms);
  if (!broker_reachable(c, timeout)) return 1;

  // A closed loop: each completion asks the next request from the client's
  // own thread, so the measurement pays no hand-off to this thread per call.
  struct phase_state {
    std::size_t total = 0;
    bool record = false;
    std::atomic<std::size_t> issued{0};
    std::size_t completed = 0, errors = 0;  // client thread only, until done
    std::string first_error;
    std::vector<double> latencies_us;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  std::function<void(phase_state&)> issue_next;
  issue_next = [&](phase_state& ph) {
    if (ph.issued.fetch_add(1) >= ph.total) return;
    const auto start = clock_type::now();
    c.ask_raw(s.address, s.method, args, timeout, [&, start](raw_reply&& r) {
      if (ph.record) {
        ph.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
        if (r.code != protocol::status::ok && ph.errors++ == 0)
          ph.first_error = std::string(protocol::to_string(r.code));
      }
      if (++ph.completed == ph.total) {
        std::lock_guard lock(ph.mu);
        ph.done = true;
        ph.cv.notify_all();
        return;
      }
      issue_next(ph);
    });
  };
  auto run_phase = [&](phase_state& ph) {
    if (ph.total == 0) return;
    ph.latencies_us.reserve(ph.record ? ph.total : 0);
    for (std::size_t i = 0; i < std::min(s.window, ph.total); ++i) issue_next(ph);
    std::unique_lock lock(ph.mu);
    ph.cv.wait(lock, [&] { return ph.done; });
  };

  phase_state warmup, measured;
  warmup.total = s.warmup;
  measured.total = s.requests;
  measured.record = true;
  run_phase(warmup);
  const auto start = clock_type::now();
  run_phase(measured);
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  auto& latencies_us = measured.latencies_us;
  const auto errors = measured.errors;
  const auto& first_error = measured.first_error;

  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    const auto i = std::min(latencies_us.size() - 1,
                            static_cast<std::size_t>(p * static_cast<double>(latencies_us.size())));
    return latencies_us[i];
  };
  const double throughput = seconds > 0 ? static_cast<double>(s.requests) / seconds : 0;
  if (s.json) {
    nlohmann::json out = {{"requests", s.requests}, {"errors", errors},         {"seconds", seconds},
                          {"window", s.window},     {"throughput", throughput}, {"p50_us", pct(0.50)},
                          {"p99_us", pct(0.99)},    {"p999_us", pct(0.999)},    {"max_us", pct(1.0)}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("%zu requests (window %zu) in %.3f s: %.0f req/s\n", s.requests, s.window, seconds,
                throughput);
    std::printf("latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", pct(0.5), pct(0.99),
                pct(0.999), pct(1.0));
    if (errors) std::printf("%zu errors (first: %s)\n", errors, first_error.c_str());
  }
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"troupe: a message-queue actor framework on ZeroMQ and MessagePack"};
  app.require_subcommand(1);
  const std::string default_endpoint = default_broker_endpoint();

  broker_options bopt;
  int heartbeat_ms = 1000, default_timeout_ms = 60000;
  auto* broker_cmd = app.add_subcommand("broker", "run a broker in the foreground until SIGINT/SIGTERM");
  broker_cmd
      ->add_option("--listen", bopt.listen,
                   "endpoint to bind, e.g. tcp://127.0.0.1:5555 or ipc:///tmp/t.sock")
      ->capture_default_str();
  broker_cmd->add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  broker_cmd
      ->add_option("--liveness", bopt.liveness, "heartbeats a worker may miss before it is declared dead")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  broker_cmd->add_option("--queue-limit", bopt.queue_limit, "requests waiting per queue before `overloaded`")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  broker_cmd->add_option("--max-message-bytes", bopt.limits.max_message_bytes, "largest args frame accepted")
      ->check(CLI::Range(64, 1 << 30))
      ->capture_default_str();
  broker_cmd->add_option("--default-timeout-ms", default_timeout_ms, "timeout of requests that give none")
      ->check(CLI::Range(1, 86400000))
      ->capture_default_str();
  // Bounds on what the broker holds (docs/operations.md, "Limits").
  std::int64_t forget_names_after_ms = bopt.forget_names_after.count();
  long long result_ttl_s = bopt.result_ttl.count();
  broker_cmd
      ->add_option(
          "--send-queue-limit", bopt.send_queue_limit,
          "messages kept for one peer that does not read them; past it they are dropped (0: no limit)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{10000000}))
      ->capture_default_str();
  broker_cmd
      ->add_option("--max-queued-bytes", bopt.max_queued_bytes,
                   "bytes all queued requests may hold; past it `overloaded` (0: no limit)")
      ->capture_default_str();
  broker_cmd
      ->add_option("--max-queued-bytes-per-name", bopt.max_queued_bytes_per_name,
                   "bytes the queued requests of one name may hold; past it `overloaded` (0: no limit)")
      ->capture_default_str();
  broker_cmd
      ->add_option("--max-names", bopt.max_names,
                   "actor names the broker registers; a READY past it is refused (0: no limit)")
      ->capture_default_str();
  broker_cmd
      ->add_option("--forget-names-after-ms", forget_names_after_ms,
                   "a name no worker hosts for this long is forgotten (unknown_actor again; 0: never)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86400000} * 365))
      ->capture_default_str();
  // CURVE (docs/security.md). Not read from the environment: the
  // TROUPE_CURVE_* variables are a client's or a worker's keys.
  broker_cmd->add_option("--curve-secret", bopt.curve_secret,
                         "CURVE: the broker's secret key file; encrypts and authenticates every connection");
  broker_cmd->add_option("--workers-keys", bopt.workers_keys,
                         "CURVE: directory of worker public keys (*.key)");
  broker_cmd->add_option("--clients-keys", bopt.clients_keys,
                         "CURVE: directory of client public keys (*.key)");
  broker_cmd->add_option("--admins-keys", bopt.admins_keys,
                         "CURVE: directory of admin public keys; without it every client may manage");
  broker_cmd->add_option("--name-policy", bopt.name_policy,
                         "CURVE: file saying which names each key may register or call");
  broker_cmd->add_flag("--insecure", bopt.insecure,
                       "allow plaintext on an endpoint other hosts can reach (not loopback or ipc)");
  cli::add_store_flags(*broker_cmd, bopt, result_ttl_s);  // durable_cli.cpp
  // The event log (docs/operations.md, "Logs"): workers joining, leaving
  // and lost, refusals, notices; never one line per request.
  std::string log_level = "info", log_format = "text";
  broker_cmd->add_option("--log-level", log_level, "least severe events logged")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}))
      ->capture_default_str();
  broker_cmd->add_option("--log-format", log_format, "text, or json: one JSON object per line")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::string endpoint = default_endpoint;
  int timeout_ms = 30000;
  std::string address, method;
  auto* call_cmd = app.add_subcommand("call", "ask an actor once and print the result as JSON");
  call_cmd->add_option("--broker", endpoint, "broker endpoint")->capture_default_str();
  call_cmd->add_option("--timeout-ms", timeout_ms, "give up after this long")
      ->check(CLI::Range(1, 86400000))
      ->capture_default_str();
  call_cmd->add_option("address", address, "actor address: name or name/key")->required();
  call_cmd->add_option("method", method, "method name")->required();
  // The ARGs are taken verbatim from what is left after the positionals: as
  // an option CLI11 would split an argument like "[1, 2]" into two.
  call_cmd->allow_extras();
  call_cmd->footer("ARG ...: the method's arguments, each one JSON value, e.g. 7 '\"text\"' '[1, 2]'\n");

  // CURVE keys of call, stats and bench: flags, else the environment.
  cli_client_options.curve = curve::client_keys::from_environment();
  auto add_key_flags = [&](CLI::App* cmd) {
    cmd->add_option("--curve-secret", cli_client_options.curve.secret_file,
                    "CURVE: this client's secret key file (default: $TROUPE_CURVE_SECRET)");
    cmd->add_option("--broker-key", cli_client_options.curve.broker_key_file,
                    "CURVE: the broker's public key file (default: $TROUPE_BROKER_KEY)");
  };
  add_key_flags(call_cmd);
  cli::add_call_flags(*call_cmd, call_durable);

  // tell and dead (durable_cli.cpp), with the same connection flags as call.
  cli::durable_flags tell_flags;
  cli::dead_command dead_args;
  auto* tell_cmd = cli::add_tell_command(app, tell_flags, address, method);
  auto* dead_cmd = cli::add_dead_command(app, dead_args);
  for (auto* cmd : {tell_cmd, dead_cmd}) {
    cmd->add_option("--broker", endpoint, "broker endpoint")->capture_default_str();
    cmd->add_option("--timeout-ms", timeout_ms, "give up after this long")
        ->check(CLI::Range(1, 86400000))
        ->capture_default_str();
    add_key_flags(cmd);
  }

  auto* stats_cmd = app.add_subcommand("stats", "print the broker's stats as one JSON object");
  stats_cmd->add_option("--broker", endpoint, "broker endpoint")->capture_default_str();
  stats_cmd->add_option("--timeout-ms", timeout_ms, "give up after this long")
      ->check(CLI::Range(1, 86400000));
  add_key_flags(stats_cmd);

  std::string keygen_dir, keygen_name;
  auto* keygen_cmd = app.add_subcommand(
      "keygen", "write a new CURVE key pair: DIR/NAME.key (public) and DIR/NAME.key_secret (secret, 0600)");
  keygen_cmd->add_option("--out", keygen_dir, "directory to write to (created if missing)")->required();
  keygen_cmd->add_option("name", keygen_name, "the key's name, e.g. squares-pool")->required();

  bench_settings bs;
  auto* bench_cmd =
      app.add_subcommand("bench", "ask N times with at most W in flight; report throughput and latency");
  bench_cmd->add_option("--broker", endpoint, "broker endpoint")->capture_default_str();
  bench_cmd->add_option("--requests", bs.requests, "measured requests")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  bench_cmd->add_option("--window", bs.window, "requests in flight at most")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  bench_cmd->add_option("--warmup", bs.warmup, "unmeasured requests first")->capture_default_str();
  bench_cmd->add_option("--timeout-ms", bs.timeout_ms, "per-request timeout")
      ->check(CLI::Range(1, 86400000))
      ->capture_default_str();
  bench_cmd->add_flag("--json", bs.json, "print one JSON object");
  add_key_flags(bench_cmd);
  bench_cmd->add_option("address", address, "actor address")->required();
  bench_cmd->add_option("method", method, "method name")->required();
  bench_cmd->allow_extras();
  bench_cmd->footer("ARG ...: the method's arguments, each one JSON value\n");

  app.set_version_flag("--version", std::string("troupe ") + troupe::version());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0, every usage error 2 (docs/operations.md).
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (broker_cmd->parsed()) {
      log::configure("broker", *log::parse_level(log_level), *log::parse_format(log_format));
      bopt.heartbeat = std::chrono::milliseconds(heartbeat_ms);
      bopt.default_timeout = std::chrono::milliseconds(default_timeout_ms);
      bopt.forget_names_after = std::chrono::milliseconds(forget_names_after_ms);
      bopt.result_ttl = std::chrono::seconds(result_ttl_s);
      return run_broker(bopt);
    }
    if (keygen_cmd->parsed()) return keygen(keygen_dir, keygen_name);
    if (call_cmd->parsed()) return call(endpoint, timeout_ms, address, method, call_cmd->remaining());
    if (tell_cmd->parsed() || dead_cmd->parsed()) {
      client c(endpoint, cli_client_options);
      const std::chrono::milliseconds timeout(timeout_ms);
      if (!broker_reachable(c, timeout)) return 1;
      return tell_cmd->parsed() ? cli::tell(c, timeout, address, method, tell_cmd->remaining(), tell_flags)
                                : cli::dead(c, timeout, dead_args);
    }
    if (stats_cmd->parsed())
      return call(endpoint, timeout_ms, std::string(protocol::management_actor), "stats", {});
    if (bench_cmd->parsed()) {
      bs.endpoint = endpoint;
      bs.address = address;
      bs.method = method;
      bs.args = bench_cmd->remaining();
      return bench(bs);
    }
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "error: %s (endpoint %s)\n", e.what(), endpoint.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
