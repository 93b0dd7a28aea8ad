// The durable side of the `troupe` command line (docs/durability.md):
// the broker's store flags, `troupe tell`, `troupe call --durable` and
// `troupe dead list|show|retry|purge`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "troupe/broker.hpp"
#include "troupe/client.hpp"

namespace troupe::cli {

// `--durable`, `--id`, `--delay-ms` of call and tell.
struct durable_flags {
  bool durable = false;
  std::string id;
  long long delay_ms = 0;
};

// `troupe dead ...`: which subcommand and its operands.
struct dead_command {
  std::string action;  // list, show, retry, purge
  std::vector<std::string> seqs;
  bool all = false;
  unsigned long long after = 0, limit = 100;
};

// --store, --result-ttl-s, --max-deliveries on `troupe broker`.
void add_store_flags(CLI::App& broker_cmd, broker_options& opt, long long& result_ttl_s);
// --durable and --id on `troupe call`.
void add_call_flags(CLI::App& call_cmd, durable_flags& flags);
// `troupe tell` and `troupe dead`, with their own flags; the caller adds
// --broker, --timeout-ms and the key flags.
CLI::App* add_tell_command(CLI::App& app, durable_flags& flags, std::string& address, std::string& method);
CLI::App* add_dead_command(CLI::App& app, dead_command& dead);

// Runs `troupe tell`: plain, it returns once the broker has the message;
// durable, once the broker confirms it is stored. Prints errors as `troupe
// call` does. Returns the exit code: 0, 1 (an error or no confirmation in
// time), 2 (bad usage).
int tell(client& c, std::chrono::milliseconds timeout, const std::string& address, const std::string& method,
         const std::vector<std::string>& json_args, const durable_flags& flags);
// The call options of `troupe call` with these flags.
call_options call_options_for(std::chrono::milliseconds timeout, const durable_flags& flags);
// Runs `troupe dead ...`: prints the `$broker dead_*` result as JSON.
// Returns the exit code.
int dead(client& c, std::chrono::milliseconds timeout, const dead_command& dead);

}  // namespace troupe::cli
