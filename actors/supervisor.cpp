// The pool supervisor behind `--processes N`: forks N worker processes,
// restarts any that dies (backing off when they keep dying), and turns
// SIGINT/SIGTERM into a graceful stop of all of them.
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
#include <string>
#include <vector>

#include "troupe/worker.hpp"

namespace troupe {
namespace {

using clock = std::chrono::steady_clock;

struct child {
  pid_t pid = 0;  // 0: not running
  clock::time_point started;
  clock::time_point restart_at;
  int quick_deaths = 0;  // consecutive deaths soon after start
};

constexpr auto quick_death = std::chrono::seconds(5);
constexpr auto max_backoff = std::chrono::seconds(5);

void say(const worker_options& opt, const std::string& text) {
  std::fprintf(stderr, "[%s supervisor %d] %s\n", opt.name.c_str(), static_cast<int>(getpid()), text.c_str());
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by ") + strsignal(WTERMSIG(status));
  return "ended";
}

}  // namespace

int run_supervisor(const worker_options& options, const registry& types) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  const int sfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    say(options, std::string("signalfd failed: ") + std::strerror(errno));
    return 1;
  }
  const pid_t self = getpid();
  std::vector<child> children(static_cast<std::size_t>(options.processes));

  auto spawn = [&](std::size_t index) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) {
      say(options, std::string("fork failed: ") + std::strerror(errno));
      children[index].restart_at = clock::now() + max_backoff;
      return;
    }
    if (pid == 0) {
      // A worker must not outlive its supervisor, even one killed with SIGKILL.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != self) _exit(1);
      close(sfd);
      worker_options o = options;
      o.processes = 0;
      o.name = options.name + "-" + std::to_string(index + 1);
      std::fflush(nullptr);
      _exit(run_worker(o, types));
    }
    children[index].pid = pid;
    children[index].started = clock::now();
  };

  for (std::size_t i = 0; i < children.size(); ++i) spawn(i);
  say(options, "started " + std::to_string(children.size()) + " worker process(es)");

  bool stopping = false;
  int exit_code = 0;
  clock::time_point stop_deadline;
  auto running = [&] {
    return std::count_if(children.begin(), children.end(), [](const child& c) { return c.pid != 0; });
  };

  for (;;) {
    if (stopping && running() == 0) break;
    const auto now = clock::now();
    auto wake = now + std::chrono::seconds(1);
    if (stopping) wake = std::min(wake, stop_deadline);
    for (const auto& c : children)
      if (!stopping && c.pid == 0) wake = std::min(wake, c.restart_at);
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count();
    pollfd pfd{sfd, POLLIN, 0};
    poll(&pfd, 1, static_cast<int>(std::max<long long>(wait, 0)));

    signalfd_siginfo info;
    while (read(sfd, &info, sizeof info) == sizeof info) {
      if (info.ssi_signo == SIGCHLD) continue;  // reaped below
      if (!stopping) {
        say(options, std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) +
                         ": stopping all workers");
        stopping = true;
        stop_deadline = clock::now() + options.stop_timeout;
        for (const auto& c : children)
          if (c.pid != 0) kill(c.pid, SIGTERM);
      }
    }

    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      auto it =
          std::find_if(children.begin(), children.end(), [pid](const child& c) { return c.pid == pid; });
      if (it == children.end()) continue;
      it->pid = 0;
      if (stopping) continue;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        // Exit code 2 is a configuration error (the broker refused the
        // registration): a fresh process would be refused again.
        say(options, "worker " + std::to_string(it - children.begin() + 1) +
                         " exited with code 2 (refused); stopping the pool");
        stopping = true;
        exit_code = 2;
        stop_deadline = clock::now() + options.stop_timeout;
        for (const auto& c : children)
          if (c.pid != 0) kill(c.pid, SIGTERM);
        continue;
      }
      const auto lived = clock::now() - it->started;
      it->quick_deaths = lived < quick_death ? it->quick_deaths + 1 : 0;
      const auto backoff = std::min<clock::duration>(
          max_backoff, std::chrono::milliseconds(100) * (1 << std::min(it->quick_deaths, 6)));
      it->restart_at = clock::now() + (it->quick_deaths ? backoff : clock::duration::zero());
      say(options, "worker " + std::to_string(it - children.begin() + 1) + " (pid " + std::to_string(pid) +
                       ") " + describe_exit(status) + "; restarting");
    }

    if (stopping) {
      if (clock::now() >= stop_deadline) {
        for (auto& c : children) {
          if (c.pid == 0) continue;
          say(options, "worker pid " + std::to_string(c.pid) + " did not stop in time; killing it");
          kill(c.pid, SIGKILL);
          waitpid(c.pid, &status, 0);
          c.pid = 0;
        }
        close(sfd);
        return 1;
      }
      continue;
    }
    for (std::size_t i = 0; i < children.size(); ++i)
      if (children[i].pid == 0 && clock::now() >= children[i].restart_at) spawn(i);
  }
  close(sfd);
  say(options, "all workers stopped");
  return exit_code;
}

}  // namespace troupe
