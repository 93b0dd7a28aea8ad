// The broker's side of CURVE (docs/security.md): its own certificate, the
// key directories that say who may connect and in which role, the ZAP
// handler that ZeroMQ asks at every handshake, and which key sent each
// received message. Also the rules for listening: no plaintext beyond this
// host without --insecure, and an ipc:// socket file readable and
// writable by its owner only.
//
// The broker's socket loop drives all of it on its own thread; nothing here
// is thread-safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "broker/name_policy.hpp"
#include "broker/peer.hpp"
#include "troupe/broker.hpp"
#include "troupe/curve.hpp"
#include "troupe/string_map.hpp"

namespace troupe {

// Whether plaintext on `endpoint` stays on this host: tcp on a loopback
// address (127.0.0.0/8, [::1], localhost), ipc:// or inproc://. No throw.
bool local_only_endpoint(std::string_view endpoint) noexcept;

// Binds `socket` to `endpoint`; an ipc:// socket file is created with mode
// 0600 (owner only), so other local users cannot connect. Throws
// zmq::error_t, or std::runtime_error when the file mode cannot be set.
void bind_owner_only(zmq::socket_t& socket, const std::string& endpoint);

// A key the broker accepts: the name of its file and the roles of the
// directories it is in.
struct key_entry {
  std::string name;
  peer_role roles = peer_role::none;
};

// The public keys in the role directories (every NAME.key file), by Z85
// public key. An immutable value once loaded.
class key_table {
 public:
  struct directories {
    std::string workers, clients, admins;  // empty: no such directory
  };
  // Reads every NAME.key in the directories. A key in several directories
  // has all their roles and the name of its first file (workers, clients,
  // admins); an admin key is a client key too. Returns the table and, in
  // `warnings`, what deserves a log line. Throws curve::key_error for a
  // directory that cannot be read or a key file that is malformed.
  static key_table load(const directories& dirs, std::vector<std::string>* warnings = nullptr);

  // The key with this Z85 public key, or null. No throw.
  const key_entry* find(std::string_view z85) const noexcept;
  std::size_t size() const noexcept { return keys_.size(); }
  // How many keys have `role`.
  std::size_t count(peer_role role) const noexcept;

 private:
  string_map<key_entry> keys_;
};

class authenticator {
 public:
  using log_fn = std::function<void(const std::string&)>;

  // Reads the broker's secret certificate, the key directories and the
  // name policy of `opt`, and binds the ZAP handler in `ctx` (before any
  // CURVE server socket of that context accepts a connection). Throws
  // std::runtime_error (curve::key_error, policy_error) naming the option
  // and the file at fault.
  authenticator(zmq::context_t& ctx, const broker_options& opt, log_fn log);
  ~authenticator();
  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  // Makes `router` a CURVE server authenticated here; before bind().
  // Throws zmq::error_t.
  void configure(zmq::socket_t& router) const;

  // The ZAP handler's socket, for the loop's poll.
  zmq::socket_t& zap_socket() { return zap_; }

  // Answers every waiting ZAP request: 200 with the key's Z85 as User-Id
  // for a key in a directory, 400 otherwise. First reads the directories
  // again if one changed on disk, so a key file added or removed counts
  // from the next handshake on. Returns how many handshakes it refused.
  // Never throws for bad requests.
  std::size_t serve();

  // Who sent a message: its key's roles and name, read from the ZAP
  // User-Id in the metadata of `frame` (any frame of the message after
  // the routing id). A key no longer in any directory has no role: its
  // open connections are refused from the next reload on. The views are
  // valid until the next serve() or reload().
  peer identify(std::string_view id, const zmq::message_t& frame);

  // Reads the directories and the policy again: always when `forced`
  // (SIGHUP), else only if one of them changed on disk. On error keeps
  // what it had and logs why. Returns true when it loaded something.
  bool reload(bool forced);

  // The current name policy, or null. Changes only in reload().
  std::shared_ptr<const name_policy> policy() const { return policy_; }
  // Incremented by every successful reload.
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  struct stamp {
    bool exists = false;
    struct timespec mtime {};
    bool operator==(const stamp& o) const {
      return exists == o.exists && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
    }
  };
  std::vector<stamp> stamps() const;
  void load();
  void answer(zmq::message_t& request_id, bool ok, std::string_view user_id);

  const broker_options opt_;
  log_fn log_;
  curve::certificate server_;
  zmq::socket_t zap_;
  key_table keys_;
  std::shared_ptr<const name_policy> policy_;
  std::vector<stamp> stamps_;
  std::uint64_t generation_ = 0;

  // identify()'s last answer: consecutive messages mostly come from the
  // same peer, and comparing 40 bytes is cheaper than hashing them.
  std::string last_user_;
  const key_entry* last_entry_ = nullptr;

  // Refused handshakes are logged at most a few times a second.
  std::chrono::steady_clock::time_point log_window_;
  int logged_in_window_ = 0;
  std::uint64_t left_out_ = 0;
};

}  // namespace troupe
