#include "process.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace troupe::test {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

temp_dir::temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "troupe-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

process::process(std::vector<std::string> argv, const std::filesystem::path& log_dir,
                 const std::string& label)
    : out_(log_dir / (label + ".out")), err_(log_dir / (label + ".err")) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int out = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
}

process::~process() { stop(); }

bool process::running() {
  if (reaped_) return false;
  const pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

void process::signal(int sig) {
  if (running()) kill(pid_, sig);
}

int process::wait_exit(std::chrono::milliseconds timeout) {
  if (eventually([&] { return !running(); }, timeout)) return status_;
  return -1;
}

int process::stop(std::chrono::milliseconds timeout) {
  if (!running()) return status_;
  kill(pid_, SIGTERM);
  if (wait_exit(timeout) != -1) return status_;
  kill(pid_, SIGKILL);
  waitpid(pid_, &status_, 0);
  reaped_ = true;
  return status_;
}

std::string process::out() const { return slurp(out_); }
std::string process::err() const { return slurp(err_); }

std::string process::wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
  std::string found;
  eventually(
      [&] {
        std::istringstream lines(out());
        for (std::string line; std::getline(lines, line);) {
          if (line.rfind(prefix, 0) == 0) {
            found = line.substr(prefix.size());
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string bin(const std::string& name) { return std::string(TROUPE_BIN_DIR) + "/" + name; }

command_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  temp_dir logs;
  command_result result;
  {
    process p(std::move(argv), logs.path(), "cmd");
    const int status = p.wait_exit(timeout);
    if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    result.out = p.out();
    result.err = p.err();
  }
  return result;
}

}  // namespace troupe::test
