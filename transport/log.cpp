#include "troupe/log.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "troupe/protocol.hpp"

namespace troupe::log {
namespace {

struct settings {
  std::string program = "troupe";
  level min = level::info;
  format fmt = format::text;
};

settings& current() {
  static settings s;
  return s;
}

// JSON string contents: quotes, backslashes and control characters escaped;
// the text is made valid UTF-8 first.
void append_json_string(std::string& out, std::string_view raw) {
  const auto text = protocol::to_valid_utf8(raw);
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// UTC, milliseconds: 2026-11-26T02:30:00.123Z.
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[80];  // room for any int the fields could hold, so nothing is cut
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace

std::optional<level> parse_level(std::string_view text) {
  if (text == "error") return level::error;
  if (text == "warn") return level::warn;
  if (text == "info") return level::info;
  if (text == "debug") return level::debug;
  return std::nullopt;
}

std::optional<format> parse_format(std::string_view text) {
  if (text == "text") return format::text;
  if (text == "json") return format::json;
  return std::nullopt;
}

std::string_view to_string(level l) {
  switch (l) {
    case level::error:
      return "error";
    case level::warn:
      return "warn";
    case level::info:
      return "info";
    case level::debug:
      return "debug";
  }
  return "info";
}

void configure(std::string program, level min, format fmt) {
  auto& s = current();
  s.program = std::move(program);
  s.min = min;
  s.fmt = fmt;
}

format configured_format() { return current().fmt; }

bool enabled(level l) { return static_cast<int>(l) <= static_cast<int>(current().min); }

void write(level l, std::string_view event, std::string_view msg, std::initializer_list<field> fields) {
  if (!enabled(l)) return;
  const auto& s = current();
  std::string line;
  if (s.fmt == format::text) {
    line = "troupe " + s.program + ": ";
    if (l == level::error) line += "error: ";
    if (l == level::warn) line += "warning: ";
    line += protocol::to_valid_utf8(msg);
  } else {
    line = "{\"ts\":\"" + timestamp() + "\",\"level\":\"" + std::string(to_string(l)) + "\",\"program\":";
    append_json_string(line, s.program);
    line += ",\"pid\":" + std::to_string(getpid()) + ",\"event\":";
    append_json_string(line, event);
    line += ",\"msg\":";
    append_json_string(line, msg);
    for (const auto& f : fields) {
      line += ',';
      append_json_string(line, f.key);
      line += ':';
      if (f.is_number) {
        line += std::to_string(f.number);
      } else {
        append_json_string(line, f.text);
      }
    }
    line += '}';
  }
  line += '\n';
  // One write per line, so lines of several threads never interleave.
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string printable_id(std::string_view id) {
  bool text = !id.empty();
  for (const char c : id) text = text && c > 0x20 && c < 0x7f;
  if (text) return std::string(id);
  std::string hex = "0x";
  char buf[4];
  for (const char c : id) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    hex += buf;
  }
  return hex;
}

}  // namespace troupe::log
