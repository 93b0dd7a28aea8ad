// The deadlines of the requests the broker holds, keyed by slot index, with
// removal by index.
//
// The earliest deadline decides how long the poll loop may sleep, and a
// request that ends early (its reply came) must leave at once rather than
// linger until its time: so the structure records where each index sits.
//
// Most requests carry the same timeout, so their deadlines arrive in order
// and most end in about that order too. Those go to `run_`, a vector kept
// sorted by arrival: pushing is an append, and erasing marks the entry
// (the marked prefix is skipped, and the vector is compacted when marks or
// the consumed prefix pass half of it, so its size stays within about twice
// the live entries). A deadline earlier than the run's last goes to a binary
// heap instead. The earliest deadline is the smaller of the two fronts. With
// a heap alone, erasing the earliest of 1,000 deadlines sifted through ten
// levels, with a mispredicted branch on each: about 200 ns per request.
// Deadlines live in the entries themselves, so nothing here touches the
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

  bool empty() const { return live_ == 0; }
  std::size_t size() const { return live_; }
  bool contains(std::uint32_t index) const { return index < pos_.size() && pos_[index] != absent; }

  // The earliest entry. Precondition: !empty().
  std::uint32_t top_index() const { return top_in_run() ? run_[head_].index : heap_.front().index; }
  TimePoint top_deadline() const { return top_in_run() ? run_[head_].deadline : heap_.front().deadline; }

  // Adds `index` with `deadline`; an index already present is moved to the
  // new deadline.
  void push(std::uint32_t index, TimePoint deadline) {
    if (contains(index)) erase(index);
    if (index >= pos_.size()) pos_.resize(index + 1, absent);
    ++live_;
    if (head_ == run_.size() || !(deadline < run_.back().deadline)) {
      pos_[index] = in_run | static_cast<std::uint32_t>(run_.size());
      run_.push_back({deadline, index});
      return;
    }
    heap_.push_back({deadline, index});
    place(heap_.size() - 1);
    sift_up(heap_.size() - 1);
  }

  // Removes `index`; nothing happens when it is absent.
  void erase(std::uint32_t index) {
    if (!contains(index)) return;
    const std::uint32_t p = pos_[index];
    pos_[index] = absent;
    --live_;
    if (p & in_run) {
      run_[p & ~in_run].index = absent;
      ++marked_;
      trim_run();
      return;
    }
    const std::size_t at = p, last = heap_.size() - 1;
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
  static constexpr std::uint32_t in_run = 0x80000000;  // pos_ flag: a place in run_, not in heap_

  struct entry {
    TimePoint deadline;
    std::uint32_t index;  // absent: erased (run_ only)
  };

  bool top_in_run() const {
    return head_ < run_.size() && (heap_.empty() || !(heap_.front().deadline < run_[head_].deadline));
  }

  // Skips erased entries at the front; compacts when marks or the consumed
  // prefix take more than half of run_.
  void trim_run() {
    while (head_ < run_.size() && run_[head_].index == absent) {
      ++head_;
      --marked_;
    }
    if (head_ == run_.size()) {
      run_.clear();
      head_ = 0;
      return;
    }
    const std::size_t held = run_.size() - head_;
    if ((marked_ > 64 && marked_ > held / 2) || (head_ > 1024 && head_ > run_.size() / 2)) compact_run();
  }

  void compact_run() {
    std::size_t out = 0;
    for (std::size_t i = head_; i < run_.size(); ++i) {
      if (run_[i].index == absent) continue;
      run_[out] = run_[i];
      pos_[run_[out].index] = in_run | static_cast<std::uint32_t>(out);
      ++out;
    }
    run_.resize(out);
    head_ = 0;
    marked_ = 0;
  }

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

  std::vector<entry> run_;          // in arrival order, deadlines not decreasing, from head_ on
  std::size_t head_ = 0;            // run_[head_] is the run's earliest live entry
  std::size_t marked_ = 0;          // erased entries in run_ from head_ on
  std::size_t live_ = 0;            // entries in run_ and heap_
  std::vector<entry> heap_;         // deadlines that came earlier than the run's last
  std::vector<std::uint32_t> pos_;  // by index: in_run | place in run_, place in heap_, or absent
};

}  // namespace troupe
