#include "troupe/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace troupe::curve {
namespace {

constexpr std::size_t max_certificate_bytes = 64 * 1024;
constexpr std::string_view z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

[[noreturn]] void fail(const std::string& origin, std::size_t line, const std::string& what) {
  throw key_error(origin + (line ? ": line " + std::to_string(line) : std::string()) + ": " + what);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The value after `=`: quoted ("..." or '...', then only a comment may
// follow) or bare (the rest of the line: a bare Z85 key may contain '#',
// and pyzmq writes metadata values bare).
std::string parse_value(std::string_view rest, const std::string& origin, std::size_t line) {
  rest = trim(rest);
  if (rest.empty()) return {};
  const char q = rest.front();
  if (q != '"' && q != '\'') return std::string(rest);
  const auto close = rest.find(q, 1);
  if (close == std::string_view::npos) fail(origin, line, "unterminated quoted value");
  const auto after = trim(rest.substr(close + 1));
  if (!after.empty() && after.front() != '#') fail(origin, line, "unexpected text after the quoted value");
  return std::string(rest.substr(1, close - 1));
}

std::string errno_text(int err) { return std::strerror(err); }

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, 0, "cannot read: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, 0, "not a regular file");
  }
  std::string text;
  std::array<char, 4096> buf;
  for (;;) {
    const auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(path, 0, "cannot read: " + errno_text(err));
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > max_certificate_bytes) {
      ::close(fd);
      fail(path, 0, "larger than 64 KiB: not a certificate");
    }
  }
  ::close(fd);
  return text;
}

// Writes `text` to a new file (never an existing one) with `mode`.
void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail(path, 0, "cannot create: " + errno_text(errno));
  // The mode given to open() is narrowed by the umask; the secret must end
  // up exactly owner-only whatever the umask.
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  const int err = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok) {
    ::unlink(path.c_str());
    fail(path, 0, "cannot write: " + errno_text(err));
  }
}

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

}  // namespace

bool available() noexcept { return zmq_has("curve") != 0; }

bool valid_z85_key(std::string_view key) noexcept {
  if (key.size() != z85_key_size) return false;
  for (const char c : key)
    if (z85_alphabet.find(c) == std::string_view::npos) return false;
  return true;
}

bool valid_key_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

certificate parse_certificate(std::string_view text, const std::string& origin, bool need_secret) {
  certificate cert;
  std::string section;
  std::size_t line_no = 0, public_line = 0, secret_line = 0;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view raw = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    if (raw.find('\0') != std::string_view::npos) fail(origin, line_no, "binary data: not a certificate");
    const auto line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const bool indented = raw.front() == ' ' || raw.front() == '\t';
    const auto eq = line.find('=');
    if (!indented) {
      // A section, e.g. `curve`. ZPL also allows `name = value` at the top
      // level; nothing troupe reads lives there.
      if (eq == std::string_view::npos) section = std::string(line);
      continue;
    }
    if (eq == std::string_view::npos) {
      // A subsection of a section: not one troupe reads, but still ZPL.
      if (line.find_first_of(" \t") != std::string_view::npos)
        fail(origin, line_no,
             "expected `name = value`, got '" + protocol::to_valid_utf8(line.substr(0, 40)) + "'");
      continue;
    }
    const auto name = trim(line.substr(0, eq));
    if (name.empty()) fail(origin, line_no, "a value with no name");
    auto value = parse_value(line.substr(eq + 1), origin, line_no);
    if (section == "metadata") {
      cert.metadata.emplace_back(std::string(name), std::move(value));
    } else if (section == "curve" && (name == "public-key" || name == "secret-key")) {
      const bool is_public = name == "public-key";
      auto& seen = is_public ? public_line : secret_line;
      if (seen)
        fail(origin, line_no, std::string(name) + " given twice (also on line " + std::to_string(seen) + ")");
      seen = line_no;
      if (!valid_z85_key(value))
        fail(origin, line_no,
             std::string(name) + " is not a CURVE key: expected 40 Z85 characters, got " +
                 std::to_string(value.size()) + " characters" + (value.size() == 40 ? " outside Z85" : ""));
      (is_public ? cert.public_key : cert.secret_key) = std::move(value);
    }
  }
  if (!public_line)
    fail(origin, 0,
         "no public-key in a `curve` section: not a ZeroMQ certificate (make one with `troupe keygen`)");
  if (need_secret && !secret_line)
    fail(origin, 0,
         "no secret-key: this is a public certificate; give the NAME.key_secret file, not NAME.key");
  if (secret_line) {
    std::array<char, z85_key_size + 1> derived{};
    if (zmq_curve_public(derived.data(), cert.secret_key.c_str()) != 0)
      fail(origin, secret_line, "cannot derive the public key (is ZeroMQ built with CURVE?)");
    if (cert.public_key != std::string_view(derived.data(), z85_key_size))
      fail(origin, secret_line, "secret-key does not belong to public-key");
  }
  return cert;
}

certificate read_certificate(const std::string& path, bool need_secret) {
  if (path.empty()) throw key_error("no certificate file given");
  return parse_certificate(read_file(path), path, need_secret);
}

std::string format_certificate(const certificate& cert, bool with_secret) {
  with_secret = with_secret && !cert.secret_key.empty();
  char date[32] = "?";
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (localtime_r(&now, &tm)) std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  std::string out;
  out += "#   ****  Generated on " + std::string(date) + " by troupe  ****\n";
  if (with_secret) {
    out +=
        "#   ZeroMQ CURVE **Secret** Certificate\n"
        "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n";
  } else {
    out +=
        "#   ZeroMQ CURVE Public Certificate\n"
        "#   Exchange securely, or use a secure mechanism to verify the contents\n"
        "#   of this file after exchange.\n\n";
  }
  out += "metadata\n";
  for (const auto& [k, v] : cert.metadata) out += "    " + k + " = \"" + v + "\"\n";
  out += "curve\n";
  out += "    public-key = \"" + cert.public_key + "\"\n";
  if (with_secret) out += "    secret-key = \"" + cert.secret_key + "\"\n";
  return out;
}

certificate generate() {
  if (!available()) throw key_error("this ZeroMQ library is built without CURVE (libsodium)");
  std::array<char, z85_key_size + 1> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    throw key_error(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()));
  certificate cert;
  cert.public_key.assign(pub.data(), z85_key_size);
  cert.secret_key.assign(sec.data(), z85_key_size);
  return cert;
}

std::pair<std::string, std::string> write_key_pair(const std::string& dir, const std::string& name) {
  if (!valid_key_name(name))
    throw key_error("key name '" + protocol::to_valid_utf8(name) +
                    "' must be 1..64 characters of A-Z a-z 0-9 _ . - and not start with a dot");
  if (dir.empty()) throw key_error("no output directory given");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail(dir, 0, "cannot create: " + errno_text(errno));
  const std::string base = dir + (dir.back() == '/' ? "" : "/") + name;
  const std::string public_path = base + ".key", secret_path = base + ".key_secret";
  for (const auto& p : {public_path, secret_path}) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0) fail(p, 0, "already exists; troupe keygen never overwrites a key");
  }
  auto cert = generate();
  cert.metadata.emplace_back("name", name);
  write_new_file(secret_path, format_certificate(cert, true), 0600);
  try {
    write_new_file(public_path, format_certificate(cert, false), 0644);
  } catch (...) {
    ::unlink(secret_path.c_str());
    throw;
  }
  return {public_path, secret_path};
}

client_keys client_keys::from_environment() {
  client_keys k;
  if (const char* s = std::getenv(secret_env)) k.secret_file = s;
  if (const char* b = std::getenv(broker_key_env)) k.broker_key_file = b;
  return k;
}

client_credentials load(const client_keys& keys) {
  if (keys.secret_file.empty())
    throw key_error("--broker-key is given but --curve-secret is not (or " + std::string(secret_env) +
                    "): CURVE needs both");
  if (keys.broker_key_file.empty())
    throw key_error("--curve-secret is given but --broker-key is not (or " + std::string(broker_key_env) +
                    "): CURVE needs both");
  client_credentials c;
  try {
    const auto own = read_certificate(keys.secret_file, true);
    c.public_key = own.public_key;
    c.secret_key = own.secret_key;
  } catch (const key_error& e) {
    throw key_error(std::string("--curve-secret ") + e.what());
  }
  try {
    c.server_key = read_certificate(keys.broker_key_file, false).public_key;
  } catch (const key_error& e) {
    throw key_error(std::string("--broker-key ") + e.what());
  }
  return c;
}

void configure_client(zmq::socket_t& socket, const client_credentials& credentials) {
  socket.set(zmq::sockopt::curve_serverkey, credentials.server_key);
  socket.set(zmq::sockopt::curve_publickey, credentials.public_key);
  socket.set(zmq::sockopt::curve_secretkey, credentials.secret_key);
}

void configure_server(zmq::socket_t& socket, const certificate& server) {
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, server.secret_key);
  socket.set(zmq::sockopt::zap_domain, "troupe");
}

// ---- handshake_state, handshake_monitor ----------------------------------------

void handshake_state::on_event(std::uint16_t event, std::uint32_t value) {
  const std::string at = "the broker at " + endpoint_;
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      connected_ = true;
      gave_up_ = false;
      failure_.clear();
      return;
    case ZMQ_EVENT_DISCONNECTED:
      connected_ = false;
      return;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      connected_ = false;
      gave_up_ = true;
      failure_ = "authentication failed: " + at + " does not accept this key (ZAP status " +
                 std::to_string(value) +
                 "); its public key must be in the broker's key directory for this role";
      return;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      connected_ = false;
      gave_up_ = true;
      if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        failure_ = curve_
                       ? "authentication failed: " + at +
                             " does not use CURVE (it runs without --curve-secret), but this program has keys"
                       : "authentication failed: " + at +
                             " requires CURVE: give --curve-secret and --broker-key (or " + secret_env +
                             " and " + broker_key_env + ")";
      } else {
        failure_ = "authentication failed: the handshake with " + at + " failed (ZMTP protocol error " +
                   hex(value) + ")";
      }
      return;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      connected_ = false;
      failure_ =
          curve_ ? "authentication failed: " + at +
                       " closed the connection during the CURVE handshake; is the broker key "
                       "(--broker-key) the broker's public key?"
                 : "no broker answering at " + endpoint_ + " (the connection closed during the handshake)";
      return;
    default:
      return;
  }
}

std::string handshake_state::why_unreachable() const {
  return failure_.empty() ? "no broker answering at " + endpoint_ : failure_;
}

namespace {
std::atomic<std::uint64_t> monitor_serial{0};
}  // namespace

handshake_monitor::handshake_monitor(zmq::context_t& ctx, zmq::socket_t& socket, std::string endpoint,
                                     bool curve)
    : watched_(&socket), pair_(ctx, zmq::socket_type::pair), state_(std::move(endpoint), curve) {
  const std::string address = "inproc://troupe-handshake-" + std::to_string(getpid()) + "-" +
                              std::to_string(monitor_serial.fetch_add(1, std::memory_order_relaxed));
  if (zmq_socket_monitor(socket.handle(), address.c_str(), handshake_state::events) != 0)
    throw zmq::error_t();
  pair_.set(zmq::sockopt::linger, 0);
  pair_.connect(address);
}

handshake_monitor::~handshake_monitor() {
  if (watched_->handle()) zmq_socket_monitor(watched_->handle(), nullptr, 0);
}

bool handshake_monitor::poll() noexcept {
  bool any = false;
  try {
    zmq::message_t event, address;
    while (pair_.recv(event, zmq::recv_flags::dontwait)) {
      if (event.more()) (void)pair_.recv(address, zmq::recv_flags::none);
      if (event.size() < 6) continue;
      std::uint16_t id;
      std::uint32_t value;
      std::memcpy(&id, event.data(), sizeof id);
      std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof value);
      state_.on_event(id, value);
      any = true;
    }
  } catch (const std::exception&) {
    // The context is closing, or memory ran out: nothing more to learn.
  }
  return any;
}

}  // namespace troupe::curve
