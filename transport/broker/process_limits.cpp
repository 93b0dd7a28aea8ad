// Open files and free memory of the broker process (troupe/process_limits.hpp).
//
// The accept() guard replaces the C library's accept() and accept4() for
// the whole process: libzmq calls them through the dynamic linker, which
// finds the executable's definitions first. They make the same system call
// and behave the same until guard_accept() arms them and a call fails with
// EMFILE or ENFILE.
#include "troupe/process_limits.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace troupe {
namespace {

std::atomic<bool> armed{false};
std::atomic<std::uint64_t> refused{0};
std::mutex reserve_mu;
int reserve_fd = -1;  // guarded by reserve_mu

int open_reserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

int raw_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return static_cast<int>(::syscall(SYS_accept4, fd, addr, len, flags));
}

// Out of descriptors with a connection waiting: free the reserve, take the
// connection with it and close it, take the reserve back. Then libzmq
// hears "nothing to accept", and the listener is quiet until the next
// connection arrives.
int shed(int listener) {
  {
    std::lock_guard lock(reserve_mu);
    if (reserve_fd >= 0) {
      ::close(reserve_fd);
      reserve_fd = -1;
    }
    const int taken = raw_accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (taken >= 0) {
      ::close(taken);
      refused.fetch_add(1, std::memory_order_relaxed);
    }
    reserve_fd = open_reserve();
  }
  errno = EAGAIN;
  return -1;
}

int guarded_accept(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int r = raw_accept4(fd, addr, len, flags);
  if (r >= 0 || !armed.load(std::memory_order_relaxed)) return r;
  if (errno != EMFILE && errno != ENFILE) return r;
  return shed(fd);
}

}  // namespace

open_file_limit raise_open_file_limit() noexcept {
  open_file_limit out;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return out;
  auto value = [](rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(v); };
  out.soft_before = out.soft = value(lim.rlim_cur);
  out.hard = value(lim.rlim_max);
  if (lim.rlim_cur != lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) out.soft = out.hard;
  }
  return out;
}

void guard_accept() noexcept {
  std::lock_guard lock(reserve_mu);
  if (reserve_fd < 0) reserve_fd = open_reserve();
  armed.store(true, std::memory_order_relaxed);
}

std::uint64_t refused_connections() noexcept {
  if (armed.load(std::memory_order_relaxed)) {
    // A reserve lost to a race is taken back as soon as a descriptor is free.
    std::unique_lock lock(reserve_mu, std::try_to_lock);
    if (lock.owns_lock() && reserve_fd < 0) reserve_fd = open_reserve();
  }
  return refused.load(std::memory_order_relaxed);
}

std::uint64_t release_free_memory(std::uint64_t threshold) noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const auto info = ::mallinfo2();
  const std::uint64_t free_bytes = info.fordblks;
  if (free_bytes > threshold) ::malloc_trim(0);
  return free_bytes;
#else
  (void)threshold;
  return 0;
#endif
}

}  // namespace troupe

// The process's accept() and accept4() (see the top of this file).
extern "C" int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return troupe::guarded_accept(fd, addr, len, flags);
}

extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
  return troupe::guarded_accept(fd, addr, len, 0);
}
