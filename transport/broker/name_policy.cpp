#include "broker/name_policy.hpp"

#include <fstream>
#include <sstream>

#include "troupe/curve.hpp"
#include "troupe/protocol.hpp"

namespace troupe {
namespace {

constexpr std::size_t max_policy_bytes = 1 << 20;

[[noreturn]] void fail(const std::string& origin, std::size_t line, const std::string& what) {
  throw policy_error(origin + (line ? ": line " + std::to_string(line) : std::string()) + ": " + what);
}

// `text` in quotes, cut and made printable for an error message.
std::string quoted(std::string_view text) {
  std::string out = "'";
  out += protocol::to_valid_utf8(text.substr(0, 70));
  out += '\'';
  return out;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i == line.size() || line[i] == '#') break;
    const auto start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '#') ++i;
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

bool name_policy::names::allow(std::string_view actor) const noexcept {
  if (all || exact.find(actor) != exact.end()) return true;
  for (const auto& p : prefixes)
    if (actor.starts_with(p)) return true;
  return false;
}

bool name_policy::role_rules::allow(std::string_view key, std::string_view actor) const noexcept {
  if (every_key.allow(actor)) return true;
  const auto it = by_key.find(key);
  return it != by_key.end() && it->second.allow(actor);
}

bool name_policy::may_register(std::string_view key, std::string_view actor) const noexcept {
  return workers_.allow(key, actor);
}

bool name_policy::may_call(std::string_view key, std::string_view actor) const noexcept {
  return clients_.allow(key, actor);
}

name_policy name_policy::parse(std::string_view text, const std::string& origin) {
  name_policy policy;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const auto line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    const auto w = words(line);
    if (w.empty()) continue;
    if (w[0] != "worker" && w[0] != "client")
      fail(origin, line_no, "a rule starts with `worker` or `client`, not " + quoted(w[0]));
    if (w.size() < 3) fail(origin, line_no, "expected `" + std::string(w[0]) + " KEY NAME...`");
    const auto key = w[1];
    if (key != "*" && !curve::valid_key_name(key))
      fail(origin, line_no, quoted(key) + " is not a key name (nor `*`)");
    auto& role = w[0] == "worker" ? policy.workers_ : policy.clients_;
    auto& n = key == "*" ? role.every_key : role.by_key[std::string(key)];
    for (std::size_t i = 2; i < w.size(); ++i) {
      const auto name = w[i];
      if (name == "*") {
        n.all = true;
      } else if (name.ends_with('*')) {
        const auto prefix = name.substr(0, name.size() - 1);
        // A prefix is the start of a valid name: check it with a letter added.
        if (!protocol::valid_actor_name(std::string(prefix) + "a"))
          fail(origin, line_no, quoted(name) + " is not an actor name prefix");
        n.prefixes.emplace_back(prefix);
      } else {
        if (!protocol::valid_actor_name(name))
          fail(origin, line_no, quoted(name) + " is not an actor name (1..64 of A-Z a-z 0-9 _ . -)");
        n.exact.emplace(std::string(name), 0);
      }
    }
    ++policy.rules_;
  }
  return policy;
}

name_policy name_policy::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, 0, "cannot read the name policy file");
  std::ostringstream buf;
  buf << in.rdbuf();
  const auto text = buf.str();
  if (text.size() > max_policy_bytes) fail(path, 0, "larger than 1 MiB");
  return parse(text, path);
}

}  // namespace troupe
