#include "durable_cli.hpp"

#include <msgpack.hpp>

#include <cstdio>
#include <future>

#include "json_msgpack.hpp"

namespace troupe::cli {
namespace {

// Prints `error: CODE: message`; returns 1.
int print_error(const raw_reply& reply) {
  std::string message;
  try {
    message = msgpack_to_json(reply.value).get<std::string>();
  } catch (const std::exception&) {
    message = "(unreadable error message)";
  }
  std::fprintf(stderr, "error: %s: %s\n", std::string(protocol::to_string(reply.code)).c_str(),
               message.c_str());
  return 1;
}

raw_reply wait_for(const std::function<void(client::callback)>& send) {
  std::promise<raw_reply> done;
  auto result = done.get_future();
  send([&done](raw_reply&& r) { done.set_value(std::move(r)); });
  return result.get();
}

}  // namespace

void add_store_flags(CLI::App& broker_cmd, broker_options& opt, long long& result_ttl_s) {
  broker_cmd
      .add_option(
          "--store", opt.store,
          "durable messages' SQLite file, or 'none' (default: $TROUPE_STORE, else beside an ipc:// socket, "
          "else ~/.local/state/troupe/ENDPOINT.store)")
      ->capture_default_str();
  broker_cmd
      .add_option("--result-ttl-s", result_ttl_s,
                  "keep durable messages' outcomes at least this long, at most about twice (seconds)")
      ->check(CLI::Range(1LL, 365LL * 86400))
      ->capture_default_str();
  broker_cmd
      .add_option("--max-deliveries", opt.max_deliveries,
                  "deliveries of a durable message that end with its worker lost before it is a dead letter")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
}

void add_call_flags(CLI::App& call_cmd, durable_flags& flags) {
  call_cmd.add_flag("--durable", flags.durable,
                    "stored by the broker before it runs; run at least once; re-sent after a reconnect");
  call_cmd.add_option("--id", flags.id, "durable: the message id (default: a fresh random one)");
}

CLI::App* add_tell_command(CLI::App& app, durable_flags& flags, std::string& address, std::string& method) {
  auto* cmd =
      app.add_subcommand("tell", "send a one-way message; with --durable, wait until the broker stored it");
  add_call_flags(*cmd, flags);
  cmd->add_option("--delay-ms", flags.delay_ms, "durable: not delivered before this long")
      ->check(CLI::Range(0LL, 31536000000LL));
  cmd->add_option("address", address, "actor address: name or name/key")->required();
  cmd->add_option("method", method, "method name")->required();
  cmd->allow_extras();
  cmd->footer("ARG ...: the method's arguments, each one JSON value, e.g. 7 '\"text\"' '[1, 2]'\n");
  return cmd;
}

CLI::App* add_dead_command(CLI::App& app, dead_command& dead) {
  auto* cmd =
      app.add_subcommand("dead", "dead letters: list, show SEQ, retry SEQ...|--all, purge SEQ...|--all");
  cmd->add_option("action", dead.action, "list, show, retry or purge")
      ->required()
      ->check(CLI::IsMember({"list", "show", "retry", "purge"}));
  cmd->add_option("seq", dead.seqs, "dead letter numbers (show, retry, purge)");
  cmd->add_flag("--all", dead.all, "retry or purge every dead letter");
  cmd->add_option("--after", dead.after, "list: dead letters numbered above this")->capture_default_str();
  cmd->add_option("--limit", dead.limit, "list: at most this many (1..1000)")->capture_default_str();
  return cmd;
}

call_options call_options_for(std::chrono::milliseconds timeout, const durable_flags& flags) {
  return call_options{timeout, flags.durable, flags.id};
}

int tell(client& c, std::chrono::milliseconds timeout, const std::string& address, const std::string& method,
         const std::vector<std::string>& json_args, const durable_flags& flags) {
  std::string args;
  try {
    args = json_args_to_msgpack(json_args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  if (!flags.durable) {
    if (!flags.id.empty() || flags.delay_ms) {
      std::fprintf(stderr, "error: --id and --delay-ms need --durable\n");
      return 2;
    }
    c.tell_raw(address, method, std::move(args));
    // Sent on the same socket after the tell: once the broker answers, it has the tell.
    const auto r = wait_for([&](client::callback done) {
      c.ask_raw(protocol::management_actor, "ping", "\x90", timeout, std::move(done));
    });
    return r.code == protocol::status::ok ? 0 : print_error(r);
  }
  const tell_options opts{timeout, flags.id, std::chrono::milliseconds(flags.delay_ms)};
  const auto r = wait_for([&](client::callback done) {
    c.tell_durable_raw(address, method, std::move(args), opts, std::move(done));
  });
  return r.code == protocol::status::ok ? 0 : print_error(r);
}

int dead(client& c, std::chrono::milliseconds timeout, const dead_command& d) {
  msgpack::sbuffer args;
  msgpack::packer<msgpack::sbuffer> pk(args);
  std::vector<unsigned long long> seqs;
  try {
    for (const auto& s : d.seqs) seqs.push_back(std::stoull(s));
  } catch (const std::exception&) {
    std::fprintf(stderr, "error: dead letter numbers are unsigned integers\n");
    return 2;
  }
  if (d.action == "list") {
    pk.pack_array(2);
    pk.pack(d.after);
    pk.pack(d.limit);
  } else if (d.action == "show") {
    if (seqs.size() != 1) {
      std::fprintf(stderr, "error: dead show takes one number\n");
      return 2;
    }
    pk.pack(seqs);
  } else if (d.all) {
    pk.pack_array(1);
    pk.pack(std::string_view("all"));
  } else if (seqs.empty()) {
    std::fprintf(stderr, "error: dead %s takes numbers or --all\n", d.action.c_str());
    return 2;
  } else {
    pk.pack(seqs);
  }
  const auto r = wait_for([&](client::callback done) {
    c.ask_raw(protocol::management_actor, "dead_" + d.action, std::string(args.data(), args.size()), timeout,
              std::move(done));
  });
  if (r.code != protocol::status::ok) return print_error(r);
  std::printf("%s\n", msgpack_to_json(r.value).dump().c_str());
  return 0;
}

}  // namespace troupe::cli
