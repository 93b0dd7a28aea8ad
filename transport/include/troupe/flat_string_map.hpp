// An open-addressing hash map from std::string to V, for the two lookups
// that run once per keyed request with up to millions of entries: the
// broker's key placements and the worker's live instances.
//
// Why not std::unordered_map: libstdc++'s node-based table costs three
// dependent cache misses per lookup once it outgrows the caches (the bucket
// array, the node before the bucket's first node, the node itself; see
// docs/performance.md). Here the hash, the key and the value sit together in
// one slot of a flat array, and collisions probe the next slots, so a
// lookup of a present key usually touches one cache line (two when a slot
// straddles lines, one more for a key longer than std::string's 15-byte
// inline buffer); a lookup that misses probes a few neighbouring slots.
//
// Unlike std::unordered_map, insert() may move every entry: pointers from
// find() are valid only until the next insert(), erase() or erase_if().
//
// The table shrinks when it is mostly empty (erase, erase_if), so memory
// follows the entries: a million keys released give their slots back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/mman.h>

namespace troupe {

// The allocator of flat_string_map's slot array. An array of 2 MiB or more
// (about 40,000 keys and up) is mapped on its own and advised to use
// transparent huge pages: the lookups of a large table land at random, and
// on 4 KiB pages each cache miss was a TLB miss as well (100,000 keys went
// from 0.77 to 0.83 x one key with huge pages, docs/performance.md). Linux
// aligns anonymous mappings of that size to 2 MiB, and THP's default mode on
// Debian is "madvise", which this asks for. The memory goes back to the
// system as soon as the array is freed (munmap).
template <class T>
struct table_allocator {
  using value_type = T;
  static constexpr std::size_t huge = std::size_t{2} << 20;

  table_allocator() = default;
  template <class U>
  table_allocator(const table_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge) return std::allocator<T>{}.allocate(n);
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP it is plain pages
#endif
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge) return std::allocator<T>{}.deallocate(p, n);
    munmap(p, bytes);
  }
  friend bool operator==(const table_allocator&, const table_allocator&) noexcept { return true; }
};

template <class V>  // V: default-constructible and movable
class flat_string_map {
 public:
  flat_string_map() = default;
  flat_string_map(flat_string_map&& o) noexcept
      : slots_(std::move(o.slots_)), mask_(std::exchange(o.mask_, 0)), size_(std::exchange(o.size_, 0)) {}
  flat_string_map& operator=(flat_string_map&& o) noexcept {
    slots_ = std::move(o.slots_);
    mask_ = std::exchange(o.mask_, 0);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }
  // The value stored under `key`, or nullptr.
  V* find(std::string_view key) noexcept {
    if (size_ == 0) return nullptr;
    const auto tag = tag_of(key);
    for (std::size_t i = tag & mask_;; i = (i + 1) & mask_) {
      auto& s = slots_[i];
      if (s.tag == 0) return nullptr;
      if (s.tag == tag && s.key == key) return &s.value;
    }
  }

  // Adds `key`, which must not be present, and returns its value.
  V& insert(std::string_view key, V value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();  // load factor at most 3/4
    const auto tag = tag_of(key);
    auto& s = slots_[free_slot_for(tag)];
    s.key.assign(key);  // may throw; the slot is still empty until the tag is set
    s.value = std::move(value);
    s.tag = tag;
    ++size_;
    return s.value;
  }

  // Removes `key`; returns whether it was present. O(1) on average:
  // later entries of its probe run move back into the hole (backward-shift
  // deletion), so no tombstones slow later lookups. Halves the table when
  // it is less than 1/8 full.
  bool erase(std::string_view key) {
    if (size_ == 0) return false;
    const auto tag = tag_of(key);
    std::size_t i = tag & mask_;
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].tag == 0) return false;
      if (slots_[i].tag == tag && slots_[i].key == key) break;
    }
    for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      auto& next = slots_[j];
      if (next.tag == 0) break;
      // `next` may fill the hole at i unless its home lies cyclically in (i, j].
      const std::size_t home = next.tag & mask_;
      if (((j - home) & mask_) < ((j - i) & mask_)) continue;
      slots_[i] = std::move(next);
      i = j;
    }
    slots_[i] = slot{};
    --size_;
    if (slots_.size() > 16 && size_ * 8 < slots_.size()) rehash(slots_.size() / 2);
    return true;
  }

  // Removes every entry for which pred(key, value) is true; returns how many.
  // Rebuilds the table, as small as the entries left allow: O(capacity),
  // for rare bulk removals (a lost worker). `pred` is called twice per
  // entry and must answer the same both times.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    std::size_t left = 0;
    for (auto& s : slots_)
      if (s.tag != 0 && !pred(std::string_view(s.key), s.value)) ++left;
    const auto before = size_;
    slot_vector old(capacity_for(left));  // allocate before touching the table
    old.swap(slots_);
    mask_ = slots_.empty() ? 0 : slots_.size() - 1;
    size_ = 0;
    for (auto& s : old) {
      if (s.tag == 0 || pred(std::string_view(s.key), s.value)) continue;
      slots_[free_slot_for(s.tag)] = std::move(s);
      ++size_;
    }
    return before - size_;
  }

  // Calls fn(key, value) for every entry, in no particular order.
  template <class Fn>
  void for_each(Fn fn) {
    for (auto& s : slots_)
      if (s.tag != 0) fn(std::string_view(s.key), s.value);
  }
  template <class Fn>
  void for_each(Fn fn) const {
    for (const auto& s : slots_)
      if (s.tag != 0) fn(std::string_view(s.key), s.value);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept {
    slots_ = slot_vector();
    size_ = 0;
    mask_ = 0;
  }

 private:
  struct slot {
    std::uint64_t tag = 0;  // 0: empty; else the key's hash with the top bit set
    std::string key;
    V value{};
  };
  using slot_vector = std::vector<slot, table_allocator<slot>>;

  static std::uint64_t tag_of(std::string_view key) noexcept {
    return std::uint64_t{std::hash<std::string_view>{}(key)} | (std::uint64_t{1} << 63);
  }

  // The first empty slot on `tag`'s probe sequence; the table has one.
  std::size_t free_slot_for(std::uint64_t tag) const noexcept {
    std::size_t i = tag & mask_;
    while (slots_[i].tag != 0) i = (i + 1) & mask_;
    return i;
  }

  void grow() { rehash(slots_.empty() ? 16 : slots_.size() * 2); }

  // The fewest slots (none, or a power of two from 16) holding n entries at
  // a load factor of at most 3/4.
  static std::size_t capacity_for(std::size_t n) {
    if (n == 0) return 0;
    std::size_t capacity = 16;
    while (n * 4 > capacity * 3) capacity *= 2;
    return capacity;
  }

  // Moves every entry into a table of `capacity` slots (a power of two that
  // holds them at a load factor of at most 3/4).
  void rehash(std::size_t capacity) {
    slot_vector old(capacity);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (auto& s : old)
      if (s.tag != 0) slots_[free_slot_for(s.tag)] = std::move(s);
  }

  slot_vector slots_;  // size is zero or a power of two
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace troupe
