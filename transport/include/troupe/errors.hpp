// The exceptions troupe throws for a call, under one base class:
//
//   troupe::exception             the base; catch it for "any troupe failure"
//   ├── troupe::error             an error reply: code() says which (bad_args, ...)
//   ├── troupe::result_type_error the reply's value does not convert to the type asked for
//   └── troupe::bad_args_error    in a worker: arguments that do not convert
//
// All derive from std::runtime_error, so what() always carries the message.
// Every member function here is const, does not throw, and is thread-safe.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "troupe/protocol.hpp"

namespace troupe {

class exception : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An error reply from the broker or a worker, or deadline_exceeded decided
// by the client itself (no reply in time, or the client was closed).
// what() is "code_name: message".
class error : public exception {
 public:
  error(protocol::status code, const std::string& message)
      : exception(std::string(protocol::to_string(code)) + ": " + message), code_(code), message_(message) {}
  // The protocol's error code; never status::ok.
  protocol::status code() const noexcept { return code_; }
  // The code as it travels on the wire, e.g. "unknown_method".
  std::string_view code_name() const noexcept { return protocol::to_string(code_); }
  // The message without the code, e.g. "actor 'squares' has no method 'cube'".
  const std::string& message() const noexcept { return message_; }

 private:
  protocol::status code_;
  std::string message_;
};

// The call succeeded but its value does not convert to the type the caller
// asked for (ask<R>, map<R>), or is not valid msgpack. what() says what
// arrived and what was asked for, in the wire's vocabulary:
// "the result is str, expected int", "the result field 'y' is str, expected int".
class result_type_error : public exception {
 public:
  using exception::exception;
};

// Thrown inside a worker while decoding a method's arguments; the worker
// answers `bad_args` with what() as the message, e.g.
// "argument 1 field 'y' must be int, got str". A method may throw it too,
// to reject arguments that convert but make no sense. A caller never sees
// this type: it gets troupe::error with code() == status::bad_args.
class bad_args_error : public exception {
 public:
  using exception::exception;
};

}  // namespace troupe
