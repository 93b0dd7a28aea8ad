// The pool supervisor behind `--processes N`: forks N worker processes,
// restarts any that dies (backing off when they keep dying), and turns
// SIGINT/SIGTERM into a graceful stop of all of them. It also keeps each
// process within its bounds (docs/operations.md, "Limits"):
// - a call running past its time limit (or its deadline plus a grace) is
//   seen on the process's call page: the process is killed and replaced;
// - a process over --max-rss is asked to drain and is replaced (one that
//   reached --max-requests drains by itself);
// - the broker hears at once of every process that dies or is killed, from
//   the notifier (notifier.hpp), instead of after missed heartbeats.
//
// It forks before any thread or ZeroMQ context exists in this process, so
// each child starts clean and builds its own actor instances lazily.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "call_page.hpp"
#include "notifier.hpp"
#include "troupe/log.hpp"
#include "troupe/worker.hpp"
#include "worker_limits.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

constexpr auto quick_death = std::chrono::seconds(5);
constexpr auto max_backoff = std::chrono::seconds(5);
constexpr auto watch_interval = std::chrono::milliseconds(50);  // time limits are kept to about this
constexpr auto rss_interval = std::chrono::seconds(1);

// As the workers' lines (worker.cpp): text, or the JSON fields of every
// troupe program with --log-format json.
void say(const worker_options& opt, const std::string& text) {
  constexpr std::string_view error_prefix = "error: ";
  const bool error = text.starts_with(error_prefix);
  const auto level = error ? log::level::error : log::level::info;
  if (!log::enabled(level)) return;
  if (log::configured_format() == log::format::json) {
    log::write(level, "supervisor", error ? std::string_view(text).substr(error_prefix.size()) : text,
               {{"worker", opt.name}});
    return;
  }
  std::fprintf(stderr, "[%s supervisor %d] %s\n", opt.name.c_str(), static_cast<int>(getpid()), text.c_str());
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "ended";
}

// Resident memory of a process in MB, from /proc (0 when unreadable).
std::uint64_t rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / (1024 * 1024);
}

struct child {
  pid_t pid = 0;  // 0: not running
  clock::time_point started;
  clock::time_point restart_at;
  int quick_deaths = 0;  // consecutive deaths soon after start
  // Set when the supervisor killed it: the broker is told which ask was stuck.
  std::optional<worker_limits::verdict> killed;
  bool asked_to_recycle = false;
};

class pool {
 public:
  pool(const worker_options& options, const registry& types)
      : opt_(options), types_(types), children_(static_cast<std::size_t>(options.processes)) {}

  ~pool() { free_shared_pages(pages_, children_.size()); }

  int run();

 private:
  void spawn(std::size_t index);
  void on_signals();
  void begin_stop(int code);
  void reap();
  void on_death(child& c, std::size_t index, int status);
  void watch_limits(clock::time_point now);
  void kill_overdue(std::size_t index);
  bool stop_overdue();
  std::size_t running() const {
    return static_cast<std::size_t>(
        std::count_if(children_.begin(), children_.end(), [](const child& c) { return c.pid != 0; }));
  }

  const worker_options& opt_;
  const registry& types_;
  std::vector<child> children_;
  call_page* pages_ = nullptr;
  notifier notices_;
  int sfd_ = -1;
  pid_t self_ = 0;
  bool stopping_ = false;
  int exit_code_ = 0;
  clock::time_point stop_deadline_;
  clock::time_point next_rss_;
};

void pool::spawn(std::size_t index) {
  new (&pages_[index]) call_page();  // a fresh page for a fresh process
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    say(opt_, std::string("fork failed: ") + std::strerror(errno));
    children_[index].restart_at = clock::now() + max_backoff;
    return;
  }
  if (pid == 0) {
    // A worker must not outlive its supervisor, even one killed with SIGKILL.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != self_) _exit(1);
    close(sfd_);
    notices_.close_in_child();
    worker_options o = opt_;
    o.processes = 0;
    o.name = opt_.name + "-" + std::to_string(index + 1);
    std::fflush(nullptr);
    _exit(run_pool_worker(o, types_, &pages_[index]));
  }
  auto& c = children_[index];
  c.pid = pid;
  c.started = clock::now();
  c.killed.reset();
  c.asked_to_recycle = false;
}

void pool::begin_stop(int code) {
  stopping_ = true;
  exit_code_ = code;
  stop_deadline_ = clock::now() + opt_.stop_timeout;
  for (const auto& c : children_)
    if (c.pid != 0) kill(c.pid, SIGTERM);
}

void pool::on_signals() {
  signalfd_siginfo info;
  while (read(sfd_, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGCHLD || stopping_) continue;  // children are reaped below
    say(opt_,
        std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) + ": stopping all workers");
    begin_stop(0);
  }
}

void pool::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == notices_.pid()) {
      say(opt_, "the notifier " + describe_exit(status) + "; starting another");
      notices_.lost();
      notices_ = notifier::start(opt_, say);
      continue;
    }
    const auto it =
        std::find_if(children_.begin(), children_.end(), [pid](const child& c) { return c.pid == pid; });
    if (it != children_.end()) on_death(*it, static_cast<std::size_t>(it - children_.begin()), status);
  }
}

// Tells the broker unless the process left it cleanly (it drained, or was
// refused), and plans the restart.
void pool::on_death(child& c, std::size_t index, int status) {
  const pid_t pid = c.pid;
  c.pid = 0;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const bool clean = code == 0 || code == 2 || code == exit_recycled;
  if (!clean) {
    const auto why = c.killed ? c.killed->why : "its process " + describe_exit(status);
    notices_.gone(pages_[index].routing_id(), c.killed ? c.killed->stuck : 0, why);
  }
  if (stopping_) return;
  const auto label = "worker " + std::to_string(index + 1);
  if (code == 2) {
    // Exit code 2 is a configuration error (the broker refused the
    // registration): a fresh process would be refused again.
    say(opt_, label + " exited with code 2 (refused); stopping the pool");
    return begin_stop(2);
  }
  const bool planned = code == exit_recycled || c.killed;
  const auto lived = clock::now() - c.started;
  c.quick_deaths = planned ? 0 : (lived < quick_death ? c.quick_deaths + 1 : 0);
  const auto backoff = std::min<clock::duration>(
      max_backoff, std::chrono::milliseconds(100) * (1 << std::min(c.quick_deaths, 6)));
  c.restart_at = clock::now() + (c.quick_deaths ? backoff : clock::duration::zero());
  const auto what = code == exit_recycled ? std::string("was recycled")
                    : c.killed            ? "was killed: a call " + c.killed->why
                                          : describe_exit(status);
  say(opt_, label + " (pid " + std::to_string(pid) + ") " + what + "; restarting");
}

void pool::kill_overdue(std::size_t index) {
  auto& c = children_[index];
  call_page::call call;
  if (c.killed || !pages_[index].read_call(call) || call.kill_at_ns == 0) return;
  if (call_page::ns(clock::now()) < call.kill_at_ns) return;
  c.killed = worker_limits::verdict{call.request, call_page::why_killed(call)};
  kill(c.pid, SIGKILL);  // it runs user code: only SIGKILL ends it now
}

void pool::watch_limits(clock::time_point now) {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].pid != 0) kill_overdue(i);
  if (opt_.max_rss_mb == 0 || now < next_rss_) return;
  next_rss_ = now + rss_interval;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    auto& c = children_[i];
    if (c.pid == 0 || c.asked_to_recycle || rss_mb(c.pid) <= opt_.max_rss_mb) continue;
    c.asked_to_recycle = true;
    pages_[i].recycle.store(1, std::memory_order_relaxed);
  }
}

// Past the stop timeout: kill what still runs, and say so to the broker.
bool pool::stop_overdue() {
  if (clock::now() < stop_deadline_) return false;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    auto& c = children_[i];
    if (c.pid == 0) continue;
    say(opt_, "worker pid " + std::to_string(c.pid) + " did not stop in time; killing it");
    kill(c.pid, SIGKILL);
    int status = 0;
    waitpid(c.pid, &status, 0);
    c.pid = 0;
    notices_.gone(pages_[i].routing_id(), 0,
                  "it did not stop within --stop-timeout-ms " + std::to_string(opt_.stop_timeout.count()));
  }
  return true;
}

int pool::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  sfd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd_ < 0) {
    say(opt_, std::string("signalfd failed: ") + std::strerror(errno));
    return 1;
  }
  self_ = getpid();
  pages_ = map_shared_pages(children_.size());
  notices_ = notifier::start(opt_, say);  // before any worker: its pipe is not theirs
  for (std::size_t i = 0; i < children_.size(); ++i) spawn(i);
  say(opt_, "started " + std::to_string(children_.size()) + " worker process(es)");
  for (;;) {
    if (stopping_ && running() == 0) break;
    const auto now = clock::now();
    auto wake = now + watch_interval;
    if (stopping_) wake = std::min(wake, stop_deadline_);
    pollfd pfd{sfd_, POLLIN, 0};
    poll(&pfd, 1,
         static_cast<int>(std::max<long long>(
             std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count(), 0)));
    on_signals();
    reap();
    watch_limits(clock::now());
    if (stopping_) {
      if (stop_overdue()) {
        exit_code_ = 1;
        break;
      }
      continue;
    }
    for (std::size_t i = 0; i < children_.size(); ++i)
      if (children_[i].pid == 0 && clock::now() >= children_[i].restart_at) spawn(i);
  }
  notices_.finish(std::chrono::milliseconds(2000));
  close(sfd_);
  if (exit_code_ != 1) say(opt_, "all workers stopped");
  return exit_code_;
}

}  // namespace

int run_supervisor(const worker_options& options, const registry& types) {
  pool p(options, types);
  return p.run();
}

}  // namespace troupe
