// The cost per input of troupe::client::map at 10,000 and 160,000 inputs,
// through the real broker and worker: map must be linear, so the two costs
// should be about equal (target: 160k within 1.5x of 10k).
//
//   troupe-micro-map [--rounds N] [--bin-dir DIR]
//
// It starts `troupe broker` and `troupe-examples-worker` from its own
// directory (or --bin-dir) on an ipc:// endpoint in a temp dir, maps
// squares.square over the inputs, prints microseconds per input and the
// ratio, and stops both children by pid. Every wait is bounded. It prints
// numbers; it does not assert.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "troupe/client.hpp"

namespace {

namespace fs = std::filesystem;
using std::chrono::steady_clock;

// A child process with stdout and stderr in `log`; killed if we die first.
class child {
 public:
  child(std::vector<std::string> argv, const fs::path& log) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  // SIGTERM, then SIGKILL after 10 s: a graceful stop, but never a hang.
  ~child() {
    kill(pid_, SIGTERM);
    const auto give_up = steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (steady_clock::now() >= give_up) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  pid_t pid_ = -1;
};

fs::path own_directory() { return fs::read_symlink("/proc/self/exe").parent_path(); }

// Waits (bounded) until a worker answers squares.square.
bool wait_for_worker(troupe::client& c, std::chrono::seconds timeout) {
  const auto give_up = steady_clock::now() + timeout;
  while (steady_clock::now() < give_up) {
    try {
      if (c.ask<long long>(troupe::call_options{std::chrono::milliseconds(500)}, "squares", "square", 3)
              .get() == 9)
        return true;
    } catch (const troupe::error&) {
      // unknown_actor until the worker has registered
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Microseconds per input of one map over `n` inputs.
double map_cost_us(troupe::client& c, std::size_t n) {
  std::vector<long long> inputs(n);
  for (std::size_t i = 0; i < n; ++i) inputs[i] = static_cast<long long>(i);
  const auto start = steady_clock::now();
  const auto out = c.map<long long>(troupe::map_options{.window = 64}, "squares", "square", inputs);
  const std::chrono::duration<double, std::micro> took = steady_clock::now() - start;
  if (out.size() != n || out.back() != inputs.back() * inputs.back())
    throw std::runtime_error("map returned wrong results");
  return took.count() / static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  fs::path bin = own_directory();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--bin-dir" && i + 1 < argc) {
      bin = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--rounds N] [--bin-dir DIR]\n", argv[0]);
      return 2;
    }
  }

  std::string pattern = (fs::temp_directory_path() / "troupe-micro-map-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = pattern;
  const std::string endpoint = "ipc://" + (dir / "broker.sock").string();
  int rc = 0;
  {
    // Children first: fork before the client starts its thread.
    child broker({(bin / "troupe").string(), "broker", "--listen", endpoint}, dir / "broker.log");
    child worker({(bin / "troupe-examples-worker").string(), "--broker", endpoint}, dir / "worker.log");
    troupe::client c(endpoint);
    if (!wait_for_worker(c, std::chrono::seconds(15))) {
      std::fprintf(stderr, "no worker answered within 15 s (logs in %s)\n", dir.c_str());
      return 1;  // the children are stopped on the way out; the logs stay for reading
    }
    try {
      map_cost_us(c, 1000);  // warm up: connections, the instance, allocator
      std::vector<double> small, large;
      for (int r = 0; r < rounds; ++r) {
        small.push_back(map_cost_us(c, 10'000));
        large.push_back(map_cost_us(c, 160'000));
      }
      const double s = median(small), l = median(large);
      std::printf("map, window 64, squares.square over ipc, median of %d round(s)\n", rounds);
      std::printf("  10,000 inputs:  %8.2f us/input\n", s);
      std::printf("  160,000 inputs: %8.2f us/input\n", l);
      std::printf("  160k / 10k:     %8.2f  (target <= 1.5: %s)\n", l / s, l / s <= 1.5 ? "met" : "missed");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      rc = 1;
    }
  }
  std::error_code ec;
  if (rc == 0) fs::remove_all(dir, ec);
  return rc;
}
