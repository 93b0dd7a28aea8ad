// Where durable messages live: the broker's store, behind a small interface
// (docs/durability.md). The broker core decides; the store only keeps what
// it is told, one batch per transaction. SQLite is one implementation
// (store_sqlite.hpp); tests use an in-memory one (store_memory.hpp); a
// server database shared by several brokers could be another.
//
// The core writes only through commit(): it collects what one drained batch
// of messages changed (messages accepted, finished, rescheduled, dead) and
// the socket loop commits it once, so one batch costs one transaction and
// one fsync (group commit). Confirmations go out only after commit()
// returned success. Reads (recovery at start, a result looked up for a
// re-sent message id, the dead-letter listings) are synchronous and small.
//
// Not thread-safe: one thread (the broker's loop) uses a store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::durable {

// Milliseconds since the Unix epoch: times that must survive a restart.
using unix_ms = std::int64_t;

// A store that cannot be opened or read. The message says what and why, in
// words an operator can act on ("... is not a database", "... is read-only").
class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A durable message as the store keeps it while it waits or runs.
struct message {
  std::uint64_t seq = 0;  // the broker's order of acceptance; unique, never reused
  std::string id;         // the client's message id (1..128 bytes)
  std::string address;    // name or name/key
  std::string method;
  std::string args;  // the msgpack array, as the client sent it
  bool tell = false;
  std::uint32_t attempts = 0;  // executions that ended in an outcome its retry policy retries
  std::uint32_t lost = 0;      // deliveries that ended with the worker lost (the poison count)
  unix_ms not_before = 0;      // not delivered before (delay, retry backoff); 0: at once
  unix_ms accepted = 0;
  std::string last_error;  // "status: message" of the last failed attempt, or empty
};

// The final outcome of a message id, kept for the result retention time so
// that a re-sent message id is answered and never run again.
struct result {
  std::string status;  // "ok" or an error code
  std::string value;   // msgpack: the value, or the error message; empty for a tell
  unix_ms finished = 0;
};

// A message out of attempts (or deliveries), kept until retried or purged.
struct dead_letter {
  message msg;         // as it was last; msg.seq identifies the dead letter
  std::string reason;  // "attempts" or "poison"
  unix_ms died = 0;
};

// What one batch changes, written in one transaction by commit().
struct batch {
  struct finish {
    std::uint64_t seq = 0;  // the pending message that ended
    std::string id;
    durable::result result;
  };
  struct reschedule {
    std::uint64_t seq = 0;
    std::uint32_t attempts = 0, lost = 0;
    unix_ms not_before = 0;
    std::string last_error;
  };
  std::vector<message> added;           // accepted: confirmed once committed
  std::vector<finish> finished;         // pending -> result
  std::vector<reschedule> rescheduled;  // a retry's schedule, or a redelivery's count
  std::vector<dead_letter> died;        // pending -> dead (its result is recorded in `finished`)
  std::vector<std::uint64_t> revived;   // dead letters retried: removed (re-added in `added`)
  std::vector<std::string> forgotten;   // results removed (a retried dead letter's id)
  std::vector<std::uint64_t> purged;    // dead letters removed for good
  unix_ms expire_results_before = 0;    // results finished before this may go; 0: none
  // Routing ids of workers that registered or left: a restarted broker
  // waits for the registered ones before placing keys anew.
  std::vector<std::string> workers_joined, workers_left;

  bool empty() const {
    return added.empty() && finished.empty() && rescheduled.empty() && died.empty() && revived.empty() &&
           forgotten.empty() && purged.empty() && expire_results_before == 0 && workers_joined.empty() &&
           workers_left.empty();
  }
  void clear() {
    added.clear();
    finished.clear();
    rescheduled.clear();
    died.clear();
    revived.clear();
    forgotten.clear();
    purged.clear();
    expire_results_before = 0;
    workers_joined.clear();
    workers_left.clear();
  }
};

class store {
 public:
  virtual ~store() = default;

  // Writes all of `b` in one transaction, durably (fsync'd) before it
  // returns, or nothing of it. Returns an empty string on success, else why
  // not ("disk full", "read-only", ...). Never throws for I/O errors; the
  // next commit tries again.
  virtual std::string commit(const batch& b) = 0;

  // Recovery, at start. Throws store_error.
  // The pending messages, in seq order.
  virtual std::vector<message> pending() = 0;
  // One more than the highest seq ever used (pending, dead or finished).
  virtual std::uint64_t next_seq() = 0;
  // The routing ids of the workers registered when it was last written.
  virtual std::vector<std::string> workers() = 0;

  // The recorded result of message id `id`, if any. Throws store_error.
  virtual std::optional<result> find_result(std::string_view id) = 0;

  // Dead letters with seq > after, in seq order, at most `limit`. Throws store_error.
  virtual std::vector<dead_letter> dead_letters(std::uint64_t after, std::size_t limit) = 0;
  // One dead letter, or nullopt. Throws store_error.
  virtual std::optional<dead_letter> dead_letter_at(std::uint64_t seq) = 0;
  // How many dead letters there are. Throws store_error.
  virtual std::uint64_t dead_count() = 0;

  // What it is, for logs and stats: the path of a file, or "memory".
  virtual std::string describe() const = 0;
};

}  // namespace troupe::durable
