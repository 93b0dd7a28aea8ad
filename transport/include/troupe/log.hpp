// Event log lines of troupe's programs (the broker, C++ workers): one line
// per event on stderr, as text for people or as JSON lines for machines.
// The JSON fields are the same in the Python worker (troupe.worker,
// --log-format json): ts, level, program, pid, event, msg, then the
// event's own fields. docs/operations.md, "Logs".
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace troupe::log {

enum class level : int { error = 0, warn = 1, info = 2, debug = 3 };
enum class format { text, json };

// "error", "warn", "info", "debug"; nullopt for anything else.
std::optional<level> parse_level(std::string_view text);
// "text", "json"; nullopt for anything else.
std::optional<format> parse_format(std::string_view text);
std::string_view to_string(level l);

// One field of an event: a string, or an integer (a JSON number).
struct field {
  field(std::string_view k, std::string_view v) : key(k), text(v) {}
  field(std::string_view k, const std::string& v) : key(k), text(v) {}
  field(std::string_view k, const char* v) : key(k), text(v) {}
  template <class Int>
  requires std::is_integral_v<Int> field(std::string_view k, Int v)
      : key(k), number(static_cast<std::int64_t>(v)), is_number(true) {}
  std::string_view key;
  std::string_view text;
  std::int64_t number = 0;
  bool is_number = false;
};

// The process's settings: set once by main() before any thread logs.
// `program` names the process in every line ("broker", or a worker's name).
void configure(std::string program, level min, format fmt);
bool enabled(level l);
format configured_format();

// Writes one line if `l` is enabled: as text "troupe PROGRAM: [warning: ]MSG",
// or as one JSON object. `msg` and string fields need not be UTF-8: what is
// not is repaired, so every line is valid JSON.
void write(level l, std::string_view event, std::string_view msg, std::initializer_list<field> fields = {});

// A printable form of a routing id (workers' are usually text already).
std::string printable_id(std::string_view id);

}  // namespace troupe::log
