// Test support: real child processes, stopped by pid, with every wait bounded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace troupe::test {

// A directory under /tmp removed when the object goes away.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // An ipc:// endpoint inside the directory.
  std::string ipc(const std::string& name) const { return "ipc://" + (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A child process whose stdout and stderr go to files. The destructor sends
// SIGTERM, waits up to 10 s, then SIGKILLs: nothing outlives the test. The
// child also gets SIGKILL if the test process itself dies.
class process {
 public:
  process(std::vector<std::string> argv, const std::filesystem::path& log_dir, const std::string& label);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for the process to exit; returns its wait status, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  // SIGTERM, then wait; SIGKILL after `timeout`. Returns the wait status.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  std::string out() const;
  std::string err() const;
  // Waits until stdout holds a line starting with `prefix`; returns the rest of it.
  std::string wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::filesystem::path out_, err_;
};

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

std::string bin(const std::string& name);  // path of an executable in build/bin

// Runs a command to completion (bounded), capturing stdout and stderr.
struct command_result {
  int exit_code = -1;  // -1: did not finish in time, or killed by a signal
  std::string out, err;
};
command_result run(std::vector<std::string> argv,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace troupe::test
