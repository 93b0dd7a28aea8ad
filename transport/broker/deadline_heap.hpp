// A min-heap of deadlines keyed by slot index, with removal by index.
//
// Every request the broker holds has a deadline. The earliest one decides
// how long the poll loop may sleep, and a request that ends early (its reply
// came) must leave the heap at once rather than linger until its time: so
// the heap records where each index sits, and erase() is O(log n). The
// deadline lives in the heap entry itself, so sifting never touches the
// request slots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace troupe {

template <class TimePoint>
class deadline_heap {
 public:
  static constexpr std::uint32_t absent = 0xffffffff;

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  bool contains(std::uint32_t index) const { return index < pos_.size() && pos_[index] != absent; }

  // The earliest entry. Precondition: !empty().
  std::uint32_t top_index() const { return heap_.front().index; }
  TimePoint top_deadline() const { return heap_.front().deadline; }

  // Adds `index` with `deadline`; an index already present is moved to the
  // new deadline.
  void push(std::uint32_t index, TimePoint deadline) {
    if (contains(index)) erase(index);
    if (index >= pos_.size()) pos_.resize(index + 1, absent);
    heap_.push_back({deadline, index});
    place(heap_.size() - 1);
    sift_up(heap_.size() - 1);
  }

  // Removes `index`; nothing happens when it is absent.
  void erase(std::uint32_t index) {
    if (!contains(index)) return;
    const std::size_t at = pos_[index];
    pos_[index] = absent;
    const std::size_t last = heap_.size() - 1;
    if (at != last) {
      heap_[at] = heap_[last];
      heap_.pop_back();
      place(at);
      sift_down(at);
      sift_up(at);
    } else {
      heap_.pop_back();
    }
  }

  void pop() { erase(top_index()); }

 private:
  struct entry {
    TimePoint deadline;
    std::uint32_t index;
  };

  void place(std::size_t at) { pos_[heap_[at].index] = static_cast<std::uint32_t>(at); }

  void sift_up(std::size_t at) {
    while (at > 0) {
      const std::size_t parent = (at - 1) / 2;
      if (!(heap_[at].deadline < heap_[parent].deadline)) break;
      std::swap(heap_[at], heap_[parent]);
      place(at);
      place(parent);
      at = parent;
    }
  }

  void sift_down(std::size_t at) {
    for (;;) {
      const std::size_t left = 2 * at + 1, right = left + 1;
      std::size_t least = at;
      if (left < heap_.size() && heap_[left].deadline < heap_[least].deadline) least = left;
      if (right < heap_.size() && heap_[right].deadline < heap_[least].deadline) least = right;
      if (least == at) return;
      std::swap(heap_[at], heap_[least]);
      place(at);
      place(least);
      at = least;
    }
  }

  std::vector<entry> heap_;
  std::vector<std::uint32_t> pos_;  // by index: position in heap_, or absent
};

}  // namespace troupe
