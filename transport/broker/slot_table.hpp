// A table of T with stable indices and generation-checked 64-bit ids.
// Ids stay below 2^63: generations use 31 bits, so that a worker whose
// MessagePack library writes every integer as a signed int64 can echo them.
//
// The broker hands a worker the id of a request's slot and later finds the
// slot again from the id in the worker's REPLY. A slot is reused once its
// request ends, so the id carries the slot's generation too: a late, stale
// or forged id whose generation does not match finds nothing instead of a
// newer request. Lookups are O(1) and allocate nothing; freed slots are
// reused most recent first, so a busy broker keeps touching warm memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace troupe {

template <class T>  // T: default-constructible
class slot_table {
 public:
  using id_type = std::uint64_t;
  static constexpr std::uint32_t no_index = 0xffffffff;

  static constexpr std::uint32_t max_generation = 0x7fffffff;

  // `first_generation`: the generation of every new slot. A broker starts
  // from a random one, so that ids it issued before a restart (which its
  // workers may still answer) name nothing in the next run. Only its low 31
  // bits count, and 0 counts as 1.
  explicit slot_table(std::uint32_t first_generation = 1)
      : first_generation_(first_generation & max_generation) {
    if (first_generation_ == 0) first_generation_ = 1;
  }

  // Takes a free slot (growing the table when none is free) and returns its
  // index. The slot's value is whatever its last user left there: callers
  // reset what they use, so buffers inside T keep their capacity.
  std::uint32_t acquire() {
    std::uint32_t i;
    if (free_.empty()) {
      cells_.emplace_back();
      cells_.back().generation = first_generation_;
      i = static_cast<std::uint32_t>(cells_.size() - 1);
    } else {
      i = free_.back();
      free_.pop_back();
    }
    cells_[i].live = true;
    ++live_;
    return i;
  }

  // Frees slot `i`: ids issued for it before no longer find it.
  void release(std::uint32_t i) {
    auto& c = cells_[i];
    c.live = false;
    if (++c.generation > max_generation) c.generation = 1;  // no id is ever 0 or >= 2^63
    --live_;
    free_.push_back(i);
  }

  // The id naming slot `i` in its current generation. Never 0, below 2^63.
  id_type id_of(std::uint32_t i) const { return (static_cast<id_type>(cells_[i].generation) << 32) | i; }
  static std::uint32_t index_of(id_type id) { return static_cast<std::uint32_t>(id & 0xffffffff); }

  // The live slot that `id` names, or nullptr (freed, reused, or never issued).
  T* find(id_type id) { return const_cast<T*>(std::as_const(*this).find(id)); }
  const T* find(id_type id) const {
    const auto i = index_of(id);
    if (i >= cells_.size()) return nullptr;
    const auto& c = cells_[i];
    if (!c.live || c.generation != static_cast<std::uint32_t>(id >> 32)) return nullptr;
    return &c.value;
  }

  bool live(std::uint32_t i) const { return i < cells_.size() && cells_[i].live; }
  T& operator[](std::uint32_t i) { return cells_[i].value; }
  const T& operator[](std::uint32_t i) const { return cells_[i].value; }

  // Slots ever created (live or free): indices run below this.
  std::uint32_t capacity() const { return static_cast<std::uint32_t>(cells_.size()); }
  std::size_t live_count() const { return live_; }

 private:
  struct cell {
    std::uint32_t generation = 1;  // from 1, so that no id is ever 0
    bool live = false;
    T value{};
  };
  std::uint32_t first_generation_;
  std::vector<cell> cells_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0;
};

}  // namespace troupe
