#include "caller.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace troupe {

caller::caller(const worker_options& options) : opt_(options) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

caller::~caller() {
  close();
  ::close(fd_);
}

client& caller::connection() {
  if (!client_) {
    client_options o;
    o.limits = opt_.limits;
    o.curve = opt_.curve;  // the worker's keys: a CURVE broker must let them request too
    client_ = std::make_unique<client>(opt_.broker, o);
  }
  return *client_;
}

void caller::tell(std::string_view address, std::string_view method, std::string args) {
  connection().tell_raw(address, method, std::move(args));
}

void caller::ask(std::string_view address, std::string_view method, std::string args,
                 const call_options& opts, client::callback done) {
  connection().ask_raw(address, method, std::move(args), opts, std::move(done));
}

void caller::resume_later(std::coroutine_handle<> h) {
  {
    std::lock_guard lock(mu_);
    ready_.push_back(h);
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n =
      ::write(fd_, &one, sizeof one);  // cannot fail short of overflow: 2^64 wakes
}

std::vector<std::coroutine_handle<>> caller::take() {
  std::uint64_t count = 0;
  [[maybe_unused]] const auto n = ::read(fd_, &count, sizeof count);  // resets it; EAGAIN when nothing came
  std::vector<std::coroutine_handle<>> out;
  std::lock_guard lock(mu_);
  out.swap(ready_);
  return out;
}

void caller::close() { client_.reset(); }

}  // namespace troupe
