// A worker for the durability tests and figures (issue 11): `journal`
// appends one line per execution to the file named by $TROUPE_JOURNAL, so a
// test can count what ran, how often, and in which instance, whatever
// happened to the processes since:
//
//   new ADDRESS PID              an instance was built
//   add ADDRESS TAG PID COUNT    add(TAG) ran; COUNT: this instance's adds so far
//   del ADDRESS PID              an instance was destroyed
//   fail flaky TAG PID MS        flaky.fail(TAG) ran at MS (steady clock) and threw
//
// Lines are short single write()s on an O_APPEND descriptor: whole, in
// order, even when several processes write at once.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "troupe/actor.hpp"
#include "troupe/worker.hpp"

namespace {

void journal_line(const std::string& line) {
  static const int fd = [] {
    const char* path = std::getenv("TROUPE_JOURNAL");
    return path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
  }();
  if (fd < 0) return;
  const std::string l = line + "\n";
  [[maybe_unused]] auto n = write(fd, l.data(), l.size());
}

std::string pid() { return std::to_string(getpid()); }

class journal {
 public:
  explicit journal(const troupe::context& ctx) : address_(ctx.address()) {
    journal_line("new " + address_ + " " + pid());
  }
  ~journal() { journal_line("del " + address_ + " " + pid()); }
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  std::int64_t add(const std::string& tag) {
    ++count_;
    journal_line("add " + address_ + " " + tag + " " + pid() + " " + std::to_string(count_));
    return count_;
  }
  // add, after sleeping `ms`: a busy worker.
  std::int64_t slow_add(const std::string& tag, int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return add(tag);
  }
  std::int64_t get() const { return count_; }
  std::int64_t pid_of() const { return getpid(); }
  // Kills its own process, every time: a poison message.
  std::int64_t crash(const std::string& tag) {
    journal_line("crash " + address_ + " " + tag + " " + pid());
    _exit(7);
  }

 private:
  std::string address_;
  std::int64_t count_ = 0;
};

const troupe::actor<journal> journal_actor{"journal",
                                           troupe::method("add", &journal::add),
                                           troupe::method("slow_add", &journal::slow_add),
                                           troupe::method("get", &journal::get),
                                           troupe::method("pid", &journal::pid_of),
                                           troupe::method("crash", &journal::crash)};

// Always fails, journaling each run with its time in milliseconds: the
// retry tests read the gaps between runs.
class flaky {
 public:
  std::int64_t fail(const std::string& tag) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count();
    journal_line("fail flaky " + tag + " " + pid() + " " + std::to_string(ms));
    throw std::runtime_error("failed on purpose");
  }
};

const troupe::actor<flaky> flaky_actor{"flaky", troupe::method("fail", &flaky::fail)
                                                    .retry({.attempts = 3,
                                                            .backoff = std::chrono::milliseconds(200),
                                                            .max_backoff = std::chrono::milliseconds(1000),
                                                            .on = {troupe::protocol::status::actor_error}})};

}  // namespace

int main(int argc, char** argv) { return troupe::worker_main(argc, argv); }
