// The optional name policy of a broker with CURVE on (--name-policy FILE):
// which actor names each worker key may register and each client key may
// call, so that a key stolen from the `squares` pool cannot claim
// `payments`. docs/security.md documents the file:
//
//   # ROLE    KEY          NAMES...
//   worker    squares-pool squares counter
//   worker    billing      payments
//   client    shop         payments squares
//   client    *            squares      # every client key
//   client    ops          billing.*    # a prefix
//
// KEY is a key's name (its file name without `.key`) or `*` for every key
// of that role; a NAME is an actor name, a prefix ending in `*`, or `*`.
// Rules add up; a key that no rule of a role names (through its name or
// `*`) may register, or call, nothing. `$broker` is not governed here (see
// --admins-keys).
//
// Immutable once built, so the socket loop can swap in a reloaded policy
// between two messages: thread-compatible (const members may be called
// from any thread).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/string_map.hpp"

namespace troupe {

// A policy file that cannot be used; what() is "FILE: line N: what".
class policy_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class name_policy {
 public:
  // Parses a policy; `origin` names it in errors. Returns the policy.
  // Throws policy_error: unknown role, bad key or actor name, a rule with
  // no names.
  static name_policy parse(std::string_view text, const std::string& origin);
  // Reads and parses a file (at most 1 MiB). Throws policy_error, also
  // when the file cannot be read.
  static name_policy read(const std::string& path);

  // Whether the worker key `key` may register actor name `actor`. No throw.
  bool may_register(std::string_view key, std::string_view actor) const noexcept;
  // Whether the client key `key` may call actor name `actor`. No throw.
  bool may_call(std::string_view key, std::string_view actor) const noexcept;

  // Rules read, for logs.
  std::size_t rules() const noexcept { return rules_; }

 private:
  struct names {
    bool all = false;
    string_map<char> exact;
    std::vector<std::string> prefixes;
    bool allow(std::string_view actor) const noexcept;
  };
  struct role_rules {
    names every_key;  // rules with KEY `*`
    string_map<names> by_key;
    bool allow(std::string_view key, std::string_view actor) const noexcept;
  };
  role_rules workers_, clients_;
  std::size_t rules_ = 0;
};

}  // namespace troupe
