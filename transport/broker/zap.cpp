#include "broker/zap.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "troupe/wire.hpp"

namespace troupe {
namespace {

// ZeroMQ asks the handler bound here about every CURVE handshake in the
// context (RFC 27, ZAP).
constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";
constexpr std::size_t curve_key_bytes = 32;
constexpr int max_log_lines_per_second = 5;

std::string_view text(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

std::string join_path(const std::string& dir, std::string_view file) {
  return dir + (dir.empty() || dir.back() == '/' ? "" : "/") + std::string(file);
}

void load_directory(string_map<key_entry>& keys, const std::string& dir, peer_role role,
                    std::vector<std::string>* warnings) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw curve::key_error(dir + ": cannot read the key directory: " + std::strerror(errno));
  std::vector<std::string> files;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view file = e->d_name;
    if (file.size() > 4 && file.ends_with(".key") && file.front() != '.') files.emplace_back(file);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());  // the same table whatever the directory order
  for (const auto& file : files) {
    const auto path = join_path(dir, file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const auto name = file.substr(0, file.size() - 4);
    if (!curve::valid_key_name(name))
      throw curve::key_error(path +
                             ": a key's file name is its name in logs and in the name policy: "
                             "1..64 characters of A-Z a-z 0-9 _ . -");
    const auto cert = curve::read_certificate(path, false);
    if (!cert.secret_key.empty() && warnings)
      warnings->push_back(path +
                          " holds a secret key too: only public keys (NAME.key) belong in key directories");
    auto [it, added] = keys.try_emplace(cert.public_key, key_entry{name, role});
    if (!added) it->second.roles = it->second.roles | role;
  }
}

}  // namespace

// ---- listening ----------------------------------------------------------------

bool local_only_endpoint(std::string_view endpoint) noexcept {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return true;
  if (!endpoint.starts_with("tcp://")) return false;
  auto rest = endpoint.substr(6);
  if (const auto semi = rest.find(';'); semi != std::string_view::npos) return false;  // source;destination
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  const std::string h(host);
  in_addr a{};
  return inet_pton(AF_INET, h.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

void bind_owner_only(zmq::socket_t& socket, const std::string& endpoint) {
  if (!endpoint.starts_with("ipc://")) {
    socket.bind(endpoint);
    return;
  }
  // The file is created by bind() on this thread: with this umask it is
  // never open to others, not even for a moment. chmod then sets exactly
  // 0600 (a socket needs no execute bit).
  const mode_t old = ::umask(0177);
  try {
    socket.bind(endpoint);
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  const auto bound = socket.get(zmq::sockopt::last_endpoint);
  const auto path = bound.substr(std::min<std::size_t>(bound.size(), 6));
  if (path.empty() || path.front() == '@') return;  // abstract namespace: no file
  if (::chmod(path.c_str(), 0600) != 0)
    throw std::runtime_error("cannot make " + path + " owner-only: " + std::strerror(errno));
}

// ---- key_table -------------------------------------------------------------------

key_table key_table::load(const directories& dirs, std::vector<std::string>* warnings) {
  key_table t;
  if (!dirs.workers.empty()) load_directory(t.keys_, dirs.workers, peer_role::worker, warnings);
  if (!dirs.clients.empty()) load_directory(t.keys_, dirs.clients, peer_role::client, warnings);
  if (!dirs.admins.empty())
    load_directory(t.keys_, dirs.admins, peer_role::admin | peer_role::client, warnings);
  return t;
}

const key_entry* key_table::find(std::string_view z85) const noexcept {
  const auto it = keys_.find(z85);
  return it == keys_.end() ? nullptr : &it->second;
}

std::size_t key_table::count(peer_role role) const noexcept {
  return static_cast<std::size_t>(std::count_if(
      keys_.begin(), keys_.end(), [&](const auto& kv) { return has_role(kv.second.roles, role); }));
}

// ---- authenticator ---------------------------------------------------------------

authenticator::authenticator(zmq::context_t& ctx, const broker_options& opt, log_fn log)
    : opt_(opt), log_(std::move(log)), zap_(ctx, zmq::socket_type::rep) {
  if (opt_.workers_keys.empty() || opt_.clients_keys.empty())
    throw std::runtime_error(
        "--curve-secret needs --workers-keys DIR and --clients-keys DIR: the public keys of the workers and "
        "clients it accepts");
  try {
    server_ = curve::read_certificate(opt_.curve_secret, true);
  } catch (const curve::key_error& e) {
    throw curve::key_error(std::string("--curve-secret ") + e.what());
  }
  struct stat st {};
  if (::stat(opt_.curve_secret.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    log_("warning: " + opt_.curve_secret + " is readable by other users; make it owner-only (chmod 600)");
  load();
  zap_.set(zmq::sockopt::linger, 0);
  zap_.bind(zap_endpoint);
  std::string line =
      "CURVE on: " + std::to_string(keys_.count(peer_role::worker)) + " worker key(s), " +
      std::to_string(keys_.count(peer_role::client)) + " client key(s), " +
      (opt_.admins_keys.empty() ? std::string("no admin keys (every client may manage)")
                                : std::to_string(keys_.count(peer_role::admin)) + " admin key(s)");
  if (policy_)
    line += ", name policy " + opt_.name_policy + " (" + std::to_string(policy_->rules()) + " rules)";
  log_(line);
}

authenticator::~authenticator() = default;

void authenticator::configure(zmq::socket_t& router) const { curve::configure_server(router, server_); }

std::vector<authenticator::stamp> authenticator::stamps() const {
  std::vector<stamp> out;
  for (const auto* path : {&opt_.workers_keys, &opt_.clients_keys, &opt_.admins_keys, &opt_.name_policy}) {
    stamp s;
    struct stat st {};
    if (!path->empty() && ::stat(path->c_str(), &st) == 0) {
      s.exists = true;
      s.mtime = st.st_mtim;
    }
    out.push_back(s);
  }
  return out;
}

void authenticator::load() {
  // Stamps first: a change made while reading is seen at the next check.
  auto new_stamps = stamps();
  std::vector<std::string> warnings;
  auto keys = key_table::load({opt_.workers_keys, opt_.clients_keys, opt_.admins_keys}, &warnings);
  std::shared_ptr<const name_policy> policy;
  if (!opt_.name_policy.empty()) {
    try {
      policy = std::make_shared<const name_policy>(name_policy::read(opt_.name_policy));
    } catch (const policy_error& e) {
      throw policy_error(std::string("--name-policy ") + e.what());
    }
  }
  for (const auto& w : warnings) log_("warning: " + w);
  keys_ = std::move(keys);
  policy_ = std::move(policy);
  stamps_ = std::move(new_stamps);
  last_user_.clear();
  last_entry_ = nullptr;
  ++generation_;
}

bool authenticator::reload(bool forced) {
  if (!forced && stamps() == stamps_) return false;
  try {
    load();
  } catch (const std::exception& e) {
    stamps_ = stamps();  // not again at every handshake; the next change or SIGHUP tries again
    log_(std::string("keys not reloaded, keeping the previous ones: ") + e.what());
    return false;
  }
  log_("keys reloaded: " + std::to_string(keys_.count(peer_role::worker)) + " worker, " +
       std::to_string(keys_.count(peer_role::client)) + " client, " +
       std::to_string(keys_.count(peer_role::admin)) + " admin key(s)" +
       (policy_ ? ", name policy " + std::to_string(policy_->rules()) + " rules" : std::string()));
  return true;
}

void authenticator::answer(zmq::message_t& request_id, bool ok, std::string_view user_id) {
  zap_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
  zap_.send(request_id, zmq::send_flags::sndmore);
  zap_.send(ok ? zmq::str_buffer("200") : zmq::str_buffer("400"), zmq::send_flags::sndmore);
  zap_.send(ok ? zmq::str_buffer("OK") : zmq::str_buffer("unknown key"), zmq::send_flags::sndmore);
  zap_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
  zap_.send(zmq::str_buffer(""), zmq::send_flags::none);  // no metadata beyond User-Id
}

std::size_t authenticator::serve() {
  std::size_t refused = 0;
  bool checked = false;
  // version, request id, domain, address, routing id, mechanism, public key
  std::array<zmq::message_t, 7> f;
  for (std::size_t n; (n = wire::receive(zap_, f)) > 0;) {
    if (!checked) {
      reload(false);
      checked = true;
    }
    std::string z85;
    const key_entry* entry = nullptr;
    if (n == 7 && text(f[0]) == "1.0" && text(f[2]) == "troupe" && text(f[5]) == "CURVE" &&
        f[6].size() == curve_key_bytes) {
      z85.resize(curve::z85_key_size + 1);
      if (zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(f[6].data()), curve_key_bytes)) {
        z85.resize(curve::z85_key_size);
        entry = keys_.find(z85);
      }
    }
    // A REP socket must answer every request, even one it cannot read.
    zmq::message_t none;
    answer(n >= 2 ? f[1] : none, entry != nullptr, entry ? std::string_view(z85) : std::string_view());
    if (entry) continue;
    ++refused;
    const auto now = std::chrono::steady_clock::now();
    if (now - log_window_ >= std::chrono::seconds(1)) {
      log_window_ = now;
      logged_in_window_ = 0;
    }
    if (logged_in_window_ >= max_log_lines_per_second) {
      ++left_out_;
      continue;
    }
    ++logged_in_window_;
    const auto from = n >= 4 && f[3].size() ? std::string(text(f[3])) : std::string("a local peer");
    std::string line = "refused a CURVE handshake from " + protocol::to_valid_utf8(from) + ": ";
    line += z85.size() == curve::z85_key_size ? "key " + z85 + " is in none of the key directories"
                                              : std::string("malformed ZAP request");
    if (left_out_) line += " (and " + std::to_string(left_out_) + " more not logged)";
    left_out_ = 0;
    log_(line);
  }
  return refused;
}

peer authenticator::identify(std::string_view id, const zmq::message_t& frame) {
  const char* user = zmq_msg_gets(frame.handle(), "User-Id");
  if (!user) return {id, peer_role::none, {}};
  const std::string_view u(user);
  if (!last_entry_ || u != last_user_) {
    last_entry_ = keys_.find(u);
    last_user_.assign(u);
  }
  if (!last_entry_) return {id, peer_role::none, {}};
  return {id, last_entry_->roles, last_entry_->name};
}

}  // namespace troupe
