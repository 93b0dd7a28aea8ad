#include "call_page.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>

namespace troupe {

void call_page::set_call(const call& c) noexcept {
  seq.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
  request.store(c.request, std::memory_order_relaxed);
  kill_at_ns.store(c.kill_at_ns, std::memory_order_relaxed);
  limit_ms.store(c.limit_ms, std::memory_order_relaxed);
  by_deadline.store(c.by_deadline ? 1 : 0, std::memory_order_relaxed);
  seq.fetch_add(1, std::memory_order_release);  // even: done
}

bool call_page::read_call(call& out) const noexcept {
  const auto before = seq.load(std::memory_order_acquire);
  if (before & 1) return false;
  out.request = request.load(std::memory_order_relaxed);
  out.kill_at_ns = kill_at_ns.load(std::memory_order_relaxed);
  out.limit_ms = limit_ms.load(std::memory_order_relaxed);
  out.by_deadline = by_deadline.load(std::memory_order_relaxed) != 0;
  std::atomic_thread_fence(std::memory_order_acquire);
  return seq.load(std::memory_order_relaxed) == before;
}

void call_page::set_routing_id(std::string_view routing_id) noexcept {
  const auto n = std::min(routing_id.size(), sizeof id);
  id_seq.fetch_add(1, std::memory_order_acq_rel);
  std::memcpy(id, routing_id.data(), n);
  id_size.store(static_cast<std::uint32_t>(n), std::memory_order_relaxed);
  id_seq.fetch_add(1, std::memory_order_release);
}

// Read by the supervisor once the child is dead (no writer left), or while
// it lives (then a torn read is retried).
std::string call_page::routing_id() const {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto before = id_seq.load(std::memory_order_acquire);
    if (before & 1) continue;
    std::string out(id, std::min<std::size_t>(id_size.load(std::memory_order_relaxed), sizeof id));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (id_seq.load(std::memory_order_relaxed) == before) return out;
  }
  return {};
}

std::string call_page::why_killed(const call& c) {
  if (c.by_deadline)
    return "ran " + std::to_string(c.limit_ms) + " ms past its caller's deadline (--deadline-grace-ms)";
  return "ran past its time limit of " + std::to_string(c.limit_ms) + " ms";
}

call_page* map_shared_pages(std::size_t n) {
  void* p = ::mmap(nullptr, sizeof(call_page) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap of the call pages");
  auto* pages = static_cast<call_page*>(p);
  for (std::size_t i = 0; i < n; ++i) new (&pages[i]) call_page();
  return pages;
}

void free_shared_pages(call_page* pages, std::size_t n) noexcept {
  if (pages) ::munmap(pages, sizeof(call_page) * n);
}

}  // namespace troupe
