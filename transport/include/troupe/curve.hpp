// CURVE keys for troupe's sockets, shared by the broker, the client, the
// worker and the command line: ZeroMQ certificate files (the text format
// that pyzmq's zmq.auth and czmq read and write, so their keys work here),
// new key pairs, setting a socket up as a CURVE client or server, and
// watching a client socket's handshakes so that a refused key becomes a
// clear error instead of silence. docs/security.md is the user's side.
//
// A certificate file (NAME.key public, NAME.key_secret secret):
//
//   #   ZeroMQ CURVE **Secret** Certificate
//   metadata
//       name = "alice"
//   curve
//       public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//       secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
//
// Free functions are thread-safe; a handshake_monitor belongs to the thread
// that owns its socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "troupe/errors.hpp"

namespace troupe::curve {

// A key file or key that cannot be used. what() names the file and says
// what is wrong: "keys/alice.key_secret: line 7: secret-key is not 40 Z85
// characters".
class key_error : public exception {
 public:
  using exception::exception;
};

// A CURVE key in Z85 text is 40 characters (32 bytes).
inline constexpr std::size_t z85_key_size = 40;

// The environment variables read by clients, workers and the CLI.
inline constexpr const char* secret_env = "TROUPE_CURVE_SECRET";
inline constexpr const char* broker_key_env = "TROUPE_BROKER_KEY";

// What a certificate file holds. Keys are Z85 text; secret_key is empty for
// a public certificate. A plain value.
struct certificate {
  std::string public_key;
  std::string secret_key;
  std::vector<std::pair<std::string, std::string>> metadata;  // the `metadata` section, in order
};

// Whether ZeroMQ was built with CURVE (libsodium). Thread-safe, no throw.
bool available() noexcept;

// Whether `key` is 40 characters of the Z85 alphabet. Thread-safe, no throw.
bool valid_z85_key(std::string_view key) noexcept;

// Parses the text of a certificate file: `#` comments, sections `curve`
// and `metadata` (any other section is ignored), `name = value` lines
// indented below them, values quoted with " or ' or bare. `origin` names
// the text in errors. With `need_secret` the text must hold a secret key,
// and it must belong to the public key. Returns the certificate. Throws
// key_error: no public key, a key that is not Z85, a secret key that does
// not match the public key, a line that is not `name = value`, a repeated
// key. Thread-safe.
certificate parse_certificate(std::string_view text, const std::string& origin, bool need_secret);

// Reads a certificate file (at most 64 KiB) and parses it as above. Returns
// the certificate; throws key_error when the file cannot be read (saying
// why) or is malformed. Thread-safe.
certificate read_certificate(const std::string& path, bool need_secret);

// The text of a certificate file as czmq and pyzmq write it, with the
// secret key when `with_secret` (and cert has one). Thread-safe, throws
// only std::bad_alloc.
std::string format_certificate(const certificate& cert, bool with_secret);

// A new key pair from ZeroMQ's generator (libsodium). Returns it with no
// metadata. Throws key_error when ZeroMQ has no CURVE. Thread-safe.
certificate generate();

// `troupe keygen`: writes a new key pair as DIR/NAME.key (public, mode
// 0644) and DIR/NAME.key_secret (secret, mode 0600), creating DIR (0700)
// if needed, with `name` in the metadata. NAME is 1..64 characters of
// [A-Za-z0-9_.-]. Never overwrites a file. Returns the two paths, public
// first. Throws key_error (bad name, a file exists, a write failed, no
// CURVE in ZeroMQ). Thread-safe for distinct files.
std::pair<std::string, std::string> write_key_pair(const std::string& dir, const std::string& name);

// Whether a key name (a key file's name without `.key`) is acceptable:
// 1..64 characters of [A-Za-z0-9_.-], not starting with a dot. No throw.
bool valid_key_name(std::string_view name) noexcept;

// The key files of a client or a worker: its own secret certificate and
// the broker's public certificate. Both empty: CURVE off. A plain value.
struct client_keys {
  std::string secret_file;      // this peer's NAME.key_secret
  std::string broker_key_file;  // the broker's public NAME.key

  bool enabled() const noexcept { return !secret_file.empty() || !broker_key_file.empty(); }
  // $TROUPE_CURVE_SECRET and $TROUPE_BROKER_KEY (unset or empty: ""). No throw
  // beyond std::bad_alloc.
  static client_keys from_environment();
};

// Keys loaded and checked, ready for a socket (Z85). A plain value.
struct client_credentials {
  std::string public_key, secret_key, server_key;
};

// Reads the two files of `keys`. Returns the credentials. Throws key_error
// when only one of the two files is given, or one cannot be used (the
// message names the option: "--curve-secret FILE: ..."). Thread-safe.
client_credentials load(const client_keys& keys);

// Sets `socket` up as a CURVE client of the broker; call before connect().
// Throws zmq::error_t. Not thread-safe for one socket.
void configure_client(zmq::socket_t& socket, const client_credentials& credentials);

// Sets `socket` up as a CURVE server with the broker's secret certificate,
// authenticated through ZAP in domain `troupe`; call before bind(). A ZAP
// handler must be bound in the socket's context first, or ZeroMQ accepts
// every key. Throws zmq::error_t. Not thread-safe for one socket.
void configure_server(zmq::socket_t& socket, const certificate& server);

// What the monitor events of a socket that connects to the broker say
// about it (zmq_socket_monitor with `events`), so that "no broker", "the
// broker refused our key" and "wrong broker key" are told apart. For CURVE
// and plaintext sockets alike. Socket-free: whoever reads the monitor feeds
// it. A plain value; not thread-safe.
class handshake_state {
 public:
  // The events to ask zmq_socket_monitor for.
  static constexpr int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                ZMQ_EVENT_DISCONNECTED;

  // For a socket connecting to `endpoint`; `curve` says whether it uses
  // CURVE (for the wording).
  handshake_state(std::string endpoint, bool curve) : endpoint_(std::move(endpoint)), curve_(curve) {}

  // Takes one monitor event (its number and value). No throw beyond
  // std::bad_alloc.
  void on_event(std::uint16_t event, std::uint32_t value);

  // A handshake succeeded, and no failure or disconnect came after it.
  bool connected() const noexcept { return connected_; }
  // ZeroMQ gave up on the connection (the broker refused our key, or the
  // two sides disagree on CURVE): it will not reconnect by itself, and
  // messages sent on the socket go nowhere. Replace the socket.
  bool gave_up() const noexcept { return gave_up_; }
  // The last handshake failed, and none succeeded since.
  bool failing() const noexcept { return !failure_.empty(); }
  // Why calls cannot get through, in words for an error message:
  // "authentication failed: ..." after a failed handshake, else
  // "no broker answering at ENDPOINT". Throws only std::bad_alloc.
  std::string why_unreachable() const;

 private:
  std::string endpoint_;
  bool curve_;
  bool connected_ = false;
  bool gave_up_ = false;
  std::string failure_;
};

// A handshake_state fed by its own monitor of `socket` (over an inproc
// pair in the socket's context). Belongs to the thread that owns the
// watched socket; destroy it before the socket.
class handshake_monitor {
 public:
  // Starts watching `socket`, before it connects to `endpoint` so that no
  // outcome is missed. Throws zmq::error_t.
  handshake_monitor(zmq::context_t& ctx, zmq::socket_t& socket, std::string endpoint, bool curve);
  ~handshake_monitor();
  handshake_monitor(const handshake_monitor&) = delete;
  handshake_monitor& operator=(const handshake_monitor&) = delete;

  // Reads the events that arrived since the last call; never blocks.
  // Returns true when one did. No throw.
  bool poll() noexcept;
  // The monitor's socket, for a poll loop that wants to wake on events.
  zmq::socket_t& socket() noexcept { return pair_; }

  const handshake_state& state() const noexcept { return state_; }
  bool connected() const noexcept { return state_.connected(); }
  bool gave_up() const noexcept { return state_.gave_up(); }
  std::string why_unreachable() const { return state_.why_unreachable(); }

 private:
  zmq::socket_t* watched_;
  zmq::socket_t pair_;
  handshake_state state_;
};

}  // namespace troupe::curve
