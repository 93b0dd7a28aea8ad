#include "broker/loop_bounds.hpp"

#include <sys/resource.h>

#include <cerrno>

#include "broker/core.hpp"
#include "troupe/process_limits.hpp"

namespace troupe {

void configure_send_bounds(zmq::socket_t& router, const broker_options& options) {
  // The high-water mark counts messages, whatever their size; it applies to
  // each peer's queue on its own. 0 would be no bound.
  router.set(zmq::sockopt::sndhwm, static_cast<int>(options.send_queue_limit));
  router.set(zmq::sockopt::router_mandatory, 1);
}

bool send_bounded(zmq::socket_t& router, outgoing_message& m) {
  // Whether the message fits is decided at its first frame, the routing id:
  // after it, ZeroMQ takes the message's other frames whatever the bound.
  try {
    if (!router.send(zmq::buffer(m.to), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return false;
    throw;
  }
  const auto header = protocol::header(m.command);
  const bool has_body = !m.meta.empty() || m.has_payload;
  const auto more = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  const auto last = zmq::send_flags::dontwait;
  router.send(zmq::buffer(header), has_body ? more : last);
  if (!has_body) return true;
  router.send(zmq::buffer(m.meta), m.has_payload ? more : last);
  if (m.has_payload) router.send(m.payload, last);
  return true;
}

void unsent_messages::add(const outgoing_message& m) {
  if (size_ == entries_.size()) entries_.emplace_back();
  auto& e = entries_[size_++];
  e.to.assign(m.to);
  e.command = m.command;
  e.meta.assign(m.meta);
}

namespace {

// Free memory malloc may keep after a burst before it is given back.
constexpr std::uint64_t keep_free_bytes = std::uint64_t{32} << 20;

std::string open_file_limit_text() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return "unknown";
  return lim.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(lim.rlim_cur);
}

}  // namespace

void loop_housekeeping::run(broker_core& core, bool idle, clock::time_point now) {
  if (now < next_) return;
  next_ = now + std::chrono::seconds(1);
  const auto refused = refused_connections();
  if (refused != refused_seen_) {
    core.note_refused_connections(refused - refused_seen_);
    refused_seen_ = refused;
  }
  // Said at most every 10 s while it lasts, with how many since last said.
  if (refused_seen_ != refused_logged_ && now >= next_log_ && log_) {
    log_("out of file descriptors (open-file limit " + open_file_limit_text() + "): closed " +
         std::to_string(refused_seen_ - refused_logged_) +
         " new connection(s) at once; the connections already open are served. Raise LimitNOFILE "
         "(docs/operations.md, \"Open files\")");
    refused_logged_ = refused_seen_;
    next_log_ = now + std::chrono::seconds(10);
  }
  if (idle) release_free_memory(keep_free_bytes);
}

}  // namespace troupe
